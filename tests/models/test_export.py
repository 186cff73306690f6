"""models.export: ONNX files that load like the runtime loads them, match torch, carry ids."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from models.distributed import DistContext
from models.export import ExportParityError, export_run, weights_id
from models.runs import run_deid
from models.train_matcher import build_matcher
from shared.model_dir import load_card, load_decoder, load_encoder
from tests.models.tiny import LABELS, tiny_deid_config, tiny_stream


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    config = tiny_deid_config(steps=2)
    stream = tiny_stream(config)
    run_deid(
        config,
        root / "run",
        build_matcher(LABELS, 16),
        stream,
        torch.rand(2, 3, 16, 16),
        DistContext(torch.device("cpu")),
        progress=False,
    )
    return root


def test_export_writes_loadable_matching_pair(trained_run):
    out = trained_run / "model"
    card = export_run(trained_run / "run", out, data_summary={"source": "tiny"})
    ue, ue_card = load_encoder(out, providers="cpu")
    ud, _ = load_decoder(out, providers="cpu")
    assert ue.model_id == ud.model_id == card["model_id"] == load_card(out).model_id
    assert len(card["model_id"]) == 16
    assert card["parity"]["ue_max_abs_diff"] <= 1e-4 and card["parity"]["ud_max_abs_diff"] <= 1e-4
    assert ue_card.s == (-1, 1, 1, 0) and ue_card.labels == LABELS
    assert json.loads(ue.metadata["labels"]) == list(LABELS)
    assert ue.metadata["role"] == "ue" and ud.metadata["role"] == "ud"
    # Dynamic batch: any N runs.
    assert ue(np.random.rand(7, 4, 16, 16).astype(np.float32)).shape == (7, 3, 16, 16)
    # One file each: no external data.
    model = onnx.load(str(out / "ue.onnx"), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert card["training"]["steps"] == 2 and card["training"]["data"] == {"source": "tiny"}
    assert card["training"]["matcher"]["run"] is None  # trained without Da: the card says so


def test_model_id_is_the_weights_hash(trained_run):
    from models.export import load_generators

    ue, ud, _, _ = load_generators(trained_run / "run")
    first = weights_id(ue, ud)
    with torch.no_grad():
        next(ud.parameters()).add_(1e-3)
    assert weights_id(ue, ud) != first


def test_parity_failure_refuses_export_and_keeps_old_files(trained_run):
    out = trained_run / "strict"
    with pytest.raises(ExportParityError):
        export_run(trained_run / "run", out, tolerance=-1.0)
    assert not (out / "ue.onnx").exists()
