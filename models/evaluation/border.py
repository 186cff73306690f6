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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.geometry import Box

__all__ = ["BorderSteps", "luma"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an ``H x W x 3`` RGB image, ``float32 H x W`` on its 0-255 scale."""
    return np.asarray(rgb, dtype=np.float32) @ _LUMA


def _straddling(box: Box, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Row/column indices of the inside and outside pixels of every pair across ``box``."""
    rows_in, cols_in, rows_out, cols_out = [], [], [], []
    cols = np.arange(box.x, box.right)
    rows = np.arange(box.y, box.bottom)
    if box.y > 0:  # top
        rows_in.append(np.full_like(cols, box.y))
        rows_out.append(np.full_like(cols, box.y - 1))
        cols_in.append(cols)
        cols_out.append(cols)
    if box.bottom < height:  # bottom
        rows_in.append(np.full_like(cols, box.bottom - 1))
        rows_out.append(np.full_like(cols, box.bottom))
        cols_in.append(cols)
        cols_out.append(cols)
    if box.x > 0:  # left
        rows_in.append(rows)
        rows_out.append(rows)
        cols_in.append(np.full_like(rows, box.x))
        cols_out.append(np.full_like(rows, box.x - 1))
    if box.right < width:  # right
        rows_in.append(rows)
        rows_out.append(rows)
        cols_in.append(np.full_like(rows, box.right - 1))
        cols_out.append(np.full_like(rows, box.right))
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
        for box in boxes:
            r_in, c_in, r_out, c_out = _straddling(box, width, height)
            keep = ~replaced[r_out, c_out]
            r_in, c_in, r_out, c_out = r_in[keep], c_in[keep], r_out[keep], c_out[keep]
            self.public_sum += float(np.abs(y_public[r_in, c_in] - y_public[r_out, c_out]).sum())
            self.source_sum += float(np.abs(y_source[r_in, c_in] - y_source[r_out, c_out]).sum())
            self.pairs += int(keep.sum())
            self.rois += 1

    @property
    def ratio(self) -> float:
        """Mean public step / mean source step (NaN before any pair with a source step)."""
        return self.public_sum / self.source_sum if self.source_sum > 0 else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        """The figures for a report: ratio, both mean steps (0-255 luma), pairs and ROIs."""
        pairs = max(self.pairs, 1)
        return {
            "ratio": self.ratio,
            "public_mean_step": self.public_sum / pairs,
            "source_mean_step": self.source_sum / pairs,
            "pairs": self.pairs,
            "rois": self.rois,
        }
