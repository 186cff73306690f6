"""Image geometry shared by the edge and the authority: boxes, head ROIs, crop, resize, paste.

Conventions
-----------
* Frames are ``H x W x 3`` ``uint8`` RGB arrays; a :class:`Box` is ``(x, y, w, h)`` in integer
  pixels, top-left corner inclusive, ``w, h >= 1`` (the paper's ROI message carries exactly these).
* The model works on ``S x S`` crops (``S = 64`` for the paper). Model tensors are ``float32``
  ``N x C x S x S`` in ``[0, 1]``.

Resampling between the ROI and the model size
---------------------------------------------
The edge resizes ``a = Ue(x)`` from ``S x S`` to the ROI and pastes it; the authority crops the
same ROI and resizes it back to ``S x S`` for ``Ud``. Shrinking is always area averaging; how
an image is *enlarged* is the ``resample`` mode (a model's card names it;
:mod:`shared.compositing` reads it):

* ``"smooth"``: bicubic in both directions. No visible blocks on faces larger than ``S``;
  ``Ud`` is trained with exactly this path in the loop (``models.roi_channel``).
* ``"replicate"`` (models of round 1, before the card named a mode): model -> ROI by pixel
  replication (nearest), ROI -> model bilinear. For integer factors (ROI = k * S) area
  averaging exactly undoes pixel replication, so
  ``resize_to_model(resize_from_model(a, kS, kS)) == a`` bit for bit; on screen the surrogate
  shows k x k blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

__all__ = [
    "HEAD_MARGIN",
    "RESAMPLE_MODES",
    "Box",
    "BoxOutsideFrameError",
    "Resample",
    "batch_to_patches",
    "clip_box",
    "crop",
    "crops_to_batch",
    "expand_to_head",
    "iou",
    "paste",
    "resize_from_model",
    "resize_to_model",
]

#: The default face -> head ROI margin of :func:`expand_to_head` (the edge's default, and what
#: training and evaluation crops use so they match what the edge feeds ``Ue``).
HEAD_MARGIN = 0.25

#: How images are enlarged between the ROI and the model size (module docstring).
Resample = Literal["smooth", "replicate"]
RESAMPLE_MODES: tuple[str, ...] = get_args(Resample)

# Enlarging kernels per mode: (model -> ROI, ROI -> model).
_ENLARGE: dict[str, tuple[int, int]] = {
    "smooth": (cv2.INTER_CUBIC, cv2.INTER_CUBIC),
    "replicate": (cv2.INTER_NEAREST_EXACT, cv2.INTER_LINEAR),
}


class BoxOutsideFrameError(ValueError):
    """A box does not lie (entirely) inside the frame it is applied to."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned integer rectangle: top-left ``(x, y)``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Box.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.x < 0 or self.y < 0:
            raise ValueError(f"Box corner must be non-negative, got ({self.x}, {self.y})")
        if self.w < 1 or self.h < 1:
            raise ValueError(f"Box size must be at least 1x1, got {self.w}x{self.h}")

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.y + self.h

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def fits_in(self, frame_width: int, frame_height: int) -> bool:
        """Whether the box lies entirely inside a ``frame_width x frame_height`` frame."""
        return self.right <= frame_width and self.bottom <= frame_height

    def check_inside(self, frame_width: int, frame_height: int) -> None:
        """Raise :class:`BoxOutsideFrameError` unless the box lies inside the frame."""
        if not self.fits_in(frame_width, frame_height):
            raise BoxOutsideFrameError(
                f"box {self.as_tuple()} extends beyond the {frame_width}x{frame_height} frame"
            )


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0.0 when disjoint)."""
    ix = max(0, min(a.right, b.right) - max(a.x, b.x))
    iy = max(0, min(a.bottom, b.bottom) - max(a.y, b.y))
    inter = ix * iy
    return inter / float(a.area + b.area - inter) if inter else 0.0


def clip_box(
    x0: float, y0: float, x1: float, y1: float, frame_width: int, frame_height: int
) -> Box | None:
    """Round the float rectangle ``[x0, x1) x [y0, y1)`` outward and clip it to the frame.

    Returns ``None`` when nothing of it lies inside the frame.
    """
    left = max(0, int(np.floor(x0)))
    top = max(0, int(np.floor(y0)))
    right = min(frame_width, int(np.ceil(x1)))
    bottom = min(frame_height, int(np.ceil(y1)))
    if right <= left or bottom <= top:
        return None
    return Box(left, top, right - left, bottom - top)


def expand_to_head(
    face: Box,
    frame_width: int,
    frame_height: int,
    margin: float = HEAD_MARGIN,
    square: bool = True,
) -> Box:
    """Grow a face box into a head ROI, clipped to the frame.

    The ROI is centred on the face box; each side grows by ``margin`` times the face's larger
    side (so hair, ears and chin are covered). With ``square`` the ROI is made square before
    clipping (the model input is square; a clipped ROI at the frame border may end up
    rectangular).

    Raises:
        ValueError: negative ``margin``, or the face box lies outside the frame.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    face.check_inside(frame_width, frame_height)
    if square:
        width = height = round(max(face.w, face.h) * (1.0 + 2.0 * margin))
    else:
        grow = max(face.w, face.h) * margin
        width, height = round(face.w + 2.0 * grow), round(face.h + 2.0 * grow)
    # Integer size first, then an integer corner centred on the face, then clip.
    left = int(np.floor(face.x + (face.w - width) / 2.0 + 0.5))
    top = int(np.floor(face.y + (face.h - height) / 2.0 + 0.5))
    box = clip_box(left, top, left + width, top + height, frame_width, frame_height)
    if box is None:  # cannot happen for a face inside the frame; guard anyway
        raise ValueError(f"face box {face.as_tuple()} produced an empty head ROI")
    return box


