"""authority_service.decoders: Ud by model id, the default for paper messages, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from authority_service.decoders import DecoderRegistry
from authority_service.errors import ModelUnavailableError, UnknownModelError
from shared.model_dir import ModelDirError
from shared.onnx_runner import ModelLoadError
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir


def test_registry_indexes_by_card_id_and_loads_once(tmp_path):
    write_toy_model_dir(tmp_path / TOY_MODEL_ID)
    write_toy_model_dir(tmp_path / "b00000000000000b", model_id="b00000000000000b")
    registry = DecoderRegistry(tmp_path, None, providers="cpu")
    assert registry.model_ids == ["b00000000000000b", TOY_MODEL_ID]
    decoder = registry.get(TOY_MODEL_ID)
    assert registry.get(TOY_MODEL_ID) is decoder and decoder.input_size == 64
    a = np.full((2, 3, 64, 64), 0.25, np.float32)
    np.testing.assert_allclose(decoder.model(a), 0.75)
    with pytest.raises(UnknownModelError, match="0000000000000000"):
        registry.get("0000000000000000")
    with pytest.raises(ModelUnavailableError):
        registry.default()


def test_registry_default_dir_serves_paper_and_its_own_id(tmp_path):
    default = write_toy_model_dir(tmp_path / "shipped" / "default")
    registry = DecoderRegistry(None, default, providers="cpu")
    assert registry.default_id == TOY_MODEL_ID
    assert registry.for_model(None) is registry.get(TOY_MODEL_ID)


def test_registry_refuses_two_folders_with_one_model_id(tmp_path):
    write_toy_model_dir(tmp_path / "models" / "one")
    write_toy_model_dir(tmp_path / "models" / "two")
    with pytest.raises(ModelDirError, match="in both"):
        DecoderRegistry(tmp_path / "models", None)


def test_registry_refuses_missing_dir_and_broken_card(tmp_path):
    with pytest.raises(ModelDirError, match="not found"):
        DecoderRegistry(tmp_path / "absent", None)
    broken = tmp_path / "models" / "x"
    broken.mkdir(parents=True)
    (broken / "card.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="card"):
        DecoderRegistry(tmp_path / "models", None)


def test_ud_only_folder_is_enough(tmp_path):
    folder = write_toy_model_dir(tmp_path / TOY_MODEL_ID)
    (folder / "ue.onnx").unlink()  # the authority never needs the encoder
    assert DecoderRegistry(tmp_path, None, providers="cpu").get(TOY_MODEL_ID).model_id


def test_load_all_fails_fast_on_a_broken_decoder(tmp_path):
    folder = write_toy_model_dir(tmp_path / TOY_MODEL_ID)
    (folder / "ud.onnx").write_bytes(b"not an onnx model")
    registry = DecoderRegistry(tmp_path, None, providers="cpu")  # cards are fine: indexed
    with pytest.raises(ModelLoadError):
        registry.load_all()


def test_archive_keeps_earlier_models_reversible_below_the_configured_ones(tmp_path):
    write_toy_model_dir(tmp_path / "models" / TOY_MODEL_ID)
    write_toy_model_dir(tmp_path / "archive" / TOY_MODEL_ID, size=32)  # same id: models_dir wins
    write_toy_model_dir(tmp_path / "archive" / "a00000000000000a", model_id="a00000000000000a")
    registry = DecoderRegistry(
        tmp_path / "models",
        None,
        providers="cpu",
        archive_dirs=[tmp_path / "archive", tmp_path / "absent"],
    )
    assert registry.model_ids == ["a00000000000000a", TOY_MODEL_ID]
    assert registry.get(TOY_MODEL_ID).input_size == 64


def test_shipped_decoders_hold_the_round_one_decoder_with_its_own_composition(caplog):
    from authority_service.config import SHIPPED_DECODERS_DIR
    from shared.compositing import LEGACY

    registry = DecoderRegistry(None, None, providers="cpu", archive_dirs=[SHIPPED_DECODERS_DIR])
    with caplog.at_level("WARNING", logger="authority_service.decoders"):
        decoder = registry.get("8038bde5bf1fa829")  # the round-1 default: its recordings exist
    assert "is published" in caplog.text  # it is in the public repository
    assert decoder.card.composition == LEGACY
    out = decoder.model(np.full((1, 3, 64, 64), 0.5, np.float32))
    assert out.shape == (1, 3, 64, 64) and np.isfinite(out).all()
