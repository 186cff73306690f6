"""Suite section "detection kept" (the paper's Table II): is a de-identified face still a face
to a detector?

On images with ground-truth face boxes (``images/dlib_faces/testing.xml``), every true face's
head ROI (``expand_to_head``, margin 0.25) is replaced by each method (UU-Net through the edge
path, and the baselines); each measuring detector then runs on the original frame ``x`` and on
each replaced frame. Reported per detector and method: AP against the ground truth (VOC, IoU >=
``iou_threshold``), the mean confidence of the best detection on each true face (0 when none),
recall, and the ratios method / original.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation.baselines import RoiAnonymizer
from models.evaluation.media import BoxedImage, read_rgb
from models.evaluation.metrics import average_precision, match_detections
from models.evaluation.plots import bar_plot
from shared.detectors import FaceDetector
from shared.geometry import Box, crop, expand_to_head, iou, paste

__all__ = ["evaluate_detection", "replace_rois"]

log = logging.getLogger(__name__)


def replace_rois(frame: np.ndarray, rois: Sequence[Box], method: RoiAnonymizer) -> np.ndarray:
    """A copy of ``frame`` with each ROI replaced by ``method``'s output."""
    out = frame.copy()
    patches = [np.ascontiguousarray(crop(frame, box)) for box in rois]
    for box, patch in zip(rois, method(patches), strict=True):
        paste(out, patch, box)
    return out


def _best_confidence(found: Sequence[tuple[Box, float]], truth: Box, threshold: float) -> float:
    scores = [score for box, score in found if iou(box, truth) >= threshold]
    return max(scores, default=0.0)


def evaluate_detection(
    images: Sequence[BoxedImage],
    methods: Sequence[RoiAnonymizer],
    detectors: Sequence[FaceDetector],
    out_dir: Path,
    *,
    iou_threshold: float = 0.4,
    prefix: str = "gt",
) -> dict[str, Any]:
    """Detection kept on ground-truth images (see the module docstring).

    Raises:
        EvaluationError: no ground-truth face at all.
        models.evaluation.errors.EvaluationError: an image cannot be read.
    """
    truth_count = sum(len(i.boxes) for i in images)
    matches = {d.key: {m: [] for m in ["original", *(x.name for x in methods)]} for d in detectors}
    confidences = {d.key: {m: [] for m in matches[d.key]} for d in detectors}
    for item in images:
        frame = read_rgb(item.path)
        height, width = frame.shape[:2]
        rois = [expand_to_head(b, width, height) for b in item.boxes]
        versions = {"original": frame}
        for method in methods:
            versions[method.name] = replace_rois(frame, rois, method)
        for detector in detectors:
            for name, version in versions.items():
                found = [(d.box, d.score) for d in detector.detect(version)]
                matches[detector.key][name].extend(
                    match_detections(found, item.boxes, iou_threshold)
                )
                confidences[detector.key][name].extend(
                    _best_confidence(found, truth, iou_threshold) for truth in item.boxes
                )
    result: dict[str, Any] = {
        "images": len(images),
        "faces": truth_count,
        "iou_threshold": iou_threshold,
        "detectors": {},
        "plots": [],
    }
    for detector in detectors:
        per_method = {}
        for name in matches[detector.key]:
            conf = np.array(confidences[detector.key][name])
            per_method[name] = {
                "ap": average_precision(matches[detector.key][name], truth_count),
                "mean_confidence": float(conf.mean()) if conf.size else 0.0,
                "recall": float(np.mean(conf > 0)) if conf.size else 0.0,
            }
        base = per_method["original"]
        for figures in per_method.values():
            figures["ap_ratio"] = figures["ap"] / base["ap"] if base["ap"] > 0 else None
            figures["confidence_ratio"] = (
                figures["mean_confidence"] / base["mean_confidence"]
                if base["mean_confidence"] > 0
                else None
            )
        result["detectors"][detector.key] = per_method
        plot = bar_plot(
            {name: f["ap"] for name, f in per_method.items()},
            out_dir / f"detection_{prefix}_ap_{detector.key}.png",
            ylabel="AP",
            title=f"Faces still detected ({detector.key}); higher is better",
        )
        result["plots"].append(plot.name)
    return result
