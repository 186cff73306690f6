"""Weights of an exported ``ue.onnx`` / ``ud.onnx`` back into this repository's :class:`UNet`.

An export holds no optimiser or critic state, but its weights are a trained starting point: a
run can begin from a shipped model (``init_from`` in the Learning II configuration) instead of
from random weights, which on a small CPU is the difference between a model that can be
improved within a session and one that cannot be trained at all.

The ONNX graph is read in node order and matched to the order in which a dummy forward pass of
the torch network calls its layers: every ``Conv``/``ConvTranspose`` gives a weight (and a bias
where it has one), every ``InstanceNormalization`` -- how PyTorch exports ``GroupNorm`` -- is
followed by the ``Mul`` (gamma) and ``Add`` (beta) that carry its affine parameters. The graph's
initializer names are not used: they change with the exporter (round 1's Sequential names,
``onnx::Mul_186``, ``Identity`` aliases of equal tensors). Every shape must agree, and the
loaded network must then reproduce the ONNX model's output in ONNX Runtime on random inputs,
or the import is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from torch import nn

from models.networks.unet import Film, NoiseStyle

__all__ = ["OnnxImportError", "load_unet_from_onnx"]

log = logging.getLogger(__name__)

#: Largest absolute difference between torch and ONNX Runtime accepted after the import.
PARITY_TOLERANCE = 1e-4

_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.GroupNorm)


class OnnxImportError(ValueError):
    """An ONNX file is unreadable or its weights do not fit the torch network."""


def _graph_layers(model: onnx.ModelProto, path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """``(kind, arrays)`` per conv and norm layer of the graph, in node order."""
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:  # the exporter aliases equal tensors through Identity nodes
        if node.op_type == "Identity" and node.input[0] in initializers:
            initializers[node.output[0]] = initializers[node.input[0]]
    layers: list[tuple[str, list[np.ndarray]]] = []
    pending: list[np.ndarray] | None = None
    for node in model.graph.node:
        params = [initializers[name] for name in node.input if name in initializers]
        if node.op_type in ("Conv", "ConvTranspose"):
            if pending is not None:
                raise OnnxImportError(f"{path}: a normalisation without its scale and shift")
            layers.append(("conv", params))
        elif node.op_type == "InstanceNormalization":
            pending = []
        elif pending is not None and node.op_type in ("Mul", "Add") and params:
            pending.append(params[0])
            if len(pending) == 2:
                layers.append(("norm", pending))
                pending = None
    return layers


def _torch_layers(net: nn.Module, channels: int, size: int) -> list[nn.Module]:
    """The conv and GroupNorm layers of ``net`` in the order a forward pass calls them."""
    order: list[nn.Module] = []
    hooks = [
        module.register_forward_hook(lambda m, _i, _o: order.append(m))
        for module in net.modules()
        if isinstance(module, _LAYERS)
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, channels, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _assign(target: torch.Tensor, value: np.ndarray, what: str, path: Path) -> None:
    if value.size != target.numel():
        raise OnnxImportError(
            f"{path}: {what} has {value.size} values, the network expects {tuple(target.shape)}"
        )
    target.copy_(torch.from_numpy(np.array(value, dtype=np.float32)).reshape(target.shape))


def load_unet_from_onnx(
    net: nn.Module, path: Path, input_size: int, fresh_style: bool = False
) -> None:
    """Copy the weights of the exported U-Net at ``path`` into ``net`` (in place).

    ``net`` must be the exported network's architecture (width, depth, norm, channels) in its
    conv and GroupNorm layers. With ``fresh_style``, ``net`` may also have a noise code the
    export lacks (:class:`models.networks.unet.NoiseStyle` and its FiLM layers): the FiLM
    layers are set to the identity (zero weights), so the network starts as the export and
    training teaches it to read its noise plane.

    Raises:
        OnnxImportError: unreadable file, another architecture (layer counts or shapes differ),
            a network with other parametrised layers, or outputs that differ from ONNX
            Runtime's by more than :data:`PARITY_TOLERANCE`.
    """
    try:
        model = onnx.load(str(path))
    except (OSError, DecodeError) as exc:
        raise OnnxImportError(f"{path}: not a readable ONNX model: {exc}") from exc
    channels = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    mapped: tuple[type[nn.Module], ...] = _LAYERS
    if fresh_style:
        mapped = (*_LAYERS, NoiseStyle, Film)
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, Film):
                    module.linear.weight.zero_()
                    module.linear.bias.zero_()
    covered = {id(p) for m in net.modules() if isinstance(m, mapped) for p in m.parameters()}
    others = [name for name, p in net.named_parameters() if id(p) not in covered]
    if others:
        raise OnnxImportError(
            f"{path}: the torch network has layers the import does not map: {others[:3]}"
        )
    graph = _graph_layers(model, path)
    layers = _torch_layers(net, channels, input_size)
    if len(graph) != len(layers):
        raise OnnxImportError(
            f"{path}: {len(graph)} conv/norm layers in the graph, {len(layers)} in the network"
        )
    with torch.no_grad():
        for index, ((kind, arrays), layer) in enumerate(zip(graph, layers, strict=True)):
            what = f"layer {index} ({type(layer).__name__})"
            if (kind == "norm") != isinstance(layer, nn.GroupNorm):
                raise OnnxImportError(f"{path}: {what} is a {kind} layer in the graph")
            parameters = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
            if len(arrays) != len(parameters):
                raise OnnxImportError(
                    f"{path}: {what} has {len(arrays)} tensors in the graph, "
                    f"{len(parameters)} in the network"
                )
            for target, value in zip(parameters, arrays, strict=True):
                if kind == "conv" and tuple(value.shape) != tuple(target.shape):
                    raise OnnxImportError(
                        f"{path}: {what} is {tuple(value.shape)} in the graph, "
                        f"{tuple(target.shape)} in the network"
                    )
                _assign(target, value, what, path)
    _check_parity(net, path, channels, input_size)
    log.info("%s: %d layers imported, parity checked", path, len(layers))


def _check_parity(net: nn.Module, path: Path, channels: int, input_size: int) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    sample = np.random.default_rng(0).random((2, channels, input_size, input_size), np.float32)
    expected = session.run(None, {session.get_inputs()[0].name: sample})[0]
    with torch.no_grad():
        got = net.eval()(torch.from_numpy(sample)).numpy()
    difference = float(np.abs(got - expected).max())
    if difference > PARITY_TOLERANCE:
        raise OnnxImportError(
            f"{path}: the imported network differs from the ONNX model by {difference:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e}): another architecture"
        )
