"""Border step ratio: does the replaced box show its border in the public frame?

Across the border of every replaced ROI, take each pair of pixels that straddle it (the ROI's
outermost row or column and the scene's pixel just outside it) and their luma difference
``|Y_inside - Y_outside|`` (BT.601 luma, 0-255). The **border step ratio** is the mean of these
steps in the public frame divided by the mean of the same pixel pairs' steps in the source
frame:

* 1.0: the border is as smooth as the scene was there (nothing shows);
* above 1: a visible edge (a hard paste of a surrogate whose ring differs from the scene);
* below 1: the paste is smoother than the scene (a feather wider than needed).

Pairs whose outside pixel lies in any replaced ROI of the frame are left out (both pixels are
then surrogate); pairs at the frame's edge have no outside pixel. Steps are pooled over all
ROIs and frames (a ratio of sums).

A feathered paste makes the two pixels across the border nearly the scene's own, so that ratio
reaches 1 whatever the band inside looks like. The **band step ratio** covers the band: the same
ratio over every pair of neighbours along the border's normal within the ROI's outer
``BAND_FRACTION`` of its smaller side (depth 0-1, 1-2, ...). A hard edge smeared over the band,
or a band that differs from both scene and surrogate, shows there.

Neither ratio sees a surrogate whose ring is uniformly brighter or darker than the scene: the
feather turns that level offset into a gentle ramp, no step, yet the viewer sees a soft square.
The **ring luma offset** measures it: the mean ``|Y_public - Y_source|`` (0-255) over the ROI's
pixels within ``BAND_FRACTION`` of its smaller side from its border (``ring_luma_bias``: the same
mean, signed; above 0 a brighter ring). Pixels that lie in another replaced ROI are left out.
0 when the surrogate carries the scene's ring through, as ``Lring`` asks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.geometry import Box

__all__ = ["BAND_FRACTION", "BorderSteps", "luma"]

#: Depth of the band whose inner steps the band step ratio pools (the widest paste band
#: training draws).
BAND_FRACTION = 0.16

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an ``H x W x 3`` RGB image, ``float32 H x W`` on its 0-255 scale."""
    return np.asarray(rgb, dtype=np.float32) @ _LUMA


def _straddling(box: Box, width: int, height: int, depth: int = 0) -> tuple[np.ndarray, ...]:
    """Row/column indices of the pixel pairs (inner, outer) along the normal of ``box``'s four
    sides, the inner one ``depth`` pixels inside the box (0: the pairs across the border)."""
    rows_in, cols_in, rows_out, cols_out = [], [], [], []
    cols = np.arange(box.x, box.right)
    rows = np.arange(box.y, box.bottom)
    d = depth
    if box.y > 0 or d:  # top
        rows_in.append(np.full_like(cols, box.y + d))
        rows_out.append(np.full_like(cols, box.y + d - 1))
        cols_in.append(cols)
        cols_out.append(cols)
    if box.bottom < height or d:  # bottom
        rows_in.append(np.full_like(cols, box.bottom - 1 - d))
        rows_out.append(np.full_like(cols, box.bottom - d))
        cols_in.append(cols)
        cols_out.append(cols)
    if box.x > 0 or d:  # left
        rows_in.append(rows)
        rows_out.append(rows)
        cols_in.append(np.full_like(rows, box.x + d))
        cols_out.append(np.full_like(rows, box.x + d - 1))
    if box.right < width or d:  # right
        rows_in.append(rows)
        rows_out.append(rows)
        cols_in.append(np.full_like(rows, box.right - 1 - d))
        cols_out.append(np.full_like(rows, box.right - d))
    if not rows_in:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, empty
    return tuple(np.concatenate(v) for v in (rows_in, cols_in, rows_out, cols_out))


