"""Load and run an ONNX model with ONNX Runtime: provider choice, signature checks, metadata.

The edge runs ``Ue`` and the authority ``Ud`` through :class:`OnnxModel`. It

* picks the best execution provider available (TensorRT, then CUDA, then CPU) unless the
  caller names some; a name ONNX Runtime does not offer raises with the list of those it does;
* checks the model's input/output names, ranks, fixed sizes and element types against what the
  caller expects, so a wrong model fails at start-up with a clear message instead of at the
  first frame;
* exposes the model's metadata (``model_id``, ``input_size``, ...; see ``models/export.py``);
* warms the session up once, and runs batches (split into chunks of ``max_batch``);
* on a GPU, passes :class:`GpuOptions` to the CUDA and TensorRT providers
  (:func:`provider_options`: device, TensorRT fp16, engine cache, and one explicit shape profile
  over every batch size and model size the caller feeds, so no new face count or size rebuilds
  an engine mid-stream; :mod:`shared.ort_providers`). The CPU provider is given no options.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.ort_providers import GPU_PROVIDERS, GpuOptions, provider_options

__all__ = [
    "GPU_PROVIDERS",
    "PROVIDER_PREFERENCE",
    "GpuOptions",
    "ModelLoadError",
    "ModelRunError",
    "ModelSignatureError",
    "OnnxModel",
    "ProviderError",
    "TensorSpec",
    "cpu_session_options",
    "provider_options",
    "resolve_providers",
]

log = logging.getLogger(__name__)

PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
_SHORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
}


class ModelLoadError(ValueError):
    """The model file is missing, unreadable or not a valid ONNX model."""


class ModelSignatureError(ValueError):
    """The model's inputs/outputs differ from what the caller expects."""


class ProviderError(ValueError):
    """An execution provider was requested that this ONNX Runtime build does not offer."""


class ModelRunError(RuntimeError):
    """ONNX Runtime failed while running the model on a batch."""


