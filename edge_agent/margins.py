"""Irreversible cover for what ``Ue`` does not replace: weak detections and static privacy zones.

Two safety margins against a detector that misses faces (:class:`CoverPlan`):

* **low-confidence tier**: the detector runs at ``low_score_threshold``; detections scoring
  between it and the normal ``score_threshold`` are not tracked, not replaced by ``Ue`` and not
  listed in the ROI message, but their head ROI is blurred strongly or blacked
  (``faces_low_confidence``), so a weak face is never simply passed on;
* **privacy zones**: polygons (fractions of the frame's width and height, so they survive a
  change of resolution) always covered (``zone_pixels_covered``, ``zones_covered``).

Both are applied before ``Ue`` runs on the frame, so a ``Ue`` ROI that overlaps them carries
(and the authority's reversal restores) the covered pixels, never the original ones. Neither is
reversible: no original pixel of a covered area is kept anywhere, sealed or not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from shared.detectors import FaceDetection
from shared.geometry import HEAD_MARGIN, Box, expand_to_head

__all__ = ["CoverPlan", "CoverStyle", "Zone", "cover_box"]

log = logging.getLogger(__name__)

CoverStyle = Literal["blur", "black"]


@dataclass(frozen=True)
class Zone:
    """A static privacy zone: a polygon of ``(x, y)`` fractions of the frame (0..1).

    Raises:
        ValueError: fewer than 3 points, or a point outside ``[0, 1]``.
    """

    points: tuple[tuple[float, float], ...]
    cover: CoverStyle = "black"
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ValueError(f"a zone needs at least 3 points, got {len(self.points)}")
        if any(not (0.0 <= v <= 1.0) for point in self.points for v in point):
            raise ValueError("zone points are fractions of the frame, in [0, 1]")

    def mask(self, width: int, height: int) -> np.ndarray:
        """The zone's pixels in a ``height x width`` frame (bool)."""
        poly = np.array(
            [(round(x * width), round(y * height)) for x, y in self.points], dtype=np.int32
        )
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [poly], 1)
        return mask.astype(bool)


def _blur(patch: np.ndarray) -> np.ndarray:
    """A strong blur: down to at most 4 pixels on the longer side, then a smooth upscale (no
    detail finer than a quarter of the area survives)."""
    height, width = patch.shape[:2]
    scale = 4.0 / max(height, width)
    small = cv2.resize(
        patch,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def cover_box(frame: np.ndarray, box: Box, style: CoverStyle) -> None:
    """Cover ``box`` of ``frame`` in place (blurred strongly or blacked)."""
    region = frame[box.y : box.bottom, box.x : box.right]
    if region.size == 0:
        return
    region[...] = 0 if style == "black" else _blur(region)


@dataclass
class CoverPlan:
    """The low-confidence tier and the privacy zones of one camera.

    Args:
        score_threshold: the normal threshold: detections at or above it are faces for ``Ue``.
        low_score_threshold: detections from here up to ``score_threshold`` are covered
            (``None``: no low tier; the detector must run at this threshold to return them).
        low_cover: how weak detections are covered.
        zones: the privacy zones.
        head_margin: face box -> head ROI margin for weak detections.

    Raises:
        ValueError: ``low_score_threshold`` not below ``score_threshold``.
    """

    score_threshold: float
    low_score_threshold: float | None = None
    low_cover: CoverStyle = "blur"
    zones: Sequence[Zone] = ()
    head_margin: float = HEAD_MARGIN
    _masks: dict[tuple[int, int], list[tuple[np.ndarray, Box]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        low = self.low_score_threshold
        if low is not None and not low < self.score_threshold:
            raise ValueError(
                f"low_score_threshold ({low}) must be below score_threshold "
                f"({self.score_threshold})"
            )

    def split(
        self, detections: Sequence[FaceDetection]
    ) -> tuple[list[FaceDetection], list[FaceDetection]]:
        """``(faces for Ue, weak detections to cover)``; without a low tier nothing is weak."""
        if self.low_score_threshold is None:
            return list(detections), []
        strong = [d for d in detections if d.score >= self.score_threshold]
        weak = [d for d in detections if self.low_score_threshold <= d.score < self.score_threshold]
        return strong, weak

    def apply(self, frame: np.ndarray, weak: Sequence[FaceDetection]) -> tuple[int, int]:
        """Cover the zones and the weak detections' head ROIs in place.

        Returns:
            ``(zones covered, weak detections covered)``.
        """
        height, width = frame.shape[:2]
        masks = self._masks.get((width, height))
        if masks is None:
            masks = []
            for zone in self.zones:
                mask = zone.mask(width, height)
                x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
                masks.append((mask[y : y + h, x : x + w], Box(x, y, w, h)))
            self._masks = {(width, height): masks}
        for zone, (mask, rect) in zip(self.zones, masks, strict=True):
            region = frame[rect.y : rect.bottom, rect.x : rect.right]
            if region.size:
                region[mask] = 0 if zone.cover == "black" else _blur(region)[mask]
        for detection in weak:
            roi = expand_to_head(detection.box, width, height, self.head_margin)
            cover_box(frame, roi, self.low_cover)
        return len(self.zones), len(weak)
