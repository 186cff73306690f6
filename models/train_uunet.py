"""Learning II: train Ue, Ud and the critic Df jointly against the frozen matcher Da.

One iteration = ``critic_steps`` critic updates, then one generator (Ue + Ud) update; the two
never share a backward pass, and the critic's parameters stop requiring gradients during the
generator step. The generator minimises

    w_mse Lmse + w_adv Ladv2 + w_ano Lano + w_con Lcon + w_div Ldiv + w_dis Ldis

(``models.losses``), with ``r = Ud(channel(a, x))`` where ``channel`` simulates the real
paste/crop path between edge and authority (``models.roi_channel``: resampling, the feathered
paste into the scene, 8-bit storage), plus the terms of the public face (weights 0 = off):

    + w_ring Lring (a carries the ROI's outer ring) + w_hf Lhf (luma/chroma fine detail like a
      real face's) + w_ndiv Lndiv (another noise plane, another identity) + w_layout Llayout
      (pose, lighting and layout kept at ``layout_grid`` x ``layout_grid``) + w_anchor Lanchor
      (``a`` kept at a frozen earlier Ue's surrogate below the finest scale)
    + w_idx Lidx, w_idn Lidn, w_idt Lidt (a frozen recognizer's embedding, ``identity_embedder``:
      ``a`` far from ``x``, two planes' surrogates far apart, ``a`` near the person its plane
      names: ``models.identity_targets``)

**Noise per sequence.** The edge gives each track one noise plane; training draws one plane per
sequence of the batch (all its frames share it), so ``Lcon`` asks for one identity per plane
and ``Ldiv``/``Lndiv`` for other identities under other planes -- the noise, not the frame,
chooses the surrogate.

**Sizes.** With several ``composition.sizes`` (a fully convolutional pair run at the size that
fits each face), each step trains at one size drawn with ``composition.size_weights``; the
crops are resized to it (area down, bicubic up) and Da sees everything at its own size.

During ``warmup_steps`` the adversarial term and the critic are skipped (a fast start for
Ue/Ud on small machines).

The last ``decoder_only_steps`` steps train Ud alone on Lmse, with Ue frozen: ``a`` -- and so
every privacy property of the model -- no longer changes, while Ud learns to invert this
final Ue (and the ROI channel) better than it could while Ue was still moving.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models import losses
from models.config import DeidConfig
from models.identity_targets import IdentityTargets, identity_target_loss
from models.networks.matcher import PairMatcher
from models.roi_channel import RoiChannel
from models.uunet_parts import (
    Batch,
    architecture_of,
    build_critic,
    build_generators,
    first_of_each,
    frozen_reference_ue,
    resize_square,
    set_requires_grad,
)

__all__ = [
    "Batch",
    "UUNetTrainer",
    "architecture_of",
    "build_critic",
    "build_generators",
    "resize_square",
    "set_requires_grad",
]

log = logging.getLogger(__name__)


class UUNetTrainer:
    """Owns Ue, Ud, Df, their optimisers and the loss terms; one call of :meth:`step` per batch.

    Args:
        config: the Learning II configuration.
        matcher: a trained Da (frozen here).
        device: where to train.
        distributed: wrap the trained networks in DistributedDataParallel (torchrun).

    Raises:
        ValueError: the matcher's labels count or input size differs from the config's, or
            no matcher is given for a configuration that trains with Da's terms.
    """

    def __init__(
        self,
        config: DeidConfig,
        matcher: PairMatcher | None,
        device: torch.device,
        distributed: bool = False,
    ) -> None:
        if matcher is None:
            if config.needs_matcher:
                raise ValueError(
                    "this configuration trains with Da's terms (ano, con, div, ndiv): a "
                    "trained matcher is required"
                )
        elif matcher.num_labels != len(config.labels):
            raise ValueError(
                f"the matcher has {matcher.num_labels} outputs but the config names "
                f"{len(config.labels)} labels {list(config.labels)}"
            )
        matcher_size = getattr(matcher, "input_size", config.input_size)
        if matcher is not None and matcher_size != config.input_size:
            raise ValueError(
                f"the matcher takes {matcher_size}x{matcher_size} crops but the config's "
                f"input_size is {config.input_size}"
            )
        self.config = config
        self.device = device
        ue, ud = build_generators(config)
        self.ue, self.ud = ue.to(device), ud.to(device)
        self.critic = build_critic(config).to(device)
        self.matcher = matcher.to(device).eval() if matcher is not None else None
        if self.matcher is not None:
            set_requires_grad(self.matcher, False)
        self.composition = config.composition.composition(config.input_size)
        self.channel = (
            RoiChannel(self.composition, **config.roi_channel.model_dump(exclude={"enabled"}))
            if config.roi_channel.enabled
            else None
        )
        self.id_index = list(config.labels).index("id") if "id" in config.labels else 0
        self.embedder: nn.Module | None = None
        w = config.weights
        if config.identity_embedder == "sface" and (w.idx or w.idn or w.idt):
            from models.networks.identity import sface_embedder

            self.embedder = sface_embedder().to(device)
        self.identity_targets: IdentityTargets | None = None
        self.reference_ue = frozen_reference_ue(config).to(device) if w.anchor else None
        self.view_generator = torch.Generator().manual_seed(config.seed + 23)
        weights = config.composition.size_weights or (1.0,) * len(config.model_sizes)
        self.size_probs = torch.tensor(weights, dtype=torch.float64)
        self.size_generator = torch.Generator().manual_seed(config.seed + 17)
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

    def decode(self, a: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """r = Ud(channel(a, x)) in training (the simulated edge-to-authority path; ``x`` is
        the scene the feathered band blends into)."""
        return self._ud(self.channel(a, x) if self.channel is not None else a)

    def da(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Da on crops of any model size (resized to Da's own).

        Raises:
            RuntimeError: the trainer has no matcher.
        """
        if self.matcher is None:
            raise RuntimeError("a Da term was asked for, but the trainer has no matcher")
        size = self.config.input_size
        return self.matcher(resize_square(first, size), resize_square(second, size))

    def sequence_noise(self, x: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        """One U(0,1) plane per sequence of the batch (frames of a sequence share it), drawn
        at ``input_size`` and enlarged by pixel replication to larger model sizes, as the
        edge's noise bank does."""
        _, inverse = torch.unique(sequence, return_inverse=True)
        base = self.config.input_size
        planes = torch.rand(int(inverse.max()) + 1, 1, base, base, device=x.device, dtype=x.dtype)
        factor = x.shape[-1] // base
        if factor > 1:
            planes = planes.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
        return planes[inverse.to(x.device)]

    def _step_size(self) -> int:
        sizes = self.config.model_sizes
        if len(sizes) == 1:
            return sizes[0]
        return sizes[int(torch.multinomial(self.size_probs, 1, generator=self.size_generator))]

    def _at_size(self, batch: Batch, size: int) -> Batch:
        return Batch(resize_square(batch.x, size), batch.labels, batch.subject, batch.sequence)

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        """Critic values through the (possibly DDP-wrapped) critic, for the critic update."""
        return self._critic(images).flatten(1).mean(dim=1)

    def _frozen_score(self, images: torch.Tensor) -> torch.Tensor:
        """Critic values for the generator update: the bare module (no DDP sync; frozen)."""
        return self.critic(images).flatten(1).mean(dim=1)

    # -- identity targets ------------------------------------------------------------------
    def fit_identity_targets(self, faces: torch.Tensor, chunk: int = 64) -> IdentityTargets:
        """Fit ``Lidt``'s targets on real faces (``N x 3 x S x S`` in 0..1) with the embedder.

        Raises:
            RuntimeError: no identity embedder is configured.
            ValueError: too few faces for the configured components.
        """
        if self.embedder is None:
            raise RuntimeError("identity targets need an identity_embedder")
        with torch.no_grad():
            embeddings = torch.cat(
                [
                    self.embedder(faces[i : i + chunk].to(self.device))
                    for i in range(0, len(faces), chunk)
                ]
            )
        self.identity_targets = IdentityTargets.fit(
            embeddings.cpu(), self.config.identity_target_components
        )
        log.info(
            "identity targets fitted on %d faces (%d directions)",
            len(faces),
            self.identity_targets.components,
        )
        return self.identity_targets

    def targets_for(self, noise: torch.Tensor) -> torch.Tensor:
        """The unit embeddings ``Lidt`` pulls ``Ue(x, noise)`` toward (one per plane).

        Raises:
            RuntimeError: the targets were not fitted, or ``Ue`` has no noise code.
        """
        style = getattr(self.ue, "noise_style", None)
        if self.identity_targets is None or style is None:
            raise RuntimeError(
                "weights.idt needs fitted identity targets and a Ue with a noise code"
            )
        return self.identity_targets.target(style.latent(noise)).to(noise.device)

    # -- updates ---------------------------------------------------------------------------
    def _high_frequency(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Lhf as the config's ``hf_mode`` asks (match x's fine detail, or keep it in a band)."""
        cfg = self.config
        if cfg.hf_mode == "band":
            return losses.high_frequency_band_loss(
                x, a, cfg.hf_luma_band, cfg.hf_chroma_max, cfg.hf_chroma_weight
            )
        return losses.high_frequency_loss(x, a, cfg.hf_chroma_weight)

    def _anchor(self, x: torch.Tensor, noise: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Lanchor: ``a`` against the frozen ``init_from`` Ue's surrogate under the same noise."""
        assert self.reference_ue is not None
        with torch.no_grad():
            reference = self.reference_ue(torch.cat([x, noise], dim=1))
        sigma = self.config.anchor_sigma * x.shape[-1] / self.config.input_size
        return losses.anchor_loss(a, reference, sigma)

    def critic_step(self, batch: Batch) -> dict[str, float]:
        """One critic update on Ladv1 + gp_weight * GP (a and r detached)."""
        cfg = self.config
        set_requires_grad(self.critic, True)
        with torch.no_grad():
            a = self.encode(batch.x, self.sequence_noise(batch.x, batch.sequence))
            r = self.decode(a, batch.x)
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
        """Every generator term for a batch (``adv`` is zero when not ``adversarial``; a term
        whose weight is 0 is not computed and logged as 0)."""
        cfg = self.config
        weights = cfg.weights
        x = batch.x
        noise = self.sequence_noise(x, batch.sequence)
        a = self.encode(x, noise)
        r = self.decode(a, x)
        zero = a.sum() * 0.0
        terms: dict[str, torch.Tensor] = {
            "mse": losses.reconstruction_loss(x, r),
            "ano": losses.anonymization_loss(self.da, x, a, self.s) if weights.ano else zero,
            "con": (
                losses.temporal_consistency_loss(
                    self.da, a, batch.sequence, self.con_mask, cfg.max_pairs
                )
                if weights.con
                else zero
            ),
            "div": (
                losses.diversity_loss(
                    self.da, a, batch.subject, batch.sequence, self.div_mask, cfg.max_pairs
                )
                if weights.div
                else zero
            ),
            "dis": losses.colour_distribution_loss(x, a, cfg.histogram_bins),
            "ring": losses.ring_loss(x, a, cfg.composition.ring) if weights.ring else zero,
            "hf": self._high_frequency(x, a) if weights.hf else zero,
            "ndiv": zero,
            "layout": losses.layout_loss(x, a, cfg.layout_grid) if weights.layout else zero,
            "anchor": self._anchor(x, noise, a) if weights.anchor else zero,
        }
        terms["idx"], terms["idn"], terms["idt"] = zero, zero, zero
        use_embedder = self.embedder is not None and self.step_count % cfg.identity_every == 0
        first = first_of_each(batch.sequence)[1] if weights.ndiv or use_embedder else None
        if weights.ndiv or (use_embedder and weights.idn):
            assert first is not None
            # The first frame of every sequence again, under another plane.
            other = self.sequence_noise(x[first], torch.arange(len(first), device=x.device))
            a_other = self.encode(x[first], other)
            if weights.ndiv:
                terms["ndiv"] = losses.noise_diversity_loss(
                    self.da, a[first], a_other, self.id_index
                )
        if use_embedder:
            assert self.embedder is not None and first is not None
            pick = first[: cfg.identity_faces]
            x_seen, a_seen = x[pick], a[pick]
            other_seen = a_other[: cfg.identity_faces] if weights.idn else None
            if cfg.identity_views == "random":
                from models.networks.identity import random_views

                views = [x_seen, a_seen] + ([other_seen] if other_seen is not None else [])
                x_seen, a_seen, *rest = random_views(views, self.view_generator)
                other_seen = rest[0] if rest else None
            with torch.no_grad():
                e_x = self.embedder(x_seen)
            e_a = self.embedder(a_seen)
            margin = cfg.identity_margin
            terms["idx"] = losses.embedding_similarity_loss(e_x, e_a, margin)
            if other_seen is not None:
                e_other = self.embedder(other_seen)
                terms["idn"] = losses.embedding_similarity_loss(e_a, e_other, margin)
            if weights.idt:
                terms["idt"] = identity_target_loss(e_a, self.targets_for(noise[pick]))
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
            a = self.encode(batch.x, self.sequence_noise(batch.x, batch.sequence))
        r = self.decode(a, batch.x)
        loss = losses.reconstruction_loss(batch.x, r)
        self.opt_g.zero_grad(set_to_none=True)
        (self.config.weights.mse * loss).backward()
        self.opt_g.step()
        return {"mse": float(loss.detach())}

    def step(self, batch: Batch) -> dict[str, float]:
        """One training iteration (critic steps, then a generator step); returns the losses."""
        self.ue.train()
        self.ud.train()
        batch = self._at_size(batch.to(self.device), self._step_size())
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

    def initialise_from_exports(self) -> None:
        """Load ``init_from``'s exported Ue (and Ud) into the fresh networks.

        Raises:
            models.onnx_import.OnnxImportError: an export of another architecture.
        """
        init = self.config.init_from
        if init is None:
            return
        from models.onnx_import import load_unet_from_onnx

        load_unet_from_onnx(self.ue, init.ue, self.config.input_size, fresh_style=True)
        if init.ud is not None:
            load_unet_from_onnx(self.ud, init.ud, self.config.input_size)
        self.ue.to(self.device)
        self.ud.to(self.device)
        log.info("Ue from %s, Ud from %s", init.ue, init.ud or "random weights")

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
            **(
                {"identity_targets": self.identity_targets.state_dict()}
                if self.identity_targets is not None
                else {}
            ),
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
        if "identity_targets" in state:
            self.identity_targets = IdentityTargets.from_state(state["identity_targets"])
