"""The model card's figures, measured on real face crops that were not used for training.

:func:`measure_model` gives, for one exported model directory (run as the edge and the
authority run it: :class:`models.evaluation.deid.UUNetCodec`):

* ``reconstruction``: PSNR (dB), SSIM and the paper's L2 residual of ``r`` vs ``x`` through
  the real path (the edge's ``Deidentifier`` pastes ``a`` with the card's composition, the
  authority's ``reverse_faces`` crops it, runs ``Ud`` and pastes ``r``) at several ROI sizes:
  each face is shown at ``size x size`` pixels (as it would appear in a frame; area/cubic
  resize of the crop), de-identified and reversed there, and compared there.
  ``model_tensors`` is the same on the model's float tensors without resampling or rounding.
* ``mean_abs_x_minus_a``: mean |x - a| on the model's tensors ([0, 1] units).
* ``recognition``: per recognizer (SFace, dlib), AUC and decidability d' of genuine/impostor
  cosine scores for ``x<->x'`` (two different images, originals), ``x<->a'`` (the second image
  de-identified: the paper's Fig. 6), ``x<->r'`` (the second image reversed),
  ``x<->a_same`` (genuine pairs are an image and its own de-identified version: the attacker's
  best case) and ``a_a_noise`` (two photos of one person, each de-identified with its own
  noise plane, as two tracks of one person get two planes: can the two surrogates be linked?).
  Faces are at their native crop size for this, through the same path; each recognizer aligns
  ``x``, ``a`` and ``r`` with the landmarks it found on ``x``.
* ``public_face``: ``hf_energy_ratio`` (luma and chroma high-frequency energy of ``a`` over
  ``x`` on the model's tensors, :func:`models.evaluation.metrics.high_frequency_ratio`) and,
  with detectors, ``detection_by_roi_size`` (:mod:`models.evaluation.detection_by_size`).

:func:`measure_clips` adds what only video shows, through the edge's own frame path
(:mod:`models.evaluation.edge_path`): ``recognition.<recognizer>.a_a_track`` (frames of one
track, one noise plane, vs other tracks) and ``public_face.border_step_ratio``
(:mod:`models.evaluation.border`).

Good: reconstruction PSNR high; ``x<->a'`` and ``a_a_noise`` AUC near 0.5; ``x<->r'`` AUC near
``x<->x'``; border step ratio and high-frequency ratios near 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation.border import BorderSteps
from models.evaluation.config import DEFAULT_ROI_SIZES
from models.evaluation.deid import UUNetCodec
from models.evaluation.detection_by_size import detection_by_roi_size
from models.evaluation.edge_path import build_edge_processor, run_clip
from models.evaluation.errors import EvaluationError
from models.evaluation.faces import show_at_size
from models.evaluation.metrics import (
    genuine_impostor_scores,
    high_frequency_ratio,
    l2_residual,
    psnr,
    ssim,
    summarise_scores,
)
from models.evaluation.recognizers import FaceRecognizer
from models.evaluation.suite_video import temporal_consistency, track_patches
from shared.detectors import FaceDetector
from shared.geometry import batch_to_patches

__all__ = [
    "DEFAULT_ROI_SIZES",
    "FaceSet",
    "flatten_faces",
    "measure_clips",
    "measure_model",
    "open_codec",
    "show_at_size",
]

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


def open_codec(model: str | Path | UUNetCodec, *, threads: int = 1, seed: int = 0) -> UUNetCodec:
    """``model`` itself when it is a codec, else the codec of that model directory.

    Raises:
        shared.model_dir.ModelDirError (and ONNX loading errors): a bad model directory.
    """
    if isinstance(model, UUNetCodec):
        return model
    return UUNetCodec(model, threads=threads, seed=seed)


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
        "a_a_noise": genuine_impostor_scores(ea, labels, max_impostors=max_impostors),
    }
    figures: dict[str, Any] = {name: summarise_scores(s) for name, s in sets.items()}
    figures["landmarks_detected_fraction"] = float(np.mean([g.detected for g in geometries]))
    return figures, sets


def measure_model(
    model: str | Path | UUNetCodec,
    faces_by_identity: FaceSet,
    *,
    recognizers: Sequence[FaceRecognizer] = (),
    roi_sizes: Sequence[int] = DEFAULT_ROI_SIZES,
    seed: int = 0,
    threads: int = 1,
    max_impostors: int | None = 200_000,
    keep_scores: dict[str, Any] | None = None,
    detectors: Sequence[FaceDetector] = (),
    edge: FaceDetector | None = None,
) -> dict[str, Any]:
    """Measure a model on identity-labelled face crops (see the module docstring).

    Args:
        model: exported model directory (``ue.onnx``, ``ud.onnx``, ``card.json``), or a codec
            (e.g. with a composition override).
        faces_by_identity: ``{identity: [H x W x 3 uint8 RGB head crops]}``, not used in
            training; :func:`models.evaluation.faces.load_identity_faces` cuts them like the edge.
        recognizers: e.g. ``[SFaceRecognizer(), DlibRecognizer()]``; none: no recognition figures.
        roi_sizes: ROI sizes (pixels) at which reconstruction is measured.
        seed: seed of the noise planes (face ``i`` gets plane ``i`` at every size).
        threads: ONNX Runtime threads for Ue/Ud.
        max_impostors: cap on impostor pairs per score set (random subset, fixed seed).
        keep_scores: if given, filled with ``{recognizer: {pair_kind: ScoreSets}}`` for plots.
        detectors: measuring detectors of ``public_face.detection_by_roi_size`` (none: skipped).
        edge: the edge's detector there (default: the first of ``detectors``).

    Returns:
        A JSON-ready dict: ``model_id``, ``faces``, ``identities``, ``composition``,
        ``reconstruction`` (``by_roi_size`` and ``model_tensors``), ``mean_abs_x_minus_a``,
        ``recognition``, ``public_face``, ``settings``, ``seconds``.

    Raises:
        EvaluationError: too few identities/faces, or a bad ROI size.
        shared.model_dir.ModelDirError (and ONNX loading errors): a bad model directory.
    """
    started = time.monotonic()
    faces, labels = flatten_faces(faces_by_identity)
    if not roi_sizes or min(roi_sizes) < 4:
        raise EvaluationError(f"ROI sizes must be >= 4 pixels, got {list(roi_sizes)}")
    codec = open_codec(model, threads=threads, seed=seed)
    ids = list(range(len(faces)))

    # Model tensors: no resampling, no rounding.
    x_model = np.stack([show_at_size(f, codec.size).transpose(2, 0, 1) for f in faces]).astype(
        np.float32
    ) / np.float32(255.0)
    a_model = codec.encode_tensors(x_model, ids)
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
        a_roi = codec.encode_patches(shown, ids)
        r_roi = codec.decode_patches(a_roi)
        reconstruction["by_roi_size"][str(size)] = _fidelity(list(zip(shown, r_roi, strict=True)))

    public_face: dict[str, Any] = {
        "hf_energy_ratio": high_frequency_ratio(list(x_u8), list(batch_to_patches(a_model)))
    }
    if detectors:
        log.info("detection by ROI size on %d faces", len(faces))
        public_face["detection_by_roi_size"] = detection_by_roi_size(
            faces, codec, edge or detectors[0], detectors, seed=seed
        )

    recognition: dict[str, Any] = {}
    if recognizers:
        a_native = codec.encode_patches(faces, ids)
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
        "composition": codec.composition.to_card(),
        "reconstruction": reconstruction,
        "mean_abs_x_minus_a": float(np.mean(np.abs(x_model - np.clip(a_model, 0, 1)))),
        "recognition": recognition,
        "public_face": public_face,
        "settings": {
            "roi_sizes": list(roi_sizes),
            "seed": seed,
            "max_impostors": max_impostors,
            "recognition_input": "native crop size through the edge path; x landmarks for x/a/r",
            "scores": "cosine of L2-normalised embeddings",
        },
        "seconds": round(time.monotonic() - started, 1),
    }


def measure_clips(
    model: str | Path | UUNetCodec,
    clips: Sequence[Path],
    *,
    recognizers: Sequence[FaceRecognizer] = (),
    max_frames: int = 150,
    per_track: int = 12,
    max_impostors: int | None = 200_000,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    """The card's video figures: clips through the edge's frame path (module docstring),
    tracks pooled over the clips.

    Returns:
        ``{"clips", "frames", "rois", "tracks", "border_step_ratio": {...},
        "a_a_track": {recognizer: figures or {"skipped": why}}}``.

    Raises:
        shared.video_io.VideoDecodeError: a clip is not a readable video.
        shared.model_dir.ModelDirError (and ONNX loading errors): a bad model directory.
    """
    codec = open_codec(model, threads=threads, seed=seed)
    steps = BorderSteps()
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    frames = rois = 0
    for clip in clips:
        run = run_clip(clip, build_edge_processor(codec), max_frames=max_frames)
        for source, public, boxes in zip(run.sources, run.publics, run.boxes, strict=True):
            steps.add(source, public, boxes)
        for track_id, items in track_patches(run).items():
            pooled[f"{clip.name}#{track_id}"] = items
        frames += run.frames
        rois += run.rois
    linkability: dict[str, Any] = {}
    for recognizer in recognizers:
        try:
            figures, _ = temporal_consistency(recognizer, pooled, per_track, max_impostors)
        except EvaluationError as exc:
            linkability[recognizer.name] = {"skipped": str(exc)}
            continue
        linkability[recognizer.name] = figures["a_t_a_tk"]
    return {
        "clips": [str(c) for c in clips],
        "frames": frames,
        "rois": rois,
        "tracks": sum(1 for v in pooled.values() if len(v) >= 2),
        "border_step_ratio": steps.as_dict(),
        "a_a_track": linkability,
    }
