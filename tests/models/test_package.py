"""models.package: an export split into the edge package and the authority package."""

from __future__ import annotations

import json

import numpy as np
import pytest

from authority_service.decoders import DecoderRegistry
from edge_agent.model_check import ModelRefusedError, check_decoder_private
from models.cli import main
from models.package import PackageError, package_model
from shared.model_dir import ModelDirError, find_decoder_dir, load_card, load_encoder
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir


def test_package_splits_the_pair_and_each_side_loads_only_its_half(tmp_path):
    export = write_toy_model_dir(tmp_path / "export")
    packages = package_model(export, tmp_path / "edge", tmp_path / "decoders")
    assert sorted(p.name for p in packages.edge_dir.iterdir()) == ["card.json", "ue.onnx"]
    assert packages.decoder_dir == tmp_path / "decoders" / TOY_MODEL_ID
    assert sorted(p.name for p in packages.decoder_dir.iterdir()) == ["card.json", "ud.onnx"]
    card = load_card(packages.edge_dir).raw
    assert card["decoder_published"] is False
    assert check_decoder_private(card, packages.edge_dir, allow_public_decoder=False)
    encoder, _ = load_encoder(packages.edge_dir, providers="cpu")
    decoder = DecoderRegistry(tmp_path / "decoders", None, providers="cpu").get(TOY_MODEL_ID)
    x = np.random.default_rng(0).random((1, 4, 64, 64), dtype=np.float32)
    r = decoder.model(encoder(x))
    np.testing.assert_allclose(r, x[:, :3], atol=1e-6)  # the toy: r = 1 - (1 - x)
    assert find_decoder_dir(packages.edge_dir, [tmp_path / "decoders"]) == packages.decoder_dir


def test_a_published_package_is_refused_by_the_edge(tmp_path):
    export = write_toy_model_dir(tmp_path / "export")
    code = main(
        ["package", "--model", str(export), "--edge-out", str(tmp_path / "edge"),
         "--decoders-out", str(tmp_path / "decoders"), "--published"]
    )  # fmt: skip
    assert code == 0
    card = json.loads((tmp_path / "edge" / "card.json").read_text())
    assert card["decoder_published"] is True
    with pytest.raises(ModelRefusedError, match="decoder_published: true"):
        check_decoder_private(card, tmp_path / "edge", allow_public_decoder=False)


def test_package_refuses_an_edge_folder_holding_a_decoder_and_a_broken_export(tmp_path):
    export = write_toy_model_dir(tmp_path / "export")
    with pytest.raises(PackageError, match="folder of its own"):
        package_model(export, export, tmp_path / "decoders")
    stale = write_toy_model_dir(tmp_path / "stale")
    with pytest.raises(PackageError, match="must not hold the decoder"):
        package_model(export, stale, tmp_path / "decoders")
    half = write_toy_model_dir(tmp_path / "half", decoder=False)
    with pytest.raises(ModelDirError, match="ud model missing"):
        package_model(half, tmp_path / "edge", tmp_path / "decoders")


def test_find_decoder_dir_names_where_it_looked(tmp_path):
    edge = write_toy_model_dir(tmp_path / "edge", decoder=False)
    with pytest.raises(ModelDirError, match=f"no ud.onnx of model {TOY_MODEL_ID}"):
        find_decoder_dir(edge, [tmp_path / "nowhere"])
