"""How a model's output enters the frame, and how the authority takes it out again.

One :class:`Composition` per model, read from its card (``"composition"``), so the edge that
pastes ``a``, the authority that crops it for ``Ud`` and pastes ``r``, the training channel
(``models.roi_channel``) and the evaluation all derive the same pixels from what the ROI
message carries (the boxes and the model id):

* **model size per face** (:meth:`Composition.size_for`): a model may run at several square
  sizes (a fully convolutional pair, card ``sizes``); each ROI goes through the largest size
  not much above its own side, so a 200 px face is not made from 64 x 64 pixels;
* **resampling** (``resample``, :mod:`shared.geometry`): ``"smooth"`` (bicubic up, area down) or
  the round-1 ``"replicate"`` (pixel replication), which old models and their recordings keep;
* **feathered paste** (``feather``): the ROI is replaced whole, but within a band of
  ``feather`` x its smaller side at the border the pasted image is blended into the scene with
  a raised-cosine weight (:func:`feather_mask`), so the box border shows no step. The model is
  trained to carry the ROI's outer ring (background) through, so the band blends two images
  that are nearly equal there and hands back little of the original.

Paste (edge, ``a``; authority, ``r``)::

    roi <- round(m * resize(patch -> ROI) + (1 - m) * roi)        m = feather_mask(w, h)

The authority pastes ``r`` with the same mask over the public ROI, whose band pixels are mostly
the scene's own already.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.geometry import (
    RESAMPLE_MODES,
    Box,
    Resample,
    batch_to_patches,
    crop,
    crops_to_batch,
    resize_from_model,
)

__all__ = [
    "LEGACY",
    "Composition",
    "CompositionError",
    "feather_mask",
    "group_by_size",
]

#: Largest factor by which an ROI may be enlarged into a model size larger than itself (an ROI
#: of side 112 still goes through a 128 model; one of 100 goes through 64).
UPSCALE_TOLERANCE = 1.15


class CompositionError(ValueError):
    """A model card's ``composition`` entry is missing fields or holds invalid values."""


