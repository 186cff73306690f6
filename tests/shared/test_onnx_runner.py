"""shared.onnx_runner on real ONNX Runtime sessions of tiny generated models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from shared.onnx_runner import (
    ModelLoadError,
    ModelRunError,
    ModelSignatureError,
    OnnxModel,
    ProviderError,
    TensorSpec,
    resolve_providers,
)
from shared.ort_providers import GpuOptions


def _slice_model(path: Path, size: int = 8, metadata: dict[str, str] | None = None) -> Path:
    """x [N,4,S,S] -> a = 0.5 * x[:, :3] (what a Ue-shaped model looks like)."""
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [3])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    graph = helper.make_graph(
        [
            helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["rgb"]),
            helper.make_node("Mul", ["rgb", "half"], ["a"]),
        ],
        "ue_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, size, size])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, size, size])],
        initializer=[starts, ends, axes, half],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    return path


UE_IN = [TensorSpec("x", (None, 4, 8, 8))]
UE_OUT = [TensorSpec("a", (None, 3, 8, 8))]


def test_runs_batch_and_reads_metadata(tmp_path):
    path = _slice_model(tmp_path / "ue.onnx", metadata={"model_id": "abc123", "input_size": "8"})
    model = OnnxModel(path, inputs=UE_IN, outputs=UE_OUT, providers="cpu", threads=1)
    batch = np.random.default_rng(0).random((5, 4, 8, 8), dtype=np.float32)
    out = model(batch)
    np.testing.assert_allclose(out, 0.5 * batch[:, :3], rtol=1e-6)
    assert model.model_id == "abc123"
    assert model.metadata["input_size"] == "8"
    assert model.providers == ["CPUExecutionProvider"]


def test_max_batch_splits_and_concatenates(tmp_path):
    model = OnnxModel(_slice_model(tmp_path / "m.onnx"), max_batch=2, providers="auto")
    batch = np.random.default_rng(1).random((5, 4, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(model(batch), 0.5 * batch[:, :3], rtol=1e-6)


def test_model_id_falls_back_to_file_hash(tmp_path):
    model = OnnxModel(_slice_model(tmp_path / "m.onnx"))
    assert len(model.model_id) == 16 and int(model.model_id, 16) >= 0


def test_auto_prefers_best_available():
    chosen = resolve_providers("auto")
    assert chosen[-1] == "CPUExecutionProvider" or "CPUExecutionProvider" not in chosen
    assert set(chosen) <= set(ort.get_available_providers())


def test_unknown_provider_lists_available(tmp_path):
    with pytest.raises(ProviderError) as info:
        OnnxModel(_slice_model(tmp_path / "m.onnx"), providers=["NoSuchExecutionProvider"])
    assert "CPUExecutionProvider" in str(info.value)


def test_missing_and_corrupt_files_raise(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        OnnxModel(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match="cannot load"):
        OnnxModel(bad)


@pytest.mark.parametrize(
    ("inputs", "outputs", "match"),
    [
        ([TensorSpec("x", (None, 4, 64, 64))], UE_OUT, "shape"),  # wrong spatial size
        ([TensorSpec("x", (None, 3, 8, 8))], UE_OUT, "shape"),  # wrong channels
        ([TensorSpec("input", (None, 4, 8, 8))], UE_OUT, "expected inputs"),
        (UE_IN, [TensorSpec("r", (None, 3, 8, 8))], "expected outputs"),
        ([TensorSpec("x", (None, 4, 8))], UE_OUT, "shape"),  # wrong rank
        ([TensorSpec("x", (None, 4, 8, 8), np.uint8)], UE_OUT, "tensor"),
    ],
)
def test_signature_mismatch_raises(tmp_path, inputs, outputs, match):
    with pytest.raises(ModelSignatureError, match=match):
        OnnxModel(_slice_model(tmp_path / "m.onnx"), inputs=inputs, outputs=outputs)


def test_bad_batch_raises_run_error(tmp_path):
    model = OnnxModel(_slice_model(tmp_path / "m.onnx"))
    with pytest.raises(ModelRunError):
        model(np.zeros((1, 4, 9, 9), np.float32))
    with pytest.raises(ValueError):
        model.run({"y": np.zeros((1, 4, 8, 8), np.float32)})


def test_gpu_options_do_not_change_a_cpu_session(tmp_path):
    path = _slice_model(tmp_path / "m.onnx")
    # no maximum batch and no profile maximum: refused on TensorRT, irrelevant on the CPU
    model = OnnxModel(path, inputs=UE_IN, providers="cpu", gpu=GpuOptions(fp16=True))
    batch = np.random.default_rng(2).random((3, 4, 8, 8), dtype=np.float32)
    assert model.providers == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(model(batch), OnnxModel(path, providers="cpu")(batch))
