"""A differentiable stand-in for what happens to ``a`` between Ue (edge) and Ud (authority).

At run time ``a`` is rounded to 8 bits, resized from S x S to the face's ROI size, pasted into
the scene with the model's feathered mask (:class:`shared.compositing.Composition`), carries
the LSB message in a few pixels, and is cropped and resized back to S x S at the authority and
rounded to 8 bits again. Training Ud on ``a`` itself would teach it to invert a path that never
happens, so training puts this channel between Ue and Ud:

* per group of the batch, a random ROI size from the sides that
  :meth:`Composition.size_for` sends through this model size (log-spaced grid over
  ``[min_size, max_size]``, aspect ratio within ``max_aspect``), resampled with exactly the
  kernels of ``shared.geometry`` for the composition's mode (the matrices are read off OpenCV);
* the feathered paste over the scene, whose ROI pixels are ``x`` enlarged the same way (the
  band width drawn per group from ``[feather_min, feather_max]``, so ``Ud`` copes with the
  band an export chooses);
* 8-bit rounding with a straight-through gradient after every step that rounds at run time;
* optional LSB flips (the message) and Gaussian noise (a lossy codec).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from shared import geometry
from shared.compositing import Composition, feather_mask

__all__ = ["RoiChannel", "quantize_8bit", "resize_from_model", "resize_to_model"]


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round to multiples of 1/255 in the forward pass; identity gradient (straight-through)."""
    q = torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
    return x + (q - x).detach()


@functools.lru_cache(maxsize=4096)
def _axis_matrices(
    direction: str, in_hw: tuple[int, int], out_hw: tuple[int, int], resample: str
) -> tuple[np.ndarray, np.ndarray]:
    """The row and column resampling matrices of ``shared.geometry``'s resize, read off OpenCV.

    OpenCV's resizes are separable and linear: ``out = Ry @ img @ Rx.T``. Resizing an image whose
    channel c is the basis vector e_c along one axis (constant along the other) yields that
    axis' matrix column by column, with exactly the kernel ``shared.geometry`` picks for these
    sizes. So training resamples ``a`` exactly as the edge and authority will.
    """
    (h_in, w_in), (h_out, w_out) = in_hw, out_hw

    def probe(length: int, other: int, along_rows: bool) -> np.ndarray:
        eye = np.eye(length, dtype=np.float32)
        if along_rows:  # image[y, x, c] = (y == c)
            return np.ascontiguousarray(np.broadcast_to(eye[:, None, :], (length, other, length)))
        return np.ascontiguousarray(np.broadcast_to(eye[None, :, :], (other, length, length)))

    def resize(img: np.ndarray) -> np.ndarray:
        # OpenCV's area kernel takes at most 4 channels: resize the probe 4 channels at a time.
        parts = []
        for start in range(0, img.shape[2], 4):
            part = np.ascontiguousarray(img[:, :, start : start + 4])
            if direction == "from_model":
                out = geometry.resize_from_model(part, w_out, h_out, resample)  # type: ignore[arg-type]
            else:
                out = geometry.resize_to_model(part, h_out, resample)  # type: ignore[arg-type]
            parts.append(out.reshape(out.shape[0], out.shape[1], -1))
        return np.concatenate(parts, axis=2)

    rows = resize(probe(h_in, w_in, along_rows=True))  # h_out x w_out x h_in
    cols = resize(probe(w_in, h_in, along_rows=False))  # h_out x w_out x w_in
    return rows.reshape(h_out, w_out, h_in)[:, 0, :].copy(), cols.reshape(h_out, w_out, w_in)[
        0, :, :
    ].copy()


def _apply(direction: str, x: torch.Tensor, out_hw: tuple[int, int], resample: str) -> torch.Tensor:
    in_hw = (int(x.shape[-2]), int(x.shape[-1]))
    if in_hw == out_hw:
        return x
    ry, rx = _axis_matrices(direction, in_hw, out_hw, resample)
    ry_t = torch.from_numpy(ry).to(x.device, x.dtype)
    rx_t = torch.from_numpy(rx).to(x.device, x.dtype)
    return ry_t @ x @ rx_t.T


def resize_from_model(
    a: torch.Tensor, height: int, width: int, resample: str = "smooth"
) -> torch.Tensor:
    """Model output -> ROI with exactly ``shared.geometry.resize_from_model``'s kernel."""
    return _apply("from_model", a, (height, width), resample)


def resize_to_model(patch: torch.Tensor, size: int, resample: str = "smooth") -> torch.Tensor:
    """ROI -> model input with exactly ``shared.geometry.resize_to_model``'s kernel."""
    return _apply("to_model", patch, (size, size), resample)


@functools.lru_cache(maxsize=64)
def _sides_for(
    composition: Composition, size: int, min_size: int, max_size: int
) -> tuple[int, ...]:
    """The sides of the log grid over [min_size, max_size] that go through model ``size``."""
    grid = np.unique(np.round(np.geomspace(min_size, max_size, 32)).astype(int))
    sides = tuple(
        int(s) for s in grid if composition.size_for(geometry.Box(0, 0, int(s), int(s))) == size
    )
    if not sides:  # a size no ROI in the range selects: train it on its own side
        return (size,)
    return sides


