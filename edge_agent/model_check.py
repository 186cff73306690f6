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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.config import PrivacySettings

__all__ = ["ModelRefusedError", "check_model_privacy", "check_privacy_figures"]


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


def check_model_privacy(
    card: Mapping[str, Any], privacy: PrivacySettings, source: str = "card.json"
) -> dict[str, float]:
    """:func:`check_privacy_figures` with the thresholds of the edge's ``privacy`` settings
    (what ``uunet-edge run`` and ``validate-config`` both check).

    Raises:
        ModelRefusedError: as :func:`check_privacy_figures`.
    """
    return check_privacy_figures(
        card,
        max_x_a_auc=privacy.max_x_a_auc,
        max_a_a_noise_auc=privacy.max_a_a_noise_auc,
        source=source,
    )
