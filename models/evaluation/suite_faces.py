"""Suite section on identity folders: anonymity (Fig. 6), diversity (Fig. 10), soft labels and
reversal fidelity on head crops, for UU-Net and the baselines alike.

For every identity set and recognizer:

* ``x_x``: originals, two different images of a subject as genuine (the recognizer's baseline);
* ``x_a[method]``: the second image anonymized by ``method`` (the paper's x<->a');
* ``x_r``: the second image de-identified then reversed by UU-Net (should stay like ``x_x``);
* ``diversity``: UU-Net's ``a`` of two different images of a subject as genuine, ``a`` of
  different subjects as impostors (the paper's Fig. 10; low d' = diverse virtual identities).
  Every photo has its own noise plane, so this is the card's ``a_a_noise``.
Recognizers align every version of an image with the landmarks they found on the original.

UU-Net runs as the edge and the authority run it (:class:`~models.evaluation.deid.UUNetCodec`);
the reversal figures, the high-frequency ratios and (with detectors) detection kept by ROI size
come from :func:`~models.evaluation.card_metrics.measure_model`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation.baselines import RoiAnonymizer
from models.evaluation.card_metrics import flatten_faces, measure_model
from models.evaluation.deid import UUNetCodec
from models.evaluation.metrics import ScoreSets, genuine_impostor_scores, summarise_scores
from models.evaluation.plots import bar_plot, decision_environments
from models.evaluation.recognizers import FaceRecognizer
from models.evaluation.soft_labels import GenderClassifier, agreement
from shared.detectors import FaceDetector

__all__ = ["evaluate_identity_set"]

log = logging.getLogger(__name__)


def _anonymity(
    recognizer: FaceRecognizer,
    faces: Sequence[np.ndarray],
    labels: Sequence[str],
    versions: Mapping[str, Sequence[np.ndarray]],
    r_faces: Sequence[np.ndarray],
    max_impostors: int,
) -> tuple[dict[str, Any], dict[str, ScoreSets]]:
    geometries = [recognizer.locate(face) for face in faces]
    ex = recognizer.embed(faces, geometries)
    sets: dict[str, ScoreSets] = {
        "x_x": genuine_impostor_scores(ex, labels, max_impostors=max_impostors)
    }
    for method, anonymized in versions.items():
        ea = recognizer.embed(anonymized, geometries)
        sets[f"x_a[{method}]"] = genuine_impostor_scores(
            ex, labels, ea, labels, max_impostors=max_impostors
        )
        if method == "uunet":
            sets["diversity"] = genuine_impostor_scores(ea, labels, max_impostors=max_impostors)
    er = recognizer.embed(r_faces, geometries)
    sets["x_r"] = genuine_impostor_scores(ex, labels, er, labels, max_impostors=max_impostors)
    figures: dict[str, Any] = {name: summarise_scores(s) for name, s in sets.items()}
    figures["landmarks_detected_fraction"] = float(np.mean([g.detected for g in geometries]))
    return figures, sets


def evaluate_identity_set(
    name: str,
    faces_by_identity: Mapping[str, Sequence[np.ndarray]],
    codec: UUNetCodec,
    baselines: Sequence[RoiAnonymizer],
    recognizers: Sequence[FaceRecognizer],
    gender: GenderClassifier | None,
    out_dir: Path,
    *,
    roi_sizes: Sequence[int],
    max_impostors: int,
    seed: int,
    detectors: Sequence[FaceDetector] = (),
    edge: FaceDetector | None = None,
) -> dict[str, Any]:
    """Measure one identity set (see the module docstring); plots go to ``out_dir``.
    ``detectors`` (with ``edge``, the edge's detector) measure detection kept by ROI size.

    Raises:
        EvaluationError: fewer than 2 identities or no identity with 2 faces.
    """
    faces, labels = flatten_faces(faces_by_identity)
    result: dict[str, Any] = {
        "faces": len(faces),
        "identities": len(set(labels)),
        "plots": [],
    }
    # Reconstruction and public-face figures through the edge/authority path.
    card = measure_model(
        codec,
        faces_by_identity,
        roi_sizes=roi_sizes,
        seed=seed,
        max_impostors=None,
        detectors=detectors,
        edge=edge,
    )
    result["reconstruction"] = card["reconstruction"]
    result["mean_abs_x_minus_a"] = card["mean_abs_x_minus_a"]
    result["public_face"] = card["public_face"]

    a_faces = codec.encode_patches(faces, list(range(len(faces))))  # the card's noise planes
    r_faces = codec.decode_patches(a_faces)
    versions: dict[str, Sequence[np.ndarray]] = {"uunet": a_faces}
    for baseline in baselines:
        versions[baseline.name] = baseline(faces)

    result["recognition"] = {}
    for recognizer in recognizers:
        log.info("%s: anonymity with %s on %d faces", name, recognizer.name, len(faces))
        figures, sets = _anonymity(recognizer, faces, labels, versions, r_faces, max_impostors)
        result["recognition"][recognizer.name] = figures
        stem = f"{_slug(name)}_{recognizer.name}"
        panels = [
            ("x <-> x'", sets["x_x"]),
            ("x <-> a' (UU-Net)", sets["x_a[uunet]"]),
            ("x <-> r' (UU-Net)", sets["x_r"]),
            ("a <-> a' diversity", sets["diversity"]),
        ]
        plot = decision_environments(
            panels, out_dir / f"{stem}_decision.png", title=f"{name}, {recognizer.name}"
        )
        result["plots"].append(plot.name)
        aucs = {m: figures[f"x_a[{m}]"]["auc"] for m in versions}
        aucs = {"original (x_x)": figures["x_x"]["auc"], **aucs}
        plot = bar_plot(
            aucs,
            out_dir / f"{stem}_auc_by_method.png",
            ylabel="AUC x <-> anonymized x'",
            title=f"{name}, {recognizer.name}: lower is more anonymous (0.5 = chance)",
        )
        result["plots"].append(plot.name)

    if gender is not None:
        x_gender = gender.predict(faces)
        s_gender = _s_value(codec, "gender")
        result["soft_labels"] = {
            "gender": {
                "s": s_gender,
                "x_male_fraction": float(np.mean([g == "male" for g in x_gender])),
                "agreement_x_a": {
                    method: agreement(x_gender, gender.predict(anonymized))
                    for method, anonymized in versions.items()
                },
                "agreement_x_r": agreement(x_gender, gender.predict(r_faces)),
            }
        }
    return result


def _s_value(codec: UUNetCodec, label: str) -> int | None:
    card = codec.card
    return card.s[card.labels.index(label)] if label in card.labels else None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_") or "set"
