"""Ue and Ud: pix2pix-style U-Nets (Isola et al.) on square crops, values in [0, 1].

The U-Net is built recursively from the innermost block outward, as in
pytorch-CycleGAN-and-pix2pix: each level halves the resolution with a stride-2 conv and doubles
the width up to ``8 * width``; each decoder level concatenates its encoder twin (skip
connection). For 64x64 inputs there are 6 levels (64 -> 1).

Inputs are mapped to [-1, 1] inside the network and the tanh output back to [0, 1], so the ONNX
contract is plain [0, 1] images: Ue takes RGB + one U(0,1) noise channel (4 channels), Ud takes
RGB (3 channels). There is no skip connection from Ue to Ud: they are separate networks.

Normalisation defaults to GroupNorm rather than pix2pix's BatchNorm: a reversible codec must
give each face the same output whatever else is in the batch, and identical behaviour in
training and in the exported (eval-mode) model. BatchNorm's running statistics lag the weights
during training, so the exported Ue/Ud pair differed from the pair Ud was trained against;
GroupNorm is per-sample and has no train/eval difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["NORMS", "Film", "NoiseStyle", "UNet"]


def _group_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(math.gcd(8, channels), channels)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "group": _group_norm,
    "batch": nn.BatchNorm2d,
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=True),
}


class Film(nn.Module):
    """Feature-wise modulation ``h * (1 + gamma(w)) + beta(w)`` by a style vector ``w``."""

    def __init__(self, style: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(style, 2 * channels)

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(w)[:, :, None, None].chunk(2, dim=1)
        return h * (1.0 + gamma) + beta


class _Level(nn.Module):
    """One U-Net level: down conv, the inner levels, up conv, and the skip concatenation.

    With ``style`` > 0 the level's up path ends with a :class:`Film` of the style vector.
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        submodule: _Level | None,
        *,
        outermost: bool = False,
        in_channels: int | None = None,
        out_channels: int | None = None,
        dropout: float = 0.0,
        norm: Callable[[int], nn.Module] = _group_norm,
        style: int = 0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_ch = in_channels if in_channels is not None else outer
        down_conv = nn.Conv2d(in_ch, inner, 4, stride=2, padding=1, bias=False)
        self.submodule = submodule
        self.film: Film | None = None
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, out_channels or outer, 4, stride=2, padding=1)
            self.down = nn.Sequential(down_conv)
            self.up = nn.Sequential(nn.ReLU(True), up, nn.Tanh())
            return
        if submodule is None:  # innermost: no norm on the 1x1 bottleneck
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=False)
            self.down = nn.Sequential(nn.LeakyReLU(0.2, True), down_conv)
            up_layers: list[nn.Module] = [nn.ReLU(True), up, norm(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=False)
            self.down = nn.Sequential(nn.LeakyReLU(0.2, True), down_conv, norm(inner))
            up_layers = [nn.ReLU(True), up, norm(outer)]
            if dropout:
                up_layers.append(nn.Dropout(dropout))
        self.up = nn.Sequential(*up_layers)
        if style:
            self.film = Film(style, outer)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        h = self.down(x)
        if self.submodule is not None:
            h = self.submodule(h, style)
        h = self.up(h)
        if self.film is not None and style is not None:
            h = self.film(h, style)
        if self.outermost:
            return h
        return torch.cat([x, h], dim=1)


class NoiseStyle(nn.Module):
    """A style vector from ``Ue``'s noise plane, so the noise chooses the surrogate's identity.

    A U(0,1) plane per pixel is easy for a U-Net to ignore (measured in round 1: two planes
    changed the output by 0.004 on average). Here the plane is also summarised into ``code``
    numbers: its means over a ``sqrt(code) x sqrt(code)`` grid of blocks, centred and projected
    on the sphere of radius ``sqrt(code)`` (as StyleGAN normalises its latent), which an MLP
    maps to the style vector that modulates the decoder levels (:class:`Film`). Block means do
    not change when a plane is enlarged by pixel replication, so the edge gives a track one
    identity at every model size by enlarging its plane (``edge_agent.noise``).
    """

    def __init__(self, code: int = 16, style: int = 128) -> None:
        super().__init__()
        grid = math.isqrt(code)
        if grid * grid != code or code < 4:
            raise ValueError(f"the noise code must be a square >= 4, got {code}")
        self.grid = grid
        self.code = code
        self.mlp = nn.Sequential(
            nn.Linear(code, style), nn.LeakyReLU(0.2, True), nn.Linear(style, style)
        )

    def latent(self, noise: torch.Tensor) -> torch.Tensor:
        """The ``N x code`` point on the sphere of radius ``sqrt(code)`` a plane stands for."""
        n, _, height, width = noise.shape
        g = self.grid
        blocks = (noise - 0.5).reshape(n, g, height // g, g, width // g).mean(dim=(2, 4))
        means = blocks.flatten(1)
        return means * (math.sqrt(self.code) / (means.norm(dim=1, keepdim=True) + 1e-8))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.latent(noise))


class UNet(nn.Module):
    """A U-Net: ``N x in_channels x S x S`` in [0,1] -> ``N x out_channels x S x S`` in [0,1].

    Args:
        in_channels: 4 for Ue (RGB + noise), 3 for Ud.
        out_channels: 3.
        width: filters of the first level (pix2pix ``ngf``); deeper levels double up to 8x.
        input_size: S, a power of two >= 8 (the number of levels is log2(S)).
        dropout: dropout in the three innermost decoder levels (pix2pix uses 0.5; 0 keeps the
            mapping deterministic, which reversibility wants).
        norm: ``group`` (default), ``batch`` (pix2pix) or ``instance``.
        max_multiplier: widths double per level up to ``max_multiplier * width`` (pix2pix: 8;
            4 keeps the deep, low-resolution levels -- where most parameters but few FLOPs are --
            at half the channels: 2.6 M instead of 7.3 M parameters at width 32).
        noise_code: for ``Ue`` (4 channels): summarise the noise plane (the last channel) into
            this many numbers that modulate every inner decoder level (:class:`NoiseStyle`);
            0 = the plane is only an input channel (round-1 models).
        style: width of the style vector.

    The network is fully convolutional: trained at ``input_size``, it runs at any multiple of
    ``2 ** log2(input_size)`` (e.g. 64 and 128 for ``input_size`` 64).

    Raises:
        ValueError: a bad size, width or norm name.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        width: int = 32,
        input_size: int = 64,
        dropout: float = 0.0,
        norm: str = "group",
        max_multiplier: int = 8,
        noise_code: int = 0,
        style: int = 128,
    ) -> None:
        super().__init__()
        if max_multiplier < 1:
            raise ValueError(f"max_multiplier must be >= 1, got {max_multiplier}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")
        levels = round(math.log2(input_size))
        if input_size < 8 or 2**levels != input_size:
            raise ValueError(f"input_size must be a power of two >= 8, got {input_size}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.width, self.input_size, self.norm = width, input_size, norm
        if noise_code and in_channels < 2:
            raise ValueError("noise_code needs a noise channel (in_channels >= 2)")
        self.noise_style = NoiseStyle(noise_code, style) if noise_code else None
        style_width = style if noise_code else 0
        # Widths from the outermost level inward: w, 2w, 4w, 8w, 8w, ... (capped)
        widths = [width * min(2**i, max_multiplier) for i in range(levels)]
        block: nn.Module | None = None
        for depth in range(levels - 1, 0, -1):
            inner, outer = widths[depth], widths[depth - 1]
            drop = dropout if depth >= levels - 3 and block is not None else 0.0
            block = _Level(outer, inner, block, dropout=drop, norm=NORMS[norm], style=style_width)
        self.model = _Level(
            out_channels,
            widths[0],
            block,
            outermost=True,
            in_channels=in_channels,
            out_channels=out_channels,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        style = self.noise_style(x[:, -1:]) if self.noise_style is not None else None
        return (self.model(x * 2.0 - 1.0, style) + 1.0) * 0.5