@functools.lru_cache(maxsize=1024)
def _ramp(length: int, band: float) -> np.ndarray:
    """The raised cosine of the distance to the nearer end, along one side (read-only)."""
    distance = np.minimum(np.arange(length), np.arange(length)[::-1]).astype(np.float32)
    t = np.clip((distance + 0.5) / band, 0.0, 1.0)
    ramp = (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
    ramp.setflags(write=False)
    return ramp


def _mask(width: int, height: int, feather: float) -> np.ndarray:
    band = feather * min(width, height)
    if band < 1.0:
        return np.ones((height, width, 1), dtype=np.float32)
    mask = _ramp(height, band)[:, None] * _ramp(width, band)[None, :]
    mask.setflags(write=False)
    return mask[:, :, None]


def feather_mask(width: int, height: int, feather: float) -> np.ndarray:
    """The paste weight of a ``width x height`` ROI, ``float32 height x width x 1`` in (0, 1].

    1 inside; within ``band = feather * min(width, height)`` pixels of the border a raised
    cosine of the distance to it (per axis, multiplied), ``0.5 - 0.5 cos(pi (d + 0.5) / band)``
    (``d = 0`` on the outermost pixels). A band under one pixel is no band (all ones). The
    array is read-only, the product of two cached per-side ramps: an ROI-sized cache grew with
    every new ROI size (80 MiB after 45 frames at 1080p, up to 2,048 masks of up to a frame).

    Raises:
        ValueError: a non-positive size or ``feather`` outside ``[0, 0.5]``.
    """
    if width < 1 or height < 1:
        raise ValueError(f"ROI size must be at least 1x1, got {width}x{height}")
    if not 0.0 <= feather <= 0.5:
        raise ValueError(f"feather must be in [0, 0.5], got {feather}")
    return _mask(int(width), int(height), float(feather))


@dataclass(frozen=True)
class Composition:
    """A model's paste/crop rule (module docstring).

    Attributes:
        resample: ``"smooth"`` or ``"replicate"`` (:mod:`shared.geometry`).
        feather: border band as a fraction of the ROI's smaller side, in ``[0, 0.5]``.
        sizes: the square model sizes offered, ascending (the first is the card's
            ``input_size``).

    Raises:
        CompositionError: invalid values.
    """

    resample: Resample = "smooth"
    feather: float = 0.0
    sizes: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        if self.resample not in RESAMPLE_MODES:
            raise CompositionError(
                f"composition.resample must be one of {', '.join(RESAMPLE_MODES)}, "
                f"got {self.resample!r}"
            )
        if not (isinstance(self.feather, (int, float)) and 0.0 <= self.feather <= 0.5):
            raise CompositionError(f"composition.feather must be in [0, 0.5], got {self.feather!r}")
        sizes = tuple(self.sizes)
        if not sizes or any(not isinstance(s, int) or s < 8 for s in sizes):
            raise CompositionError(f"composition.sizes must be integers >= 8, got {list(sizes)}")
        if list(sizes) != sorted(set(sizes)):
            raise CompositionError(f"composition.sizes must be ascending and distinct: {sizes}")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "feather", float(self.feather))

    # -- the card ----------------------------------------------------------------------------
    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Composition:
        """The composition a card states; a card without one is a round-1 model
        (:data:`LEGACY` at its ``input_size``).

        Raises:
            CompositionError: a malformed ``composition`` entry, or sizes that do not start
                with the card's ``input_size``.
        """
        input_size = card.get("input_size", 64)
        entry = card.get("composition")
        if entry is None:
            return cls("replicate", 0.0, (int(input_size),))
        if not isinstance(entry, Mapping):
            raise CompositionError("composition must be a JSON object")
        unknown = set(entry) - {"resample", "feather", "sizes"}
        if unknown:
            raise CompositionError(f"composition has unknown fields {sorted(unknown)}")
        try:
            composition = cls(
                resample=entry["resample"],
                feather=entry["feather"],
                sizes=tuple(entry["sizes"]),
            )
        except (KeyError, TypeError) as exc:
            raise CompositionError(f"composition: missing or invalid field {exc}") from exc
        if composition.sizes[0] != input_size:
            raise CompositionError(
                f"composition.sizes {list(composition.sizes)} must start with the card's "
                f"input_size {input_size}"
            )
        return composition

    def to_card(self) -> dict[str, Any]:
        """The ``composition`` entry of a model card."""
        return {"resample": self.resample, "feather": self.feather, "sizes": list(self.sizes)}

    # -- per face ----------------------------------------------------------------------------
    def size_for(self, box: Box) -> int:
        """The model size an ROI goes through: the largest offered size at most
        ``UPSCALE_TOLERANCE`` x the ROI's smaller side (the smallest size for small ROIs)."""
        side = min(box.w, box.h) * UPSCALE_TOLERANCE
        fitting = [s for s in self.sizes if s <= side]
        return fitting[-1] if fitting else self.sizes[0]

    def mask(self, width: int, height: int) -> np.ndarray:
        """:func:`feather_mask` of this composition for a ``width x height`` ROI."""
        return feather_mask(width, height, self.feather)

    def crops(self, frame: np.ndarray, boxes: Sequence[Box], size: int) -> np.ndarray:
        """The ROIs as a model batch ``float32 N x 3 x size x size`` in [0, 1].

        Raises:
            shared.geometry.BoxOutsideFrameError: a box is not inside the frame.
        """
        return crops_to_batch(frame, boxes, size, self.resample)

    def paste(
        self,
        frame: np.ndarray,
        batch: np.ndarray,
        boxes: Sequence[Box],
        *,
        resample: Resample | None = None,
    ) -> None:
        """Paste a model batch (``N x 3 x S x S`` in [0, 1]) into ``frame`` at ``boxes``, in
        place, feathered into the scene (module docstring). ``resample`` overrides the
        enlarging kernel (the authority enlarges ``r`` smoothly even for round-1 models).

        Raises:
            ValueError: batch and box counts differ, or the batch has the wrong layout.
            shared.geometry.BoxOutsideFrameError: a box is not inside the frame.
        """
        if len(batch) != len(boxes):
            raise ValueError(f"{len(batch)} model outputs for {len(boxes)} boxes")
        mode = resample or self.resample
        for patch, box in zip(batch_to_patches(batch), boxes, strict=True):
            region = crop(frame, box)
            enlarged = resize_from_model(patch, box.w, box.h, mode)
            band = math.ceil(self.feather * min(box.w, box.h))
            mask = self.mask(box.w, box.h) if band >= 1 else None
            if mask is None or mask.min() == 1.0:
                region[...] = enlarged
                continue
            _blend_band(region, enlarged, mask, band)


def _blend_band(region: np.ndarray, patch: np.ndarray, mask: np.ndarray, band: int) -> None:
    """``region <- round(mask * patch + (1 - mask) * region)``, computed only on the border
    strips of width ``band`` (the mask is 1 inside them: a plain copy there)."""
    h, w = region.shape[:2]
    strips = [
        (slice(0, band), slice(0, w)),
        (slice(h - band, h), slice(0, w)),
        (slice(band, h - band), slice(0, band)),
        (slice(band, h - band), slice(w - band, w)),
    ]
    blended = []
    for rows, cols in strips:
        scene = region[rows, cols].astype(np.float32)
        scene += mask[rows, cols] * (patch[rows, cols].astype(np.float32) - scene)
        blended.append(np.rint(scene).astype(np.uint8))
    region[band : h - band, band : w - band] = patch[band : h - band, band : w - band]
    for (rows, cols), values in zip(strips, blended, strict=True):
        region[rows, cols] = values


#: Round-1 models (no ``composition`` in the card): pixel replication, hard square paste.
LEGACY = Composition("replicate", 0.0, (64,))


def group_by_size(composition: Composition, boxes: Sequence[Box]) -> dict[int, list[int]]:
    """Indices of ``boxes`` per model size (:meth:`Composition.size_for`), sizes ascending."""
    groups: dict[int, list[int]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(composition.size_for(box), []).append(i)
    return dict(sorted(groups.items()))
