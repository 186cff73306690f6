"""Network factories: pick architectures by name (pix2pix's ``define_G``/``define_D`` style)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.networks.matcher import PairMatcher
from models.networks.patchgan import MultiScaleCritic, PatchCritic
from models.networks.unet import UNet

__all__ = [
    "MultiScaleCritic",
    "PairMatcher",
    "PatchCritic",
    "UNet",
    "define_critic",
    "define_matcher",
    "define_unet",
]

_MATCHERS = {"table1": PairMatcher}
_UNETS = {"unet": UNet}
_CRITICS = {"patchgan": PatchCritic, "multiscale": MultiScaleCritic}


def _pick(registry: dict[str, type[nn.Module]], kind: str, name: str) -> type[nn.Module]:
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}") from None


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix's ``normal`` init: conv/linear weights N(0, gain), norm weights N(1, gain)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            parametrized = nn.utils.parametrize.is_parametrized(m, "weight")
            weight = m.parametrizations.weight.original if parametrized else m.weight
            with torch.no_grad():
                nn.init.normal_(weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif (
            isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm))
            and m.weight is not None
        ):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def define_matcher(name: str = "table1", **kwargs: Any) -> PairMatcher:
    """Build Da by name (``table1``: the paper's Table I). Raises ValueError for unknown names."""
    return _pick(_MATCHERS, "matcher", name)(**kwargs)  # type: ignore[return-value]


def define_unet(name: str = "unet", **kwargs: Any) -> UNet:
    """Build Ue/Ud by name (``unet``: pix2pix U-Net). Raises ValueError for unknown names."""
    return init_weights(_pick(_UNETS, "generator", name)(**kwargs))  # type: ignore[return-value]


def define_critic(name: str = "patchgan", **kwargs: Any) -> nn.Module:
    """Build Df by name (``patchgan``, ``multiscale``). Raises ValueError for unknown names."""
    return init_weights(_pick(_CRITICS, "critic", name)(**kwargs))  # type: ignore[return-value]
