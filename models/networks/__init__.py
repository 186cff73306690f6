"""Network factories: pick architectures by name (pix2pix's ``define_G``/``define_D`` style)."""

from __future__ import annotations

from typing import Any

from torch import nn

from models.networks.matcher import PairMatcher
from models.networks.patchgan import PatchCritic
from models.networks.unet import UNet

__all__ = ["PairMatcher", "PatchCritic", "UNet", "define_critic", "define_matcher", "define_unet"]

_MATCHERS = {"table1": PairMatcher}
_UNETS = {"unet": UNet}
_CRITICS = {"patchgan": PatchCritic}


def _pick(registry: dict[str, type[nn.Module]], kind: str, name: str) -> type[nn.Module]:
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}") from None


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix's ``normal`` init: conv/linear weights N(0, gain), norm weights N(1, gain)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
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


def define_critic(name: str = "patchgan", **kwargs: Any) -> PatchCritic:
    """Build Df by name (``patchgan``). Raises ValueError for unknown names."""
    return init_weights(_pick(_CRITICS, "critic", name)(**kwargs))  # type: ignore[return-value]
