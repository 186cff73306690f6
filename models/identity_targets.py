"""Identity targets: the noise plane names a made-up person, as a recognizer would see them.

Pushing ``a`` away from ``x`` (``Lidx``) and two planes' surrogates away from each other
(``Lidn``) only says who the surrogate must *not* be; measured here, ``Ue`` met both with a
texture aimed at the recogniser in the loss, and the surrogates of two planes still linked
(a<->a' AUC about 0.8). ``Lidt`` says who it must be instead: the plane's latent
(:meth:`models.networks.unet.NoiseStyle.latent`, the same numbers that steer ``Ue``'s decoder)
is mapped to a point of a Gaussian model of real faces' embeddings, and ``a``'s embedding is
pulled toward it. Another plane, another target (two strangers' cosine); one plane along a
track, one target; and the target never depends on ``x``.

The Gaussian is fitted once per run on real training faces (their mean embedding and the
leading principal directions, scaled so a target lies as far from the mean as a real face
does) and kept in the checkpoint, so a resumed run pulls toward the same people.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = ["IdentityTargets", "identity_target_loss"]


@dataclass(frozen=True)
class IdentityTargets:
    """``target(latent) = normalise(mean + latent @ basis)`` in a recognizer's embedding space.

    Attributes:
        mean: ``D`` mean of the fitted L2-normalised embeddings.
        basis: ``K x D`` principal directions, each scaled by its standard deviation and all by
            one factor that gives the targets the real embeddings' total spread.
    """

    mean: torch.Tensor
    basis: torch.Tensor

    @classmethod
    def fit(cls, embeddings: torch.Tensor, components: int) -> IdentityTargets:
        """Fit on ``N x D`` embeddings (L2-normalised here).

        Raises:
            ValueError: fewer than ``2 * components`` embeddings, or ``components`` outside
                ``1..D``.
        """
        count, dim = embeddings.shape
        if not 1 <= components <= dim:
            raise ValueError(f"components must be in 1..{dim}, got {components}")
        if count < 2 * components:
            raise ValueError(
                f"fitting {components} identity directions needs at least {2 * components} "
                f"faces, got {count}"
            )
        unit = F.normalize(embeddings.detach().double(), dim=1)
        mean = unit.mean(dim=0)
        centred = unit - mean
        covariance = centred.T @ centred / (count - 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        order = torch.argsort(eigenvalues, descending=True)[:components]
        kept = eigenvalues[order].clamp_min(0.0)
        scale = torch.sqrt(eigenvalues.clamp_min(0.0).sum() / kept.sum().clamp_min(1e-12))
        basis = (eigenvectors[:, order] * kept.sqrt() * scale).T
        return cls(mean.float(), basis.float())

    @property
    def components(self) -> int:
        return int(self.basis.shape[0])

    def target(self, latent: torch.Tensor) -> torch.Tensor:
        """``N x D`` unit targets for ``N x C`` latents (their first ``K`` numbers; each about
        unit variance, as :class:`~models.networks.unet.NoiseStyle` makes them).

        Raises:
            ValueError: the latent has fewer than ``K`` numbers.
        """
        if latent.shape[1] < self.components:
            raise ValueError(
                f"the noise latent has {latent.shape[1]} numbers; the targets need "
                f"{self.components}"
            )
        basis = self.basis.to(latent.device, latent.dtype)
        mean = self.mean.to(latent.device, latent.dtype)
        return F.normalize(mean + latent[:, : self.components] @ basis, dim=1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.cpu(), "basis": self.basis.cpu()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> IdentityTargets:
        """Raises: KeyError or ValueError: not a state written by :meth:`state_dict`."""
        mean, basis = state["mean"], state["basis"]
        if mean.ndim != 1 or basis.ndim != 2 or basis.shape[1] != mean.shape[0]:
            raise ValueError(
                f"identity targets of shapes {tuple(mean.shape)} / {tuple(basis.shape)}"
            )
        return cls(mean.float(), basis.float())


def identity_target_loss(embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between L2-normalised embeddings of ``a`` and their targets."""
    return (1.0 - (F.normalize(embedding, dim=1) * target).sum(dim=1)).mean()
