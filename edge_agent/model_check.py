"""Refuse a model whose card does not show that it protects anyone.

A model directory is only as good as its measured figures: the card (``card.json``) of an
exported model holds ``metrics`` written by ``python -m models.evaluation.card --write-card``.
Before the edge runs ``Ue`` it checks them against the thresholds of its settings
(:class:`~edge_agent.config.PrivacySettings`):

* ``metrics.recognition`` must hold at least one recognizer's ``x_a.auc`` (how well a
  recognizer links an original face to the surrogate of another photo of that person: 0.5 is
  chance, 1.0 certain); a card without it has no measured privacy and is refused;
* every recognizer's ``x_a.auc`` must be at most ``max_x_a_auc``;
* where the card measures it, ``a_a_noise.auc`` (two photos of one person under different
  noise planes: one person, two fake people?) must be at most ``max_a_a_noise_auc``.

It also checks that the model's decoder is private (:func:`check_decoder_private`): ``Ud``
undoes what ``Ue`` hides, so a clip whose decoder anyone can download protects nobody from
anyone. A card whose ``decoder_published`` is not ``false`` (published, or not said), or a
model directory that holds ``ud.onnx`` (the decoder belongs to the authority, never on the
camera), is refused unless the settings say ``allow_public_decoder: true`` (the demo of the
shipped default, whose decoder is in the public repository).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.model_dir import CARD_FILE, DECODER_FILE, DECODER_PUBLISHED

if TYPE_CHECKING:
    from edge_agent.config import PrivacySettings

__all__ = [
    "ModelRefusedError",
    "check_decoder_private",
    "check_model_privacy",
    "check_privacy_figures",
]

log = logging.getLogger(__name__)


class ModelRefusedError(ValueError):
    """The model's card has no measured privacy figures, or they fail the edge's thresholds."""


def _auc(entry: Any, key: str) -> float | None:
    if not isinstance(entry, Mapping):
        return None
    value = entry.get(key)
    if isinstance(value, Mapping):
        value = value.get("auc")
    return float(value) if isinstance(value, (int, float)) else None


def check_privacy_figures(
    card: Mapping[str, Any],
    *,
    max_x_a_auc: float,
    max_a_a_noise_auc: float,
    source: str = "card.json",
) -> dict[str, float]:
    """Check a card's measured privacy figures; returns the figures checked (name -> AUC).

    Raises:
        ModelRefusedError: no ``metrics.recognition`` with an ``x_a`` AUC, or a figure above
            its threshold (the message names the recognizer, the figure and the threshold).
    """
    metrics = card.get("metrics")
    recognition = metrics.get("recognition") if isinstance(metrics, Mapping) else None
    model = card.get("model_id", "?")
    if not isinstance(recognition, Mapping) or not recognition:
        raise ModelRefusedError(
            f"{source}: model {model} has no measured privacy figures (metrics.recognition is "
            "missing): measure it with `python -m models.evaluation.card --write-card` first"
        )
    checked: dict[str, float] = {}
    failures: list[str] = []
    for name, entry in sorted(recognition.items()):
        for figure, limit in (("x_a", max_x_a_auc), ("a_a_noise", max_a_a_noise_auc)):
            value = _auc(entry, figure)
            if value is None:
                continue
            checked[f"{name}.{figure}"] = value
            if value > limit:
                failures.append(f"{name} {figure} AUC {value:.3f} > {limit:.3f}")
    if not any(key.endswith(".x_a") for key in checked):
        raise ModelRefusedError(
            f"{source}: model {model} has no measured x<->a' AUC in metrics.recognition"
        )
    if failures:
        raise ModelRefusedError(
            f"{source}: model {model} fails the edge's privacy thresholds "
            f"(privacy settings): {'; '.join(failures)}"
        )
    return checked


def check_decoder_private(
    card: Mapping[str, Any], directory: Path, *, allow_public_decoder: bool
) -> bool:
    """Check that the model's decoder is not public; returns whether it is private.

    With ``allow_public_decoder`` a public decoder is logged at WARNING and accepted.

    Raises:
        ModelRefusedError: the card does not say ``decoder_published: false``, or
            ``directory`` holds ``ud.onnx``, and ``allow_public_decoder`` is false.
    """
    model = card.get("model_id", "?")
    reasons = []
    published = card.get(DECODER_PUBLISHED)
    if published is True:
        reasons.append(f"its card says {DECODER_PUBLISHED}: true (anyone can reverse its clips)")
    elif published is not False:
        reasons.append(
            f"its card does not say whether its decoder is published ({DECODER_PUBLISHED})"
        )
    if (directory / DECODER_FILE).exists():
        reasons.append(
            f"{directory / DECODER_FILE} is on the camera (the decoder belongs to the authority: "
            "package the edge side with `uunet-train package`)"
        )
    if not reasons:
        return True
    message = f"{directory / CARD_FILE}: model {model}: {'; '.join(reasons)}"
    if allow_public_decoder:
        log.warning(
            "%s; running it because allow_public_decoder is set (a demo, no privacy)", message
        )
        return False
    raise ModelRefusedError(
        f"{message}. Train your own Ue/Ud pair and keep ud.onnx at the authority; for a demo, "
        "pass --allow-public-decoder (privacy.allow_public_decoder: true)"
    )


def check_model_privacy(
    card: Mapping[str, Any], privacy: PrivacySettings, directory: Path
) -> dict[str, float]:
    """:func:`check_privacy_figures` with the thresholds of the edge's ``privacy`` settings, and
    :func:`check_decoder_private` (what ``uunet-edge run`` and ``validate-config`` both check).

    Raises:
        ModelRefusedError: as :func:`check_privacy_figures` and :func:`check_decoder_private`.
    """
    source = str(directory / CARD_FILE)
    figures = check_privacy_figures(
        card,
        max_x_a_auc=privacy.max_x_a_auc,
        max_a_a_noise_auc=privacy.max_a_a_noise_auc,
        source=source,
    )
    check_decoder_private(card, directory, allow_public_decoder=privacy.allow_public_decoder)
    return figures
