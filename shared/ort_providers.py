"""Options of the CUDA and TensorRT execution providers, as ``ort.InferenceSession`` takes them.

:class:`GpuOptions` says how a model runs on a GPU (device, TensorRT fp16, engine cache, batch
sizes of the shape profile); :func:`provider_options` turns it, the chosen providers and the
model's inputs into the ``providers=[(name, options), ...]`` list (option names as ONNX
Runtime's TensorRT and CUDA execution provider pages document them). Pure: no session is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.onnx_runner import TensorSpec

__all__ = ["CUDA", "GPU_PROVIDERS", "TENSORRT", "GpuOptions", "provider_options"]

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
#: The providers :class:`GpuOptions` configure; any other is passed by name alone.
GPU_PROVIDERS = (TENSORRT, CUDA)


@dataclass(frozen=True)
class GpuOptions:
    """How the CUDA and TensorRT providers run a model (ignored on the CPU provider).

    ``fp16``: TensorRT builds its engine in half precision (the CUDA provider runs the float32
    model as it is). ``trt_engine_cache_dir``: TensorRT keeps its engines there, so a restart
    loads them instead of rebuilding (``None``: no cache). ``trt_batch_min/opt/max``: the batch
    sizes N of the explicit shape profile (``opt``: what TensorRT tunes for, ``None``: ``max``;
    ``max`` ``None``: the model's ``max_batch``, the largest chunk it is ever fed).

    Raises:
        ValueError: a negative device, a batch size below 1, or ``min <= opt <= max`` broken.
    """

    device_id: int = 0
    fp16: bool = False
    trt_engine_cache_dir: Path | None = None
    trt_batch_min: int = 1
    trt_batch_opt: int | None = None
    trt_batch_max: int | None = None

    def __post_init__(self) -> None:
        if self.device_id < 0:
            raise ValueError(f"device_id must be >= 0, got {self.device_id}")
        given = [self.trt_batch_min, self.trt_batch_opt, self.trt_batch_max]
        if any(b is not None and b < 1 for b in given):
            raise ValueError(f"TensorRT batch sizes must be >= 1, got {given}")
        known = [b for b in given if b is not None]
        if known != sorted(known):
            raise ValueError(f"TensorRT batch sizes must satisfy min <= opt <= max, got {given}")

    def batch_profile(self, max_batch: int | None) -> tuple[int, int, int]:
        """``(min, opt, max)`` batch sizes of the profile for a model fed chunks of ``max_batch``.

        Raises:
            ValueError: no maximum (neither ``trt_batch_max`` nor ``max_batch``), or a maximum
                below ``max_batch`` (a full chunk would fall outside the profile and rebuild
                the engine), or ``min``/``opt`` above the maximum.
        """
        top = self.trt_batch_max if self.trt_batch_max is not None else max_batch
        if top is None:
            raise ValueError("a TensorRT shape profile needs trt_batch_max or max_batch")
        if max_batch is not None and top < max_batch:
            raise ValueError(
                f"trt_batch_max {top} is below max_batch {max_batch}: a full batch would "
                "fall outside the TensorRT profile and rebuild its engine"
            )
        opt = self.trt_batch_opt if self.trt_batch_opt is not None else top
        if not self.trt_batch_min <= opt <= top:
            raise ValueError(
                f"TensorRT batch sizes must satisfy min <= opt <= max, got "
                f"{[self.trt_batch_min, opt, top]}"
            )
        return self.trt_batch_min, opt, top


def provider_options(
    providers: Sequence[str],
    gpu: GpuOptions | None,
    inputs: Sequence[TensorSpec],
    sides: Sequence[int] = (),
    max_batch: int | None = None,
) -> list[str | tuple[str, dict[str, object]]]:
    """What ``ort.InferenceSession(providers=...)`` gets: each GPU provider with its options.

    ``providers`` are ORT names (:func:`resolve_providers`). Without ``gpu`` or without a GPU
    provider among them, the names are returned unchanged. The TensorRT profile names each of
    ``inputs``: its batch (first) size runs over :meth:`GpuOptions.batch_profile`, its other
    free sizes over ``min(sides)`` .. ``max(sides)`` (opt: the largest, where large faces go).

    Raises:
        ValueError: bad batch sizes (see :class:`GpuOptions`), no input, a free size other than
            the batch with no ``sides``, or a side below 1.
    """
    names = list(providers)
    if gpu is None or not any(name in GPU_PROVIDERS for name in names):
        return names
    chosen: list[str | tuple[str, dict[str, object]]] = []
    for name in names:
        if name == CUDA:
            chosen.append((name, {"device_id": gpu.device_id}))
        elif name == TENSORRT:
            chosen.append((name, _tensorrt_options(gpu, inputs, sides, max_batch)))
        else:
            chosen.append(name)
    return chosen


def _tensorrt_options(
    gpu: GpuOptions, inputs: Sequence[TensorSpec], sides: Sequence[int], max_batch: int | None
) -> dict[str, object]:
    if not inputs:
        raise ValueError("a TensorRT shape profile needs the model's inputs")
    if any(not isinstance(s, int) or s < 1 for s in sides):
        raise ValueError(f"model sizes must be integers >= 1, got {list(sides)}")
    batches = gpu.batch_profile(max_batch)
    # min, opt, max: (batch, side of every free size but the batch)
    small, large = min(sides, default=0), max(sides, default=0)
    corners = zip(batches, (small, large, large), strict=True)
    profiles: list[list[str]] = [[], [], []]
    for spec in inputs:
        if any(d is None for d in spec.shape[1:]) and not sides:
            raise ValueError(f"input {spec.name!r} has free sizes {list(spec.shape)}: give sides")
    for which, (batch, side) in enumerate(corners):
        for spec in inputs:
            dims = [batch] + [side if d is None else d for d in spec.shape[1:]]
            profiles[which].append(f"{spec.name}:" + "x".join(str(d) for d in dims))
    options: dict[str, object] = {
        "device_id": gpu.device_id,
        "trt_fp16_enable": gpu.fp16,
        "trt_profile_min_shapes": ",".join(profiles[0]),
        "trt_profile_opt_shapes": ",".join(profiles[1]),
        "trt_profile_max_shapes": ",".join(profiles[2]),
    }
    if gpu.trt_engine_cache_dir is not None:
        options["trt_engine_cache_enable"] = True
        options["trt_engine_cache_path"] = str(gpu.trt_engine_cache_dir)
    return options
