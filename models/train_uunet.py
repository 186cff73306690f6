"""Learning II: train Ue, Ud and the critic Df jointly against the frozen matcher Da.

One iteration = ``critic_steps`` critic updates, then one generator (Ue + Ud) update; the two
never share a backward pass, and the critic's parameters stop requiring gradients during the
generator step. The generator minimises

    w_mse Lmse + w_adv Ladv2 + w_ano Lano + w_con Lcon + w_div Ldiv + w_dis Ldis

(``models.losses``), with ``r = Ud(channel(a))`` where ``channel`` simulates the real paste/crop
path between edge and authority (``models.roi_channel``). During ``warmup_steps`` the
adversarial term and the critic are skipped (a fast start for Ue/Ud on small machines).

The last ``decoder_only_steps`` steps train Ud alone on Lmse, with Ue frozen: ``a`` -- and so
every privacy property of the model -- no longer changes, while Ud learns to invert this
final Ue (and the ROI channel) better than it could while Ue was still moving.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models import losses
from models.config import DeidConfig
from models.networks import define_critic, define_unet
from models.networks.matcher import PairMatcher
from models.roi_channel import RoiChannel

__all__ = ["Batch", "UUNetTrainer", "architecture_of", "build_generators", "set_requires_grad"]

log = logging.getLogger(__name__)


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
        define_unet(net.unet, in_channels=4, **kwargs),
        define_unet(net.unet, in_channels=3, **kwargs),
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
        "critic": net.critic,
        "critic_width": net.critic_width,
        "critic_layers": net.critic_layers,
    }


class UUNetTrainer:
    """Owns Ue, Ud, Df, their optimisers and the loss terms; one call of :meth:`step` per batch.

    Args:
        config: the Learning II configuration.
        matcher: a trained Da (frozen here).
        device: where to train.
        distributed: wrap the trained networks in DistributedDataParallel (torchrun).

    Raises:
        ValueError: the matcher's labels count differs from ``config.labels``.
    """

    def __init__(
        self,
        config: DeidConfig,
        matcher: PairMatcher,
        device: torch.device,
        distributed: bool = False,
    ) -> None:
        if matcher.num_labels != len(config.labels):
            raise ValueError(
                f"the matcher has {matcher.num_labels} outputs but the config names "
                f"{len(config.labels)} labels {list(config.labels)}"
            )
        self.config = config
        self.device = device
        net = config.network
        ue, ud = build_generators(config)
        self.ue, self.ud = ue.to(device), ud.to(device)
        self.critic = define_critic(
            net.critic, width=net.critic_width, layers=net.critic_layers
        ).to(device)
        self.matcher = matcher.to(device).eval()
        set_requires_grad(self.matcher, False)
        self.channel = (
            RoiChannel(**config.roi_channel.model_dump(exclude={"enabled"}))
            if config.roi_channel.enabled
            else None
        )
        self.distributed = distributed
        if distributed:
            ids = [device.index] if device.type == "cuda" else None
            self._ue: nn.Module = DistributedDataParallel(self.ue, device_ids=ids)
            self._ud: nn.Module = DistributedDataParallel(self.ud, device_ids=ids)
            self._critic: nn.Module = DistributedDataParallel(self.critic, device_ids=ids)
        else:
            self._ue, self._ud, self._critic = self.ue, self.ud, self.critic
        self.opt_g = torch.optim.Adam(
            list(self.ue.parameters()) + list(self.ud.parameters()),
            lr=config.lr_generator,
            betas=(0.5, 0.999),
        )
        self.opt_c = torch.optim.Adam(
            self.critic.parameters(), lr=config.lr_critic, betas=(0.0, 0.9)
        )
        s = torch.tensor(config.s, dtype=torch.float32, device=device)
        self.s = s
        self.con_mask = torch.ones_like(s)
        self.div_mask = (s == -1).float() if config.div_labels == "changed" else torch.ones_like(s)
        self.step_count = 0

    # -- forward paths -------------------------------------------------------------------
    def encode(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """a = Ue([x, noise]) with a fresh U(0,1) noise plane unless one is given."""
        if noise is None:
            noise = torch.rand(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return self._ue(torch.cat([x, noise], dim=1))

    def decode(self, a: torch.Tensor) -> torch.Tensor:
        """r = Ud(channel(a)) in training (the simulated edge-to-authority path)."""
        return self._ud(self.channel(a) if self.channel is not None else a)

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        """Critic values through the (possibly DDP-wrapped) critic, for the critic update."""
        return self._critic(images).mean(dim=(1, 2, 3))

    def _frozen_score(self, images: torch.Tensor) -> torch.Tensor:
        """Critic values for the generator update: the bare module (no DDP sync; frozen)."""
        return self.critic(images).mean(dim=(1, 2, 3))

    # -- updates ---------------------------------------------------------------------------
    def critic_step(self, batch: Batch) -> dict[str, float]:
        """One critic update on Ladv1 + gp_weight * GP (a and r detached)."""
        cfg = self.config
        set_requires_grad(self.critic, True)
        with torch.no_grad():
            a = self.encode(batch.x)
            r = self.decode(a)
        real, fake_a, fake_r = self._score(batch.x), self._score(a), self._score(r)
        wasserstein = losses.critic_loss(real, fake_a, fake_r)
        penalty = 0.5 * (
            losses.gradient_penalty(self._score, batch.x, a, cfg.gp_target)
            + losses.gradient_penalty(self._score, batch.x, r, cfg.gp_target)
        )
        loss = wasserstein + cfg.gp_weight * penalty
        self.opt_c.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_c.step()
        return {"critic": float(wasserstein.detach()), "gp": float(penalty.detach())}

    def generator_terms(self, batch: Batch, adversarial: bool = True) -> dict[str, torch.Tensor]:
        """All six generator terms for a batch (``adv`` is zero when not ``adversarial``)."""
        cfg = self.config
        a = self.encode(batch.x)
        r = self.decode(a)
        terms = {
            "mse": losses.reconstruction_loss(batch.x, r),
            "ano": losses.anonymization_loss(self.matcher, batch.x, a, self.s),
            "con": losses.temporal_consistency_loss(
                self.matcher, a, batch.sequence, self.con_mask, cfg.max_pairs
            ),
            "div": losses.diversity_loss(
                self.matcher, a, batch.subject, batch.sequence, self.div_mask, cfg.max_pairs
            ),
            "dis": losses.colour_distribution_loss(batch.x, a, cfg.histogram_bins),
        }
        if adversarial:
            terms["adv"] = losses.generator_adversarial_loss(
                self._frozen_score(a), self._frozen_score(r)
            )
        else:
            terms["adv"] = a.sum() * 0.0
        return terms

    def generator_step(self, batch: Batch, adversarial: bool = True) -> dict[str, float]:
        """One Ue + Ud update on the weighted sum of the six terms (critic frozen)."""
        set_requires_grad(self.critic, False)
        terms = self.generator_terms(batch, adversarial)
        weights = self.config.weights.model_dump()
        total = sum(weights[name] * value for name, value in terms.items())
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        set_requires_grad(self.critic, True)
        out = {name: float(value.detach()) for name, value in terms.items()}
        out["total"] = float(total.detach())
        return out

    def decoder_step(self, batch: Batch) -> dict[str, float]:
        """One Ud-only update on Lmse (Ue, critic and Da untouched)."""
        with torch.no_grad():
            a = self.encode(batch.x)
        r = self.decode(a)
        loss = losses.reconstruction_loss(batch.x, r)
        self.opt_g.zero_grad(set_to_none=True)
        (self.config.weights.mse * loss).backward()
        self.opt_g.step()
        return {"mse": float(loss.detach())}

    def step(self, batch: Batch) -> dict[str, float]:
        """One training iteration (critic steps, then a generator step); returns the losses."""
        self.ue.train()
        self.ud.train()
        batch = batch.to(self.device)
        cfg = self.config
        if cfg.decoder_only_steps and self.step_count >= cfg.steps - cfg.decoder_only_steps:
            self.step_count += 1
            return self.decoder_step(batch)
        adversarial = self.step_count >= self.config.warmup_steps
        logged: dict[str, float] = {}
        if adversarial:
            for _ in range(self.config.critic_steps):
                logged.update(self.critic_step(batch))
        logged.update(self.generator_step(batch, adversarial))
        self.step_count += 1
        return logged

    def train_on(self, batches: Iterable[Batch], steps: int) -> list[dict[str, float]]:
        """Run ``steps`` iterations over ``batches`` (for tests and small loops)."""
        history = []
        for _, batch in zip(range(steps), batches, strict=False):
            history.append(self.step(batch))
        return history

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "architecture": architecture_of(self.config),
            "step": self.step_count,
            "ue": self.ue.state_dict(),
            "ud": self.ud.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_c": self.opt_c.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], source: Any = "checkpoint") -> None:
        """Restore networks, optimisers and the step counter.

        Raises:
            models.checkpoint.CheckpointError: weights of another architecture.
        """
        from models.checkpoint import load_module_state

        load_module_state(self.ue, state["ue"], "ue", source)
        load_module_state(self.ud, state["ud"], "ud", source)
        load_module_state(self.critic, state["critic"], "critic", source)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_c.load_state_dict(state["opt_c"])
        self.step_count = int(state["step"])