@dataclass(frozen=True)
class TensorSpec:
    """What a caller expects of one model input or output.

    ``shape`` holds an int for a size that must match and ``None`` for a free one (the batch).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: type = np.float32


def resolve_providers(requested: str | Sequence[str] = "auto") -> list[str]:
    """Turn ``"auto"`` or a list of provider names (long or short: ``cuda``) into ORT's names.

    Raises:
        ProviderError: a requested provider is not available in this ONNX Runtime build.
    """
    available = ort.get_available_providers()
    if requested == "auto":
        chosen = [p for p in PROVIDER_PREFERENCE if p in available]
        return chosen or list(available)
    if isinstance(requested, str):
        requested = [requested]
    chosen = []
    for name in requested:
        full = _SHORT_NAMES.get(name.lower(), name)
        if full not in available:
            raise ProviderError(
                f"execution provider {name!r} is not available; this ONNX Runtime offers: "
                f"{', '.join(available)}"
            )
        chosen.append(full)
    if not chosen:
        raise ProviderError("no execution provider requested")
    return chosen


def _dims_match(expected: tuple[int | None, ...], actual: Sequence[object]) -> bool:
    if len(expected) != len(actual):
        return False
    # A symbolic/unknown size in the model accepts whatever we feed.
    return all(
        e is None or not isinstance(a, int) or a == e for e, a in zip(expected, actual, strict=True)
    )


def cpu_session_options(
    threads: int | None = None, memory_pattern: bool = True
) -> ort.SessionOptions:
    """The session options every model of ours runs with: no spinning worker threads (they
    would take the core the capture, the detector or the encoder needs), every graph
    optimisation, ``threads`` intra-op threads (``None``: ONNX Runtime's default), quiet logs.
    ``memory_pattern`` off suits inputs whose size changes from run to run (a detector on frames
    and regions: measured with YuNet at 1080p, 66 MiB peak instead of 131, and no slower)."""
    options = ort.SessionOptions()
    options.enable_mem_pattern = memory_pattern
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return options


class OnnxModel:
    """One ONNX Runtime session with checked signature and metadata.

    Args:
        path: the ``.onnx`` file.
        inputs / outputs: the tensors the caller expects (checked in order; extra model
            outputs are an error too). ``None`` skips the check.
        providers: ``"auto"`` or names, see :func:`resolve_providers`.
        threads: intra-op threads (``None``: ONNX Runtime's default).
        max_batch: split larger batches into chunks of this size (``None``: no split).
        warmup: run one batch of zeros at load time.
        warmup_shape: per input, the shape of that batch where the model's sizes are
            symbolic (default: 1 for every symbolic size).
        gpu: options of the CUDA/TensorRT providers, where one is chosen (``None``: ORT's
            defaults); see :func:`provider_options`, which takes ``inputs`` (the names the
            TensorRT profile gives) and ``profile_sides``.
        profile_sides: the sizes the model's free non-batch dimensions take (a Ue offered at
            several sizes: the card's sizes).

    Raises:
        ModelLoadError: missing or invalid file.
        ModelSignatureError: inputs/outputs differ from ``inputs``/``outputs``.
        ProviderError: unknown provider requested.
        ValueError: ``max_batch`` below 1, or ``gpu`` options that do not fit (see
            :func:`provider_options`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        inputs: Sequence[TensorSpec] | None = None,
        outputs: Sequence[TensorSpec] | None = None,
        providers: str | Sequence[str] = "auto",
        threads: int | None = None,
        max_batch: int | None = None,
        warmup: bool = True,
        warmup_shape: Sequence[int] | None = None,
        gpu: GpuOptions | None = None,
        profile_sides: Sequence[int] = (),
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"model file not found: {self.path}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        chosen = provider_options(
            resolve_providers(providers), gpu, inputs or (), profile_sides, max_batch
        )
        options = cpu_session_options(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=chosen)
        except Exception as exc:
            raise ModelLoadError(f"cannot load ONNX model {self.path}: {exc}") from exc
        self.providers = list(self.session.get_providers())
        self.max_batch = max_batch
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if inputs is not None:
            self._check(inputs, self.session.get_inputs(), "input")
        if outputs is not None:
            self._check(outputs, self.session.get_outputs(), "output")
        meta = self.session.get_modelmeta()
        self.metadata: dict[str, str] = dict(meta.custom_metadata_map)
        log.info("loaded %s on %s (model id %s)", self.path, self.providers[0], self.model_id)
        if warmup:
            self.run(self._zeros(warmup_shape))

    def _check(self, specs: Sequence[TensorSpec], actual: Sequence[ort.NodeArg], kind: str) -> None:
        got = [(a.name, tuple(a.shape), a.type) for a in actual]
        want = [(s.name, s.shape, s.dtype) for s in specs]
        describe = ", ".join(f"{n}{list(shape)} {t}" for n, shape, t in got)
        if [n for n, _, _ in got] != [n for n, _, _ in want]:
            raise ModelSignatureError(
                f"{self.path}: expected {kind}s {[n for n, _, _ in want]}, the model has {describe}"
            )
        for (name, shape, ort_type), spec in zip(got, specs, strict=True):
            if _ORT_TYPES.get(ort_type) is not spec.dtype:
                raise ModelSignatureError(
                    f"{self.path}: {kind} {name!r} is {ort_type}, expected "
                    f"{np.dtype(spec.dtype).name}"
                )
            if not _dims_match(spec.shape, shape):
                raise ModelSignatureError(
                    f"{self.path}: {kind} {name!r} has shape {list(shape)}, expected "
                    f"{['N' if d is None else d for d in spec.shape]}"
                )

    def _zeros(self, fallback: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        feeds = {}
        for arg in self.session.get_inputs():
            shape = [
                d if isinstance(d, int) else (fallback[i] if fallback else 1)
                for i, d in enumerate(arg.shape)
            ]
            feeds[arg.name] = np.zeros(shape, dtype=_ORT_TYPES.get(arg.type, np.float32))
        return feeds

    @property
    def model_id(self) -> str:
        """The ``model_id`` metadata entry, or the first 16 hex chars of the file's SHA-256."""
        if "model_id" in self.metadata:
            return self.metadata["model_id"]
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.metadata["model_id"] = digest[:16]
        return self.metadata["model_id"]

    def input_shape(self, index: int = 0) -> tuple[int | str | None, ...]:
        """The declared shape of an input (symbolic sizes as strings)."""
        return tuple(self.session.get_inputs()[index].shape)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on named inputs; batches above ``max_batch`` are run in chunks.

        Raises:
            ValueError: a feed is missing or extra.
            ModelRunError: ONNX Runtime failed (wrong shape or type, out of memory, ...).
        """
        if set(feeds) != set(self.input_names):
            raise ValueError(f"expected inputs {self.input_names}, got {sorted(feeds)}")
        batch = len(next(iter(feeds.values())))
        step = self.max_batch or max(batch, 1)
        chunks: list[list[np.ndarray]] = []
        for start in range(0, max(batch, 1), step):
            part = {k: v[start : start + step] for k, v in feeds.items()}
            try:
                chunks.append(self.session.run(self.output_names, part))
            except Exception as exc:
                raise ModelRunError(f"{self.path.name}: inference failed: {exc}") from exc
        if len(chunks) == 1:
            return dict(zip(self.output_names, chunks[0], strict=True))
        return {
            name: np.concatenate([c[i] for c in chunks], axis=0)
            for i, name in enumerate(self.output_names)
        }

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run a single-input model and return its first output.

        Raises:
            ValueError: the model has more than one input.
            ModelRunError: ONNX Runtime failed.
        """
        if len(self.input_names) != 1:
            raise ValueError(f"model has inputs {self.input_names}; use run() with names")
        return self.run({self.input_names[0]: batch})[self.output_names[0]]
