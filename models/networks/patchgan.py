"""Df: a PatchGAN critic (pix2pix ``NLayerDiscriminator``) for WGAN-GP.

It scores overlapping patches of a 3-channel image in [0,1]; the critic value of an image is
the mean of its patch scores. No BatchNorm: it breaks the per-sample gradient penalty of
WGAN-GP (the penalty assumes the critic treats each sample independently), so the layers use
InstanceNorm (affine) or no normalisation. No sigmoid: a Wasserstein critic is unbounded.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MultiScaleCritic", "PatchCritic"]


class PatchCritic(nn.Module):
    """PatchGAN critic: ``N x 3 x S x S`` -> ``N x 1 x P x P`` patch scores.

    Args:
        width: filters of the first layer (pix2pix ``ndf``).
        layers: stride-2 layers after the first (3 gives 70x70 receptive fields).
        norm: ``"instance"`` or ``"none"``.
        spectral_norm: spectral normalisation of every convolution (a Lipschitz bound that
            steadies the critic; with it the critic sees fine texture such as colour speckle
            sooner).
    """

    def __init__(
        self,
        width: int = 32,
        layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none' (not batch), got {norm!r}")

        def norm_layer(channels: int) -> nn.Module:
            return nn.InstanceNorm2d(channels, affine=True) if norm == "instance" else nn.Identity()

        modules: list[nn.Module] = [
            nn.Conv2d(3, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        channels = width
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            nxt = width * min(2**i, 8)
            modules += [
                nn.Conv2d(channels, nxt, 4, stride=stride, padding=1),
                norm_layer(nxt),
                nn.LeakyReLU(0.2, True),
            ]
            channels = nxt
        modules.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        if spectral_norm:
            modules = [
                nn.utils.parametrizations.spectral_norm(m) if isinstance(m, nn.Conv2d) else m
                for m in modules
            ]
        self.model = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * 2.0 - 1.0)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """One critic value per image (mean over patches), shape N."""
        return self.forward(x).mean(dim=(1, 2, 3))


class MultiScaleCritic(nn.Module):
    """PatchGAN critics at full and reduced resolutions (pix2pixHD's multi-scale critic).

    Scale ``k`` sees the image average-pooled by ``2**k``: the full-size critic judges fine
    texture (speckle, blocks), the coarser ones the face's overall shape and shading. The output
    is ``N x scales`` (each critic's mean patch score); the critic value is their mean.

    Args:
        scales: number of critics (>= 1).
        width / layers / norm / spectral_norm: as :class:`PatchCritic`, for each critic.
    """

    def __init__(
        self,
        width: int = 32,
        layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
        scales: int = 2,
    ) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.critics = nn.ModuleList(
            PatchCritic(width, layers, norm, spectral_norm) for _ in range(scales)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for k, critic in enumerate(self.critics):
            image = nn.functional.avg_pool2d(x, 2**k) if k else x
            scores.append(critic(image).flatten(1).mean(dim=1))
        return torch.stack(scores, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """One critic value per image (mean over scales), shape N."""
        return self.forward(x).mean(dim=1)
