"""Tiny real ONNX model directories for tests (built with ``onnx.helper``; no torch needed).

The toy pair is exactly reversible: ``Ue(x) = 1 - x[:, :3]`` (noise ignored) and
``Ud(a) = 1 - a``. It lets the edge and authority tests check plumbing (crop, resize, paste,
message, model ids) through real ONNX Runtime sessions with known expected pixels. It is not a
de-identifier: quality is measured with the trained default model.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

TOY_MODEL_ID = "toy0123456789abc"
LABELS = ["id", "gender", "ethnicity", "hairstyle"]
S_VECTOR = [-1, 1, 1, 0]


def _graph(
    role: str, size: int | str, in_channels: int, in_name: str, out_name: str
) -> onnx.GraphProto:
    nodes = []
    inits = [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])]
    source = in_name
    if in_channels != 3:
        inits += [
            helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [3]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        ]
        nodes.append(helper.make_node("Slice", [in_name, "starts", "ends", "axes"], ["rgb"]))
        source = "rgb"
    nodes.append(helper.make_node("Sub", ["one", source], [out_name]))
    return helper.make_graph(
        nodes,
        f"toy_{role}",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["N", in_channels, size, size])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", 3, size, size])],
        initializer=inits,
    )


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str]) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)


def write_toy_model_dir(
    directory: Path,
    *,
    size: int = 64,
    model_id: str = TOY_MODEL_ID,
    ue_channels: int = 4,
    ud_model_id: str | None = None,
    composition: dict | None = None,
    x_a_auc: float | None = 0.5,
    decoder: bool = True,
    decoder_published: bool | None = False,
) -> Path:
    """Write ``ue.onnx``, ``ud.onnx`` and ``card.json`` of the toy pair into ``directory``.

    ``ue_channels`` other than 4 or ``ud_model_id`` different from ``model_id`` make a broken
    directory, for error tests. ``composition`` goes into the card as is (none: a round-1
    card, pixel replication and a hard paste). ``x_a_auc`` is the privacy figure the card
    declares so the edge accepts the toy (a fixture's declaration, not a measurement: the
    toy's ``1 - x`` hides nobody); ``None`` writes a card without figures. ``decoder=False``
    writes an edge package (no ``ud.onnx``); ``decoder_published`` goes into the card as is
    (``None``: the card does not say).
    """
    directory.mkdir(parents=True, exist_ok=True)
    several = composition is not None and len(composition.get("sizes", [])) > 1
    side: int | str = "S" if several else size  # several sizes: dynamic height and width
    common = {"input_size": str(size), "s": json.dumps(S_VECTOR), "labels": json.dumps(LABELS)}
    _save(
        _graph("ue", side, ue_channels, "x", "a"),
        directory / "ue.onnx",
        {**common, "model_id": model_id, "role": "ue"},
    )
    if decoder:
        _save(
            _graph("ud", side, 3, "a", "r"),
            directory / "ud.onnx",
            {**common, "model_id": ud_model_id or model_id, "role": "ud"},
        )
    card = {
        "model_id": model_id,
        "input_size": size,
        "s": S_VECTOR,
        "labels": LABELS,
        "description": "toy reversible pair for tests: a = 1 - x, r = 1 - a",
    }
    if decoder_published is not None:
        card["decoder_published"] = decoder_published
    if composition is not None:
        card["composition"] = composition
    if x_a_auc is not None:
        card["metrics"] = {
            "note": "test fixture: declared, not measured",
            "recognition": {"fixture": {"x_a": {"auc": x_a_auc}}},
        }
    (directory / "card.json").write_text(json.dumps(card, indent=2))
    return directory
