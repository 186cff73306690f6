"""The model card's figures, measured on real face crops that were not used for training.

:func:`measure_model` gives, for one exported model directory:

* ``reconstruction``: PSNR (dB), SSIM and the paper's L2 residual of ``r`` vs ``x`` through
  the real edge/authority path (``shared.geometry`` crop/resize/paste, ``a`` rounded to uint8)
  at several ROI sizes: each face is shown at ``size x size`` pixels (as it would appear in a
  frame; area/cubic resize of the crop), de-identified and reversed there, and compared there.
  ``model_tensors`` is the same on 64x64 float tensors without any resampling or rounding.
* ``mean_abs_x_minus_a``: mean |x - a| on the model's tensors ([0, 1] units).
* ``recognition``: per recognizer (SFace, dlib), AUC and decidability d' of genuine/impostor
  cosine scores for ``x<->x'`` (two different images, originals), ``x<->a'`` (the second image
  de-identified: the paper's Fig. 6), ``x<->r'`` (the second image reversed), and
  ``x<->a_same`` (genuine pairs are an image and its own de-identified version: the attacker's
  best case). Faces are at their native crop size for this, through the same edge path; each
  recognizer aligns ``x``, ``a`` and ``r`` with the landmarks it found on ``x``.

Good: reconstruction PSNR high; ``x<->a'`` AUC near 0.5; ``x<->r'`` AUC near ``x<->x'``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.evaluation.config import DEFAULT_ROI_SIZES
from models.evaluation.deid import UUNetCodec
from models.evaluation.errors import EvaluationError
from models.evaluation.metrics import (
    genuine_impostor_scores,
    l2_residual,
    psnr,
    ssim,
    summarise_scores,
)
from models.evaluation.recognizers import FaceRecognizer
from shared.geometry import batch_to_patches

__all__ = ["DEFAULT_ROI_SIZES", "FaceSet", "flatten_faces", "measure_model", "show_at_size"]

log = logging.getLogger(__name__)

FaceSet = Mapping[str, Sequence[np.ndarray]]


def flatten_faces(faces_by_identity: FaceSet) -> tuple[list[np.ndarray], list[str]]:
    """Faces and their identity labels as two parallel lists.

    Raises:
        EvaluationError: fewer than 2 identities, or no identity with 2 images (no genuine
            pair), or a face that is not ``H x W x 3`` uint8.
    """
    faces, labels = [], []
    for identity, crops in faces_by_identity.items():
        for face in crops:
            if not isinstance(face, np.ndarray) or face.dtype != np.uint8 or face.ndim != 3:
                raise EvaluationError(f"identity {identity!r}: a face is not an H x W x 3 uint8")
            faces.append(face)
            labels.append(str(identity))
    counts = {k: len(v) for k, v in faces_by_identity.items()}
    if len(counts) < 2 or max(counts.values(), default=0) < 2:
        raise EvaluationError(
            f"need >= 2 identities and one with >= 2 faces, got {counts or 'nothing'}"
        )
    return faces, labels


def show_at_size(face: np.ndarray, size: int) -> np.ndarray:
    """The face as it would appear in a frame as a ``size x size`` ROI (area down, cubic up)."""
    height, width = face.shape[:2]
    if (width, height) == (size, size):
        return face
    shrinking = size <= min(width, height)
    return cv2.resize(
        face, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    )


def _fidelity(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    psnrs = [psnr(x, r) for x, r in pairs]
    finite = [p for p in psnrs if np.isfinite(p)]
    return {
        "psnr_db": float(np.mean(finite)) if finite else float("inf"),
        "psnr_db_median": float(np.median(psnrs)),
        "exact_fraction": float(np.mean([not np.isfinite(p) for p in psnrs])),
        "ssim": float(np.mean([ssim(x, r) for x, r in pairs])),
        "l2_residual": float(np.mean([l2_residual(x, r) for x, r in pairs])),
    }


def _recognition(
    recognizer: FaceRecognizer,
    x: Sequence[np.ndarray],
    a: Sequence[np.ndarray],
    r: Sequence[np.ndarray],
    labels: Sequence[str],
    max_impostors: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    geometries = [recognizer.locate(face) for face in x]
    ex = recognizer.embed(x, geometries)
    ea = recognizer.embed(a, geometries)
    er = recognizer.embed(r, geometries)
    sets = {
        "x_x": genuine_impostor_scores(ex, labels, max_impostors=max_impostors),
        "x_a": genuine_impostor_scores(ex, labels, ea, labels, max_impostors=max_impostors),
        "x_r": genuine_impostor_scores(ex, labels, er, labels, max_impostors=max_impostors),
        "x_a_same": genuine_impostor_scores(
            ex, labels, ea, labels, same_index="only", max_impostors=max_impostors
        ),
    }
    figures: dict[str, Any] = {name: summarise_scores(s) for name, s in sets.items()}
    figures["landmarks_detected_fraction"] = float(np.mean([g.detected for g in geometries]))
    return figures, sets


def measure_model(
    model_dir: str | Path,
    faces_by_identity: FaceSet,
    *,
    recognizers: Sequence[FaceRecognizer] = (),
    roi_sizes: Sequence[int] = DEFAULT_ROI_SIZES,
    seed: int = 0,
    threads: int = 1,
    max_impostors: int | None = 200_000,
    keep_scores: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure a model directory on identity-labelled face crops (see the module docstring).

    Args:
        model_dir: exported model directory (``ue.onnx``, ``ud.onnx``, ``card.json``).
        faces_by_identity: ``{identity: [H x W x 3 uint8 RGB head crops]}``, not used in
            training; :func:`models.evaluation.faces.load_identity_faces` cuts them like the edge.
        recognizers: e.g. ``[SFaceRecognizer(), DlibRecognizer()]``; none: no recognition figures.
        roi_sizes: ROI sizes (pixels) at which reconstruction is measured.
        seed: seed of the noise planes (one fresh plane per face).
        threads: ONNX Runtime threads for Ue/Ud.
        max_impostors: cap on impostor pairs per score set (random subset, fixed seed).
        keep_scores: if given, filled with ``{recognizer: {pair_kind: ScoreSets}}`` for plots.

    Returns:
        A JSON-ready dict: ``model_id``, ``faces``, ``identities``, ``reconstruction``
        (``by_roi_size`` and ``model_tensors``), ``mean_abs_x_minus_a``, ``recognition``,
        ``settings``, ``seconds``.

    Raises:
        EvaluationError: too few identities/faces, or a bad ROI size.
        shared.model_dir.ModelDirError (and ONNX loading errors): a bad model directory.
    """
    started = time.monotonic()
    faces, labels = flatten_faces(faces_by_identity)
    if not roi_sizes or min(roi_sizes) < 4:
        raise EvaluationError(f"ROI sizes must be >= 4 pixels, got {list(roi_sizes)}")
    codec = UUNetCodec(model_dir, threads=threads, seed=seed)
    noise = codec.new_noise(len(faces))

    # Model tensors: no resampling, no rounding.
    x_model = np.stack([show_at_size(f, codec.size).transpose(2, 0, 1) for f in faces]).astype(
        np.float32
    ) / np.float32(255.0)
    a_model = codec.encode_tensors(x_model, noise)
    r_model = codec.decode_tensors(a_model)
    x_u8 = batch_to_patches(x_model)
    r_u8 = batch_to_patches(r_model)
    reconstruction: dict[str, Any] = {
        "model_tensors": {
            **_fidelity(list(zip(x_u8, r_u8, strict=True))),
            "psnr_db_float": float(
                np.mean(
                    [
                        10 * np.log10(1.0 / max(float(np.mean((xm - rm) ** 2)), 1e-12))
                        for xm, rm in zip(x_model, np.clip(r_model, 0, 1), strict=True)
                    ]
                )
            ),
        },
        "by_roi_size": {},
    }
    for size in roi_sizes:
        shown = [show_at_size(f, size) for f in faces]
        a_roi = codec.encode_patches(shown, noise)
        r_roi = codec.decode_patches(a_roi)
        reconstruction["by_roi_size"][str(size)] = _fidelity(list(zip(shown, r_roi, strict=True)))

    recognition: dict[str, Any] = {}
    if recognizers:
        a_native = codec.encode_patches(faces, noise)
        r_native = codec.decode_patches(a_native)
        for recognizer in recognizers:
            log.info("recognition with %s on %d faces", recognizer.name, len(faces))
            figures, sets = _recognition(
                recognizer, faces, a_native, r_native, labels, max_impostors
            )
            recognition[recognizer.name] = figures
            if keep_scores is not None:
                keep_scores[recognizer.name] = sets

    return {
        "model_id": codec.card.model_id,
        "faces": len(faces),
        "identities": len(set(labels)),
        "reconstruction": reconstruction,
        "mean_abs_x_minus_a": float(np.mean(np.abs(x_model - np.clip(a_model, 0, 1)))),
        "recognition": recognition,
        "settings": {
            "roi_sizes": list(roi_sizes),
            "seed": seed,
            "max_impostors": max_impostors,
            "recognition_input": "native crop size through the edge path; x landmarks for x/a/r",
            "scores": "cosine of L2-normalised embeddings",
        },
        "seconds": round(time.monotonic() - started, 1),
    }