class RoiChannel(torch.nn.Module):
    """Simulate paste + crop + 8-bit storage between Ue and Ud (see the module docstring).

    Args:
        composition: the model's resampling, feathering and sizes (its ``feather`` is not
            used: the band is drawn from ``[feather_min, feather_max]``).
        min_size / max_size: range of ROI sides in pixels.
        max_aspect: ROI height/width ratios are drawn in ``[1/max_aspect, max_aspect]``.
        groups: the batch is split into this many groups, each with its own ROI size.
        lsb_flip_prob: probability that a sample value gets its lowest bit flipped.
        noise_std: std of additive Gaussian noise (in [0,1] units) after the paste; 0 = none.
        identity_prob: probability that a group skips resizing (ROI exactly S x S).
        feather_min / feather_max: range of the paste band.

    Raises:
        ValueError: bad size or band ranges.
    """

    def __init__(
        self,
        composition: Composition | None = None,
        min_size: int = 20,
        max_size: int = 320,
        max_aspect: float = 1.25,
        groups: int = 4,
        lsb_flip_prob: float = 0.01,
        noise_std: float = 0.0,
        identity_prob: float = 0.1,
        feather_min: float = 0.0,
        feather_max: float = 0.0,
    ) -> None:
        super().__init__()
        if not 4 <= min_size <= max_size:
            raise ValueError(f"need 4 <= min_size <= max_size, got {min_size}, {max_size}")
        if not 0.0 <= feather_min <= feather_max <= 0.5:
            raise ValueError(
                f"need 0 <= feather_min <= feather_max <= 0.5, got {feather_min}, {feather_max}"
            )
        self.composition = composition or Composition()
        self.min_size, self.max_size = min_size, max_size
        self.max_aspect = max_aspect
        self.groups = max(1, groups)
        self.lsb_flip_prob = lsb_flip_prob
        self.noise_std = noise_std
        self.identity_prob = identity_prob
        self.feather_min, self.feather_max = feather_min, feather_max

    def _draw_size(self, size: int, generator: torch.Generator | None) -> tuple[int, int]:
        # Sizes come from a fixed log-spaced grid (and 5 aspect ratios) so the resampling
        # matrices, read off OpenCV once per size pair, are cached after a few hundred steps.
        sides = _sides_for(self.composition, size, self.min_size, self.max_size)
        aspects = np.exp(np.linspace(-1.0, 1.0, 5) * math.log(self.max_aspect))
        i = int(torch.randint(len(sides), (1,), generator=generator))
        j = int(torch.randint(len(aspects), (1,), generator=generator))
        side, aspect = float(sides[i]), float(aspects[j])
        height = max(4, round(side * math.sqrt(aspect)))
        width = max(4, round(side / math.sqrt(aspect)))
        return height, width

    def _draw_feather(self, generator: torch.Generator | None) -> float:
        # Five fixed values across the range: the masks are cached like the matrices.
        values = np.linspace(self.feather_min, self.feather_max, 5)
        return float(values[int(torch.randint(len(values), (1,), generator=generator))])

    def forward(
        self,
        a: torch.Tensor,
        x: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``a`` (N x 3 x S x S) as ``Ud`` receives it; ``x`` (the originals) is the scene the
        band blends into (without it the paste is hard)."""
        size = a.shape[-1]
        mode = self.composition.resample
        stored = quantize_8bit(a)
        scene = x.detach() if x is not None else None
        outputs = []
        start = 0
        for chunk in stored.chunk(self.groups, dim=0):
            stop = start + chunk.shape[0]
            if torch.rand(1, generator=generator).item() < self.identity_prob:
                height, width = size, size
                roi = chunk
            else:
                height, width = self._draw_size(size, generator)
                roi = quantize_8bit(resize_from_model(chunk, height, width, mode))
            if scene is not None and self.feather_max > 0:
                feather = self._draw_feather(generator)
                mask = torch.from_numpy(feather_mask(width, height, feather)[:, :, 0].copy()).to(
                    roi.device, roi.dtype
                )
                if float(mask.min()) < 1.0:
                    background = quantize_8bit(
                        resize_from_model(scene[start:stop], height, width, mode)
                    )
                    roi = quantize_8bit(background + mask * (roi - background))
            if self.noise_std > 0:
                roi = roi + torch.randn_like(roi) * self.noise_std
            if self.lsb_flip_prob > 0:
                flips = (torch.rand_like(roi) < self.lsb_flip_prob).to(roi.dtype)
                levels = torch.round(roi.detach().clamp(0, 1) * 255.0)
                sign = torch.where(levels.remainder(2) == 1, -1.0, 1.0)
                roi = roi + (flips * sign / 255.0)
            outputs.append(quantize_8bit(resize_to_model(roi, size, mode)))
            start = stop
        return torch.cat(outputs, dim=0)
