"""shared.model_dir: loading exported model directories and refusing inconsistent ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.model_dir import ModelDirError, load_card, load_decoder, load_encoder
from shared.onnx_runner import ModelSignatureError
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir


def test_encoder_and_decoder_load_and_invert(tmp_path):
    directory = write_toy_model_dir(tmp_path / "m")
    ue, card = load_encoder(directory, providers="cpu")
    ud, _ = load_decoder(directory, providers="cpu")
    assert card.model_id == ue.model_id == ud.model_id == TOY_MODEL_ID
    assert card.input_size == 64 and card.s == (-1, 1, 1, 0)
    x = np.random.default_rng(0).random((3, 4, 64, 64), dtype=np.float32)
    np.testing.assert_allclose(ud(ue(x)), x[:, :3], atol=1e-6)


def test_wrong_input_shape_refused(tmp_path):
    directory = write_toy_model_dir(tmp_path / "m", ue_channels=3)
    with pytest.raises(ModelSignatureError, match="shape"):
        load_encoder(directory)


def test_wrong_size_refused(tmp_path):
    directory = write_toy_model_dir(tmp_path / "m", size=32)
    card = json.loads((directory / "card.json").read_text())
    card["input_size"] = 64
    (directory / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelSignatureError):
        load_decoder(directory)


def test_mismatched_model_ids_refused(tmp_path):
    directory = write_toy_model_dir(tmp_path / "m", ud_model_id="other0123456789a")
    load_encoder(directory)
    with pytest.raises(ModelDirError, match="model_id"):
        load_decoder(directory)


@pytest.mark.parametrize(
    ("card", "match"),
    [
        (None, "missing"),
        ("not json", "cannot read"),
        ({"model_id": "x", "input_size": 64, "s": [1], "labels": []}, "one value"),
        ({"model_id": "x", "input_size": 64}, "missing or invalid field"),
        ({"model_id": "", "input_size": 64, "s": [], "labels": []}, "model_id"),
    ],
)
def test_bad_cards_refused(tmp_path, card, match):
    directory = write_toy_model_dir(tmp_path / "m")
    path = directory / "card.json"
    if card is None:
        path.unlink()
    else:
        path.write_text(card if isinstance(card, str) else json.dumps(card))
    with pytest.raises(ModelDirError, match=match):
        load_card(directory)


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(ModelDirError, match="not found"):
        load_card(tmp_path / "nope")
    directory = write_toy_model_dir(tmp_path / "m")
    (directory / "ud.onnx").unlink()
    with pytest.raises(ModelDirError, match="missing"):
        load_decoder(directory)