@dataclass
class BorderSteps:
    """Accumulates border steps over frames (module docstring)."""

    public_sum: float = 0.0
    source_sum: float = 0.0
    pairs: int = 0
    rois: int = 0
    band_public_sum: float = 0.0
    band_source_sum: float = 0.0
    band_pairs: int = 0
    ring_abs_sum: float = 0.0
    ring_signed_sum: float = 0.0
    ring_pixels: int = 0

    def add(self, source: np.ndarray, public: np.ndarray, boxes: Sequence[Box]) -> None:
        """Add the steps across the borders of ``boxes`` (the ROIs replaced in ``public``).

        Raises:
            ValueError: the frames differ in shape, or a box is outside them.
        """
        if source.shape != public.shape:
            raise ValueError(f"frames differ in shape: {source.shape} vs {public.shape}")
        if not boxes:
            return
        height, width = source.shape[:2]
        replaced = np.zeros((height, width), dtype=bool)
        for box in boxes:
            if not box.fits_in(width, height):
                raise ValueError(f"box {box.as_tuple()} is outside the {width}x{height} frame")
            replaced[box.y : box.bottom, box.x : box.right] = True
        y_source, y_public = luma(source), luma(public)
        for index, box in enumerate(boxes):
            self._add_ring(y_source, y_public, box, [b for i, b in enumerate(boxes) if i != index])
            r_in, c_in, r_out, c_out = _straddling(box, width, height)
            keep = ~replaced[r_out, c_out]
            r_in, c_in, r_out, c_out = r_in[keep], c_in[keep], r_out[keep], c_out[keep]
            self.public_sum += float(np.abs(y_public[r_in, c_in] - y_public[r_out, c_out]).sum())
            self.source_sum += float(np.abs(y_source[r_in, c_in] - y_source[r_out, c_out]).sum())
            self.pairs += int(keep.sum())
            self.rois += 1
            for depth in range(1, max(1, math.ceil(BAND_FRACTION * min(box.w, box.h)))):
                r_in, c_in, r_out, c_out = _straddling(box, width, height, depth)
                self.band_public_sum += float(
                    np.abs(y_public[r_in, c_in] - y_public[r_out, c_out]).sum()
                )
                self.band_source_sum += float(
                    np.abs(y_source[r_in, c_in] - y_source[r_out, c_out]).sum()
                )
                self.band_pairs += len(r_in)

    def _add_ring(
        self, y_source: np.ndarray, y_public: np.ndarray, box: Box, others: Sequence[Box]
    ) -> None:
        depth = max(1, math.ceil(BAND_FRACTION * min(box.w, box.h)))
        ring = np.ones((box.h, box.w), dtype=bool)
        ring[depth : box.h - depth, depth : box.w - depth] = False
        for other in others:  # pixels of another ROI are surrogate in both senses
            x0, y0 = max(other.x, box.x), max(other.y, box.y)
            x1, y1 = min(other.right, box.right), min(other.bottom, box.bottom)
            if x0 < x1 and y0 < y1:
                ring[y0 - box.y : y1 - box.y, x0 - box.x : x1 - box.x] = False
        window = (slice(box.y, box.bottom), slice(box.x, box.right))
        difference = (y_public[window] - y_source[window])[ring]
        self.ring_abs_sum += float(np.abs(difference).sum())
        self.ring_signed_sum += float(difference.sum())
        self.ring_pixels += int(difference.size)

    @property
    def ring_luma_offset(self) -> float:
        """Mean |public - source| luma over the ROIs' rings (NaN before any ring pixel)."""
        return self.ring_abs_sum / self.ring_pixels if self.ring_pixels else float("nan")

    @property
    def ratio(self) -> float:
        """Mean public step / mean source step (NaN before any pair with a source step)."""
        return self.public_sum / self.source_sum if self.source_sum > 0 else float("nan")

    @property
    def band_ratio(self) -> float:
        """Mean public step / mean source step inside the band (NaN before any pair)."""
        if self.band_source_sum <= 0:
            return float("nan")
        return self.band_public_sum / self.band_source_sum

    def as_dict(self) -> dict[str, float | int]:
        """The figures for a report: ratio, both mean steps (0-255 luma), pairs and ROIs, and
        the band step ratio and the ring luma offset."""
        pairs = max(self.pairs, 1)
        return {
            "ratio": self.ratio,
            "band_ratio": self.band_ratio,
            "ring_luma_offset": self.ring_luma_offset,
            "ring_luma_bias": (
                self.ring_signed_sum / self.ring_pixels if self.ring_pixels else float("nan")
            ),
            "public_mean_step": self.public_sum / pairs,
            "source_mean_step": self.source_sum / pairs,
            "pairs": self.pairs,
            "rois": self.rois,
        }
