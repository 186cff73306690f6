"""The parts of Learning II that are not the training step: the batch, the networks a
configuration describes, the architecture a checkpoint is checked against, and small tensor
helpers (used by the trainer, the export and the run loop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from models.config import DeidConfig
from models.networks import define_critic, define_unet

__all__ = [
    "Batch",
    "architecture_of",
    "build_critic",
    "build_generators",
    "first_of_each",
    "frozen_reference_ue",
    "resize_square",
    "set_requires_grad",
]


@dataclass
class Batch:
    """A P x J x K batch: crops in [0,1], labels (-1 unknown), subject and sequence indices."""

    x: torch.Tensor  # N x 3 x S x S
    labels: torch.Tensor  # N x t, int64
    subject: torch.Tensor  # N, int64
    sequence: torch.Tensor  # N, int64 (unique across subjects)

    def to(self, device: torch.device) -> Batch:
        return Batch(
            *(
                t.to(device, non_blocking=True)
                for t in (self.x, self.labels, self.subject, self.sequence)
            )
        )


def first_of_each(sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(unique sequence ids, the batch index of each one's first frame)."""
    unique, inverse = torch.unique(sequence, return_inverse=True)
    index = torch.arange(sequence.shape[0], device=sequence.device)
    first = torch.full_like(unique, sequence.shape[0]).scatter_reduce(
        0, inverse, index, reduce="amin"
    )
    return unique, first


def frozen_reference_ue(config: DeidConfig) -> nn.Module:
    """``init_from.ue`` as a frozen network of the config's ``Ue`` architecture, in eval mode
    (the surrogate the ``anchor`` term keeps ``a`` at).

    Raises:
        ValueError: the config has no ``init_from``.
        models.onnx_import.OnnxImportError: the export does not fit the architecture.
    """
    if config.init_from is None:
        raise ValueError("a reference Ue needs init_from.ue")
    from models.onnx_import import load_unet_from_onnx

    reference, _ = build_generators(config)
    load_unet_from_onnx(reference, config.init_from.ue, config.input_size, fresh_style=True)
    set_requires_grad(reference, False)
    return reference.eval()


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Switch gradient tracking of all parameters of ``module``."""
    for p in module.parameters():
        p.requires_grad_(flag)


def build_generators(config: DeidConfig) -> tuple[nn.Module, nn.Module]:
    """Fresh Ue (RGB + noise in) and Ud (RGB in) as the configuration describes them."""
    net = config.network
    kwargs = {
        "width": net.unet_width,
        "input_size": config.input_size,
        "dropout": net.unet_dropout,
        "norm": net.unet_norm,
        "max_multiplier": net.unet_max_multiplier,
    }
    return (
        define_unet(net.unet, in_channels=4, noise_code=net.unet_noise_code, **kwargs),
        define_unet(net.unet, in_channels=3, **kwargs),
    )


def build_critic(config: DeidConfig) -> nn.Module:
    """A fresh critic Df as the configuration describes it."""
    net = config.network
    kwargs: dict[str, Any] = {
        "width": net.critic_width,
        "layers": net.critic_layers,
        "spectral_norm": net.critic_spectral_norm,
    }
    if net.critic == "multiscale":
        kwargs["scales"] = net.critic_scales
    return define_critic(net.critic, **kwargs)


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """``N x C x s x s`` -> ``N x C x size x size``: area down, bicubic up (as the crops)."""
    current = images.shape[-1]
    if current == size:
        return images
    if current > size:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(
        0.0, 1.0
    )


def architecture_of(config: DeidConfig) -> dict[str, Any]:
    """The configuration entries a checkpoint's weights depend on (resume refuses others)."""
    net = config.network
    return {
        "kind": "uunet",
        "input_size": config.input_size,
        "labels": list(config.labels),
        "unet": net.unet,
        "unet_width": net.unet_width,
        "unet_norm": net.unet_norm,
        "unet_max_multiplier": net.unet_max_multiplier,
        "unet_noise_code": net.unet_noise_code,
        "critic": net.critic,
        "critic_width": net.critic_width,
        "critic_layers": net.critic_layers,
        "critic_spectral_norm": net.critic_spectral_norm,
        "critic_scales": net.critic_scales if net.critic == "multiscale" else None,
    }
