"""shared.ort_providers: the exact provider-option dicts ONNX Runtime gets on a GPU; refusals."""

from __future__ import annotations

import pytest

from shared.onnx_runner import TensorSpec
from shared.ort_providers import GpuOptions, provider_options

UE_IN = [TensorSpec("x", (None, 4, 8, 8))]

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"


def test_provider_options_give_tensorrt_one_profile_over_every_face_count_and_size(tmp_path):
    gpu = GpuOptions(device_id=1, fp16=True, trt_engine_cache_dir=tmp_path / "trt", trt_batch_opt=4)
    free = [TensorSpec("x", (None, 4, None, None))]  # a Ue offered at several sizes
    chosen = provider_options([TRT, CUDA, CPU], gpu, free, sides=(64, 96, 128), max_batch=16)
    assert chosen == [
        (
            TRT,
            {
                "device_id": 1,
                "trt_fp16_enable": True,
                "trt_profile_min_shapes": "x:1x4x64x64",
                "trt_profile_opt_shapes": "x:4x4x128x128",
                "trt_profile_max_shapes": "x:16x4x128x128",
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(tmp_path / "trt"),
            },
        ),
        (CUDA, {"device_id": 1}),
        CPU,
    ]
    # one fixed size, defaults: opt is the largest chunk, no cache keys, fp16 off
    assert provider_options([TRT], GpuOptions(), UE_IN, max_batch=8) == [
        (
            TRT,
            {
                "device_id": 0,
                "trt_fp16_enable": False,
                "trt_profile_min_shapes": "x:1x4x8x8",
                "trt_profile_opt_shapes": "x:8x4x8x8",
                "trt_profile_max_shapes": "x:8x4x8x8",
            },
        )
    ]
    # an explicit maximum above the chunk size is kept
    two = [TensorSpec("a", (None, 3, 8, 8)), TensorSpec("b", (None, 1, 8, 8))]
    options = dict(provider_options([TRT], GpuOptions(trt_batch_max=32), two, max_batch=None))
    assert options[TRT]["trt_profile_max_shapes"] == "a:32x3x8x8,b:32x1x8x8"


def test_provider_options_leave_the_cpu_provider_as_it_was():
    assert provider_options([CPU], GpuOptions(fp16=True), UE_IN, max_batch=4) == [CPU]
    assert provider_options([TRT, CUDA, CPU], None, UE_IN) == [TRT, CUDA, CPU]
    # a CUDA-only choice needs no profile, so no batch bound either
    assert provider_options([CUDA, CPU], GpuOptions(), []) == [(CUDA, {"device_id": 0}), CPU]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device_id": -1}, "device_id"),
        ({"trt_batch_min": 0}, ">= 1"),
        ({"trt_batch_min": 8, "trt_batch_opt": 2}, "min <= opt <= max"),
        ({"trt_batch_opt": 9, "trt_batch_max": 4}, "min <= opt <= max"),
    ],
)
def test_gpu_options_refuse_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GpuOptions(**kwargs)


@pytest.mark.parametrize(
    ("gpu", "inputs", "sides", "max_batch", "match"),
    [
        (GpuOptions(trt_batch_max=8), UE_IN, (), 16, "below max_batch 16"),
        (GpuOptions(), UE_IN, (), None, "needs trt_batch_max or max_batch"),
        (GpuOptions(trt_batch_opt=32), UE_IN, (), 16, "min <= opt <= max"),
        (GpuOptions(), [], (), 16, "needs the model's inputs"),
        (GpuOptions(), [TensorSpec("x", (None, 4, None, None))], (), 16, "give sides"),
        (GpuOptions(), [TensorSpec("x", (None, 4, None, None))], (0, 64), 16, "sizes"),
    ],
)
def test_provider_options_refuse_a_profile_that_does_not_fit(gpu, inputs, sides, max_batch, match):
    with pytest.raises(ValueError, match=match):
        provider_options([TRT, CUDA], gpu, inputs, sides, max_batch)