def crop(frame: np.ndarray, box: Box) -> np.ndarray:
    """Return the ``box`` region of ``frame`` (a view).

    Raises:
        BoxOutsideFrameError: the box is not inside the frame.
    """
    box.check_inside(frame.shape[1], frame.shape[0])
    return frame[box.y : box.bottom, box.x : box.right]


def _check_mode(resample: str) -> None:
    if resample not in _ENLARGE:
        raise ValueError(f"unknown resample mode {resample!r}; known: {', '.join(_ENLARGE)}")


def resize_to_model(patch: np.ndarray, size: int, resample: Resample = "replicate") -> np.ndarray:
    """Resize an ROI patch to ``size x size`` for the model (area down; enlarging per
    ``resample``: bicubic for ``smooth``, bilinear for ``replicate``).

    Raises:
        ValueError: an unknown ``resample`` mode.
    """
    _check_mode(resample)
    h, w = patch.shape[:2]
    if (w, h) == (size, size):
        return np.ascontiguousarray(patch)
    shrinking = w >= size and h >= size
    interpolation = cv2.INTER_AREA if shrinking else _ENLARGE[resample][1]
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def resize_from_model(
    patch: np.ndarray, width: int, height: int, resample: Resample = "replicate"
) -> np.ndarray:
    """Resize a model output to ``width x height`` for pasting (area down; enlarging per
    ``resample``: bicubic for ``smooth``, pixel replication for ``replicate``).

    Raises:
        ValueError: an unknown ``resample`` mode.
    """
    _check_mode(resample)
    h, w = patch.shape[:2]
    if (w, h) == (width, height):
        return np.ascontiguousarray(patch)
    enlarging = width >= w and height >= h
    interpolation = _ENLARGE[resample][0] if enlarging else cv2.INTER_AREA
    return cv2.resize(patch, (width, height), interpolation=interpolation)


def paste(frame: np.ndarray, patch: np.ndarray, box: Box) -> None:
    """Write ``patch`` (already ``box.h x box.w``) into ``frame`` at ``box``, in place.

    Only the pixels inside the box change; nothing is blended with the original.

    Raises:
        BoxOutsideFrameError: the box is not inside the frame.
        ValueError: the patch does not have the box's size.
    """
    box.check_inside(frame.shape[1], frame.shape[0])
    if patch.shape[:2] != (box.h, box.w):
        raise ValueError(f"patch of shape {patch.shape[:2]} does not match box {box.as_tuple()}")
    frame[box.y : box.bottom, box.x : box.right] = patch


def crops_to_batch(
    frame: np.ndarray, boxes: Sequence[Box], size: int, resample: Resample = "replicate"
) -> np.ndarray:
    """Crop every box, resize to ``size``, and stack as ``float32 N x 3 x size x size`` in [0,1].

    Raises:
        BoxOutsideFrameError: a box is not inside the frame.
    """
    batch = np.empty((len(boxes), 3, size, size), dtype=np.float32)
    for i, box in enumerate(boxes):
        patch = resize_to_model(crop(frame, box), size, resample)
        batch[i] = patch.transpose(2, 0, 1)
    batch *= np.float32(1.0 / 255.0)
    return batch


def batch_to_patches(batch: np.ndarray) -> np.ndarray:
    """Convert a model output ``N x 3 x S x S`` float batch in [0,1] to ``N x S x S x 3`` uint8.

    Values are clipped to [0, 1] and rounded to the nearest integer level.

    Raises:
        ValueError: the batch is not ``N x 3 x S x S``.
    """
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"expected an N x 3 x S x S batch, got shape {batch.shape}")
    scaled = np.clip(batch, 0.0, 1.0) * 255.0
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)
