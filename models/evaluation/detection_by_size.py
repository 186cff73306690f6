"""Detection kept by ROI size: is the surrogate still a face to a detector, small and large?

Each head crop (an identity photo's, cut as the edge cuts it) is shown in a synthetic frame at a
size drawn in each ROI-size bin (20-40, 40-80, 80-160, 160-320 px by default):

1. the crop is resized (area down, bicubic up) to ``s x s``, ``s`` log-uniform in the bin
   (a fixed seed), and laid at the centre of a ``max(3 s, 160)`` px square frame filled with the
   median colour of the crop's border;
2. the edge's detector (YuNet with the edge's defaults) runs on that frame ``x``; its box
   overlapping the face (IoU >= ``iou_threshold`` with the crop's nominal face, the central
   ``s / (1 + 2 margin)`` square) becomes the edge's head ROI (``expand_to_head``), which
   :meth:`~models.evaluation.deid.UUNetCodec.encode_frame` replaces as the edge does; the
   face is counted in the bin of that ROI's larger side (a face the edge does not find on
   ``x`` is not replaced and counted as ``edge_missed_on_x``, in total and in the bin it was
   drawn for);
3. every measuring detector runs on ``x`` and on the public frame: a face is *found* when a
   detection has IoU >= ``iou_threshold`` with the edge's face box.

**kept** = faces found on the public frame / faces found on ``x``, per bin and detector.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.evaluation.deid import UUNetCodec
from models.evaluation.faces import show_at_size
from shared.detectors import FaceDetector
from shared.geometry import HEAD_MARGIN, Box, expand_to_head, iou

__all__ = ["ROI_SIZE_BINS", "detection_by_roi_size"]

log = logging.getLogger(__name__)

#: ROI-size bins (px, larger side of the head ROI): [low, high).
ROI_SIZE_BINS: tuple[tuple[int, int], ...] = ((20, 40), (40, 80), (80, 160), (160, 320))
_MIN_FRAME = 160


def _frame_with_face(face: np.ndarray, side: int) -> tuple[np.ndarray, Box]:
    shown = show_at_size(face, side)
    border = np.concatenate([shown[0], shown[-1], shown[:, 0], shown[:, -1]])
    frame_side = max(3 * side, _MIN_FRAME)
    frame = np.empty((frame_side, frame_side, 3), dtype=np.uint8)
    frame[...] = np.median(border, axis=0).astype(np.uint8)
    corner = (frame_side - side) // 2
    frame[corner : corner + side, corner : corner + side] = shown
    return frame, Box(corner, corner, side, side)


def _nominal_face(roi: Box, margin: float) -> Box:
    side = max(1, round(roi.w / (1.0 + 2.0 * margin)))
    offset = (roi.w - side) // 2
    return Box(roi.x + offset, roi.y + offset, side, side)


def _found(detections: Sequence, face: Box, threshold: float) -> bool:
    return any(iou(d.box, face) >= threshold for d in detections)


def detection_by_roi_size(
    faces: Sequence[np.ndarray],
    codec: UUNetCodec,
    edge: FaceDetector,
    detectors: Sequence[FaceDetector],
    *,
    bins: Sequence[tuple[int, int]] = ROI_SIZE_BINS,
    iou_threshold: float = 0.4,
    margin: float = HEAD_MARGIN,
    seed: int = 0,
) -> dict[str, Any]:
    """Detection kept per ROI-size bin and detector (see the module docstring).

    Args:
        faces: head crops (uint8 RGB).
        codec: the model, run as the edge runs it.
        edge: the edge's detector (its boxes make the replaced ROIs).
        detectors: the measuring detectors (may include ``edge``).

    Raises:
        ValueError: an empty or inverted bin.
        shared.detectors.DetectorError: a detector failed.
    """
    if any(low < 1 or high <= low for low, high in bins):
        raise ValueError(f"bins must be [low, high) with 1 <= low < high, got {list(bins)}")
    rng = np.random.default_rng(seed)
    names = [f"{low}-{high}" for low, high in bins]
    counts = {
        name: {
            "faces": 0,
            "edge_missed_on_x": 0,
            **{d.key: {"found_on_x": 0, "kept": 0} for d in detectors},
        }
        for name in names
    }
    missed = outside = 0
    for index, face in enumerate(faces):
        for drawn, (low, high) in zip(names, bins, strict=True):
            side = round(float(np.exp(rng.uniform(np.log(low), np.log(high)))))
            x, placed = _frame_with_face(face, min(max(side, low), high - 1))
            height, width = x.shape[:2]
            nominal = _nominal_face(placed, margin)
            on_x = [d.detect(x) for d in detectors]
            shared_edge = [k for k, d in enumerate(detectors) if d is edge]
            edge_found = on_x[shared_edge[0]] if shared_edge else edge.detect(x)
            candidates = [d for d in edge_found if iou(d.box, nominal) >= iou_threshold]
            if not candidates:
                missed += 1
                counts[drawn]["edge_missed_on_x"] += 1
                continue
            face_box = max(candidates, key=lambda d: iou(d.box, nominal)).box
            roi = expand_to_head(face_box, width, height, margin)
            roi_side = max(roi.w, roi.h)
            name = next(
                (n for n, (lo, hi) in zip(names, bins, strict=True) if lo <= roi_side < hi), None
            )
            if name is None:
                outside += 1
                continue
            public = codec.encode_frame(x, [roi], [index])
            counts[name]["faces"] += 1
            for detector, found_on_x in zip(detectors, on_x, strict=True):
                if not _found(found_on_x, face_box, iou_threshold):
                    continue
                figures = counts[name][detector.key]
                figures["found_on_x"] += 1
                figures["kept"] += int(_found(detector.detect(public), face_box, iou_threshold))
    for per_bin in counts.values():
        for detector in detectors:
            figures = per_bin[detector.key]
            found = figures["found_on_x"]
            figures["kept_fraction"] = figures["kept"] / found if found else None
    return {
        "bins": counts,
        "detectors": [d.key for d in detectors],
        "faces": len(faces),
        "edge_missed_on_x": missed,
        "outside_bins": outside,
        "iou_threshold": iou_threshold,
        "edge_detector": edge.key,
    }
