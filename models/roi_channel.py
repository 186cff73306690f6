"""A differentiable stand-in for what happens to ``a`` between Ue (edge) and Ud (authority).

At run time ``a`` is rounded to 8 bits, resized from S x S to the face's ROI size and pasted
(``shared.geometry.resize_from_model``: pixel replication up, area down), carries the LSB
message in a few pixels, and is cropped and resized back to S x S at the authority
(``resize_to_model``: area down, bilinear up) and rounded to 8 bits again. Training Ud on ``a``
itself would teach it to invert a path that never happens (DESIGN.md, "Resampling sits between
Ue and Ud"), so training puts this channel between Ue and Ud:

* per group of the batch, a random ROI size (from a log-spaced grid over ``[min_size,
  max_size]``, aspect ratio within ``max_aspect``), with exactly the kernels of
  ``shared.geometry`` (the resampling matrices are read off OpenCV);
* 8-bit rounding with a straight-through gradient at both ends;
* optional LSB flips (the message) and Gaussian noise (a lossy codec).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from shared import geometry

__all__ = ["RoiChannel", "quantize_8bit", "resize_from_model", "resize_to_model"]


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round to multiples of 1/255 in the forward pass; identity gradient (straight-through)."""
    q = torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
    return x + (q - x).detach()


@functools.lru_cache(maxsize=4096)
def _axis_matrices(
    direction: str, in_hw: tuple[int, int], out_hw: tuple[int, int]
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
                out = geometry.resize_from_model(part, w_out, h_out)
            else:
                out = geometry.resize_to_model(part, h_out)
            parts.append(out.reshape(out.shape[0], out.shape[1], -1))
        return np.concatenate(parts, axis=2)

    rows = resize(probe(h_in, w_in, along_rows=True))  # h_out x w_out x h_in
    cols = resize(probe(w_in, h_in, along_rows=False))  # h_out x w_out x w_in
    return rows.reshape(h_out, w_out, h_in)[:, 0, :].copy(), cols.reshape(h_out, w_out, w_in)[
        0, :, :
    ].copy()


def _apply(direction: str, x: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    in_hw = (int(x.shape[-2]), int(x.shape[-1]))
    if in_hw == out_hw:
        return x
    ry, rx = _axis_matrices(direction, in_hw, out_hw)
    ry_t = torch.from_numpy(ry).to(x.device, x.dtype)
    rx_t = torch.from_numpy(rx).to(x.device, x.dtype)
    return ry_t @ x @ rx_t.T


def resize_from_model(a: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Model output -> ROI with exactly ``shared.geometry.resize_from_model``'s kernel."""
    return _apply("from_model", a, (height, width))


def resize_to_model(patch: torch.Tensor, size: int) -> torch.Tensor:
    """ROI -> model input with exactly ``shared.geometry.resize_to_model``'s kernel."""
    return _apply("to_model", patch, (size, size))


class RoiChannel(torch.nn.Module):
    """Simulate paste + crop + 8-bit storage between Ue and Ud (see the module docstring).

    Args:
        min_size / max_size: range of ROI sides in pixels.
        max_aspect: ROI height/width ratios are drawn in ``[1/max_aspect, max_aspect]``.
        groups: the batch is split into this many groups, each with its own ROI size.
        lsb_flip_prob: probability that a sample value gets its lowest bit flipped.
        noise_std: std of additive Gaussian noise (in [0,1] units) after the paste; 0 = none.
        identity_prob: probability that a group skips resizing (ROI exactly S x S).
    """

    def __init__(
        self,
        min_size: int = 16,
        max_size: int = 160,
        max_aspect: float = 1.25,
        groups: int = 4,
        lsb_flip_prob: float = 0.01,
        noise_std: float = 0.0,
        identity_prob: float = 0.1,
    ) -> None:
        super().__init__()
        if not 4 <= min_size <= max_size:
            raise ValueError(f"need 4 <= min_size <= max_size, got {min_size}, {max_size}")
        self.min_size, self.max_size = min_size, max_size
        self.max_aspect = max_aspect
        self.groups = max(1, groups)
        self.lsb_flip_prob = lsb_flip_prob
        self.noise_std = noise_std
        self.identity_prob = identity_prob

    def _draw_size(self, generator: torch.Generator | None) -> tuple[int, int]:
        # Sizes come from a fixed log-spaced grid (and 5 aspect ratios) so the resampling
        # matrices, read off OpenCV once per size pair, are cached after a few hundred steps.
        sides = np.unique(np.round(np.geomspace(self.min_size, self.max_size, 24)).astype(int))
        aspects = np.exp(np.linspace(-1.0, 1.0, 5) * math.log(self.max_aspect))
        i = int(torch.randint(len(sides), (1,), generator=generator))
        j = int(torch.randint(len(aspects), (1,), generator=generator))
        side, aspect = float(sides[i]), float(aspects[j])
        height = max(4, round(side * math.sqrt(aspect)))
        width = max(4, round(side / math.sqrt(aspect)))
        return height, width

    def forward(self, a: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        size = a.shape[-1]
        stored = quantize_8bit(a)
        outputs = []
        for chunk in stored.chunk(self.groups, dim=0):
            if torch.rand(1, generator=generator).item() < self.identity_prob:
                roi = chunk
            else:
                height, width = self._draw_size(generator)
                roi = quantize_8bit(resize_from_model(chunk, height, width))
            if self.noise_std > 0:
                roi = roi + torch.randn_like(roi) * self.noise_std
            if self.lsb_flip_prob > 0:
                flips = (torch.rand_like(roi) < self.lsb_flip_prob).to(roi.dtype)
                levels = torch.round(roi.detach().clamp(0, 1) * 255.0)
                sign = torch.where(levels.remainder(2) == 1, -1.0, 1.0)
                roi = roi + (flips * sign / 255.0)
            outputs.append(quantize_8bit(resize_to_model(roi, size)))
        return torch.cat(outputs, dim=0)
