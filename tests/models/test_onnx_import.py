"""models.onnx_import and ``init_from``: exported U-Nets back into torch, and runs that start
from them (a decoder-only re-fit needs no Da)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.config import DeidConfig, InitFromConfig, NetworkConfig, load_config
from models.distributed import DistContext
from models.export import export_network, export_run
from models.networks.unet import Film, UNet
from models.onnx_import import OnnxImportError, load_unet_from_onnx
from models.runs import run_deid
from models.train_uunet import UUNetTrainer
from tests.models.tiny import tiny_deid_config, tiny_stream

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[2]


def _onnx_output(path: Path, sample: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: sample})[0]


def _exported(tmp_path: Path, channels: int, width: int = 4, name: str = "net") -> Path:
    torch.manual_seed(1)
    net = UNet(channels, 3, width=width, input_size=16, max_multiplier=4)
    path = tmp_path / f"{name}.onnx"
    export_network(
        net.eval(), "x", "y", channels, 16, path, {"role": name, "model_id": name + "-id"}
    )
    return path


def test_imported_network_computes_what_the_onnx_file_computes(tmp_path):
    path = _exported(tmp_path, 4)
    torch.manual_seed(2)
    fresh = UNet(4, 3, width=4, input_size=16, max_multiplier=4)
    sample = np.random.default_rng(3).random((3, 4, 16, 16), np.float32)
    expected = _onnx_output(path, sample)
    with torch.no_grad():
        before = fresh.eval()(torch.from_numpy(sample)).numpy()
    assert np.abs(before - expected).max() > 1e-2  # a fresh network computes something else

    load_unet_from_onnx(fresh, path, 16)

    with torch.no_grad():
        after = fresh(torch.from_numpy(sample)).numpy()
    assert np.abs(after - expected).max() < 1e-5


def test_another_architecture_is_refused_with_the_file_named(tmp_path):
    path = _exported(tmp_path, 3, width=4)
    wider = UNet(3, 3, width=8, input_size=16, max_multiplier=4)
    with pytest.raises(OnnxImportError, match=r"net\.onnx: layer 0 .* \(8, 3, 4, 4\)"):
        load_unet_from_onnx(wider, path, 16)
    deeper = UNet(3, 3, width=4, input_size=32, max_multiplier=4)
    with pytest.raises(OnnxImportError, match="conv/norm layers"):
        load_unet_from_onnx(deeper, path, 32)


def test_a_network_with_layers_the_import_cannot_map_is_refused(tmp_path):
    path = _exported(tmp_path, 4)
    styled = UNet(4, 3, width=4, input_size=16, max_multiplier=4, noise_code=4, style=8)
    with pytest.raises(OnnxImportError, match="does not map"):
        load_unet_from_onnx(styled, path, 16)


def test_a_noise_code_the_export_lacks_starts_neutral_and_can_learn(tmp_path):
    path = _exported(tmp_path, 4)
    styled = UNet(4, 3, width=4, input_size=16, max_multiplier=4, noise_code=4, style=8)
    load_unet_from_onnx(styled, path, 16, fresh_style=True)
    sample = np.random.default_rng(5).random((2, 4, 16, 16), np.float32)
    with torch.no_grad():
        assert (
            np.abs(styled(torch.from_numpy(sample)).numpy() - _onnx_output(path, sample)).max()
            < 1e-5
        )
        films = [m for m in styled.modules() if isinstance(m, Film)]
        assert films and all(not m.linear.weight.any() for m in films)
        for film in films:  # what a training step may do: the style now changes the output
            film.linear.weight.normal_(0.0, 0.5)
        moved = styled(torch.from_numpy(sample)).numpy()
    assert np.abs(moved - _onnx_output(path, sample)).max() > 1e-3


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "ue.onnx"
    path.write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(OnnxImportError, match="not a readable ONNX model"):
        load_unet_from_onnx(UNet(4, 3, width=4, input_size=16), path, 16)


@pytest.mark.parametrize(
    "name",
    [
        "deid_refit_round1.yml",
        "deid_round1_finetune.yml",
        "deid_round1_chroma.yml",
        "deid_round1_anchor.yml",
    ],
)
def test_shipped_pair_imports_into_every_configuration_that_starts_from_it(name):
    config = load_config(DeidConfig, REPO / "models/configs" / name, **{"data.packed": "unused"})
    assert isinstance(config, DeidConfig) and config.init_from is not None
    assert not config.needs_matcher
    trainer = UUNetTrainer(config, None, torch.device("cpu"))
    trainer.initialise_from_exports()  # every layer matched and parity-checked, or it raises


def test_anchor_holds_a_at_the_frozen_exported_ue_and_needs_one(tmp_path):
    """Lanchor is zero while Ue is its export, grows as Ue moves, and the reference stays."""
    from models.config import LossWeights

    ue_path, ud_path = _exported(tmp_path, 4, name="ue"), _exported(tmp_path, 3, name="ud")
    network = NetworkConfig(unet_width=4, unet_max_multiplier=4, critic_width=4, critic_layers=2)
    config = tiny_deid_config(
        init_from=InitFromConfig(ue=ue_path, ud=ud_path),
        network=network,
        weights=LossWeights(mse=1.0, adv=0, ano=0, con=0, div=0, dis=0, anchor=1.0),
    )
    trainer = UUNetTrainer(config, None, CPU)
    trainer.initialise_from_exports()
    assert trainer.reference_ue is not None
    reference = [p.detach().clone() for p in trainer.reference_ue.parameters()]
    batch = next(tiny_stream(config)(0))
    assert float(trainer.generator_terms(batch, adversarial=False)["anchor"].detach()) < 1e-6
    with torch.no_grad():
        for p in trainer.ue.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert float(trainer.generator_terms(batch, adversarial=False)["anchor"].detach()) > 1e-3
    trainer.generator_step(batch, adversarial=False)
    assert all(
        torch.equal(b, p) for b, p in zip(reference, trainer.reference_ue.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match=r"weights\.anchor needs init_from"):
        tiny_deid_config(weights=LossWeights(anchor=1.0))


def test_decoder_only_run_from_exports_needs_no_matcher_and_keeps_ue(tmp_path):
    ue_path, ud_path = _exported(tmp_path, 4, name="ue"), _exported(tmp_path, 3, name="ud")
    config = tiny_deid_config(
        init_from=InitFromConfig(ue=ue_path, ud=ud_path),
        network=NetworkConfig(unet_width=4, unet_max_multiplier=4, critic_width=4, critic_layers=2),
        steps=3,
        decoder_only_steps=3,
    )
    trainer = run_deid(
        config,
        tmp_path / "run",
        None,
        tiny_stream(config),
        torch.rand(2, 3, 16, 16),
        DistContext(CPU),
        False,
    )
    assert trainer.step_count == 3
    sample = np.random.default_rng(4).random((2, 4, 16, 16), np.float32)
    with torch.no_grad():
        ue_out = trainer.ue.eval()(torch.from_numpy(sample)).numpy()
        ud_out = trainer.ud.eval()(torch.from_numpy(sample[:, :3])).numpy()
    assert np.abs(ue_out - _onnx_output(ue_path, sample)).max() < 1e-5  # Ue untouched
    assert np.abs(ud_out - _onnx_output(ud_path, sample[:, :3])).max() > 1e-4  # Ud trained
    card = export_run(tmp_path / "run", tmp_path / "model")
    origin = card["training"]["init_from"]
    assert origin["ue"]["model_id"] == "ue-id" and origin["ud"]["model_id"] == "ud-id"
    assert origin["ue_trained_here"] is False and card["training"]["matcher"]["run"] is None


def test_decoder_only_from_the_first_step_needs_an_imported_ue():
    with pytest.raises(ValueError, match=r"init_from\.ue"):
        tiny_deid_config(steps=3, decoder_only_steps=3)


def test_joint_training_with_da_terms_refuses_a_missing_matcher():
    with pytest.raises(ValueError, match="trained matcher is required"):
        UUNetTrainer(tiny_deid_config(), None, CPU)
