"""shared.detectors.base: filtering, clipping, frame checks and error wrapping for all plug-ins."""

from __future__ import annotations

import numpy as np
import pytest

from shared.detectors.base import (
    DetectorError,
    DetectorOptions,
    FaceDetection,
    FaceDetector,
    finish_detections,
    is_dark,
    merge_detections,
)
from shared.geometry import Box


class _Fixed(FaceDetector):
    key = "fixed"

    def __init__(self, rows, options=None):
        super().__init__(options)
        self.rows = rows
        self.seen_shapes = []

    def _detect(self, frame):
        self.seen_shapes.append(frame.shape)
        return self.rows


class _Broken(FaceDetector):
    key = "broken"

    def _detect(self, frame):
        raise KeyError("backend exploded")


def test_finish_detections_clips_filters_and_sorts():
    rows = [
        (-5.0, -5.0, 20.0, 30.0, 0.7),  # clipped at the top-left corner
        (10.0, 10.0, 14.0, 14.0, 0.99),  # 4 px: below min size
        (50.0, 40.0, 90.0, 80.0, 0.95),
        (0.0, 0.0, 30.0, 30.0, 0.2),  # below threshold
        (float("nan"), 0.0, 5.0, 5.0, 0.9),  # not finite
        (200.0, 200.0, 220.0, 220.0, 0.9),  # entirely outside the 100x100 frame
    ]
    found = finish_detections(rows, 100, 100, DetectorOptions(score_threshold=0.5, min_face_size=8))
    assert [d.box for d in found] == [Box(50, 40, 40, 40), Box(0, 0, 20, 30)]
    assert [round(d.score, 2) for d in found] == [0.95, 0.7]


def test_detect_with_max_input_side_scales_boxes_back():
    detector = _Fixed([(10.0, 20.0, 30.0, 40.0, 0.9)], DetectorOptions(max_input_side=100))
    found = detector.detect(np.zeros((200, 400, 3), np.uint8))
    assert detector.seen_shapes == [(50, 100, 3)]
    assert [d.box for d in found] == [Box(40, 80, 80, 80)]


def test_detect_shrinks_only_frames_larger_than_shrink_above_side():
    options = DetectorOptions(max_input_side=100, shrink_above_side=300)
    detector = _Fixed([(10.0, 20.0, 30.0, 40.0, 0.9)], options)
    small = detector.detect(np.zeros((150, 300, 3), np.uint8))  # kept at full size
    large = detector.detect(np.zeros((200, 400, 3), np.uint8))  # shrunk to 100 px
    assert detector.seen_shapes == [(150, 300, 3), (50, 100, 3)]
    assert [d.box for d in small] == [Box(10, 20, 20, 20)]
    assert [d.box for d in large] == [Box(40, 80, 80, 80)]


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ],
)
def test_detect_with_bad_frame_raises_detector_error(frame):
    with pytest.raises(DetectorError, match="expected"):
        _Fixed([]).detect(frame)


def test_detect_with_failing_backend_raises_detector_error_naming_it():
    with pytest.raises(DetectorError, match="broken failed: 'backend exploded'"):
        _Broken().detect(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"score_threshold": 1.5},
        {"min_face_size": 0},
        {"nms_threshold": 0.0},
        {"max_input_side": 8},
        {"low_light_gamma": 0.0},
        {"low_light_gamma": 1.0},
        {"shrink_above_side": 0},
        {"region_seed_side": 0},
    ],
)
def test_options_with_bad_values_raise(kwargs):
    with pytest.raises(ValueError):
        DetectorOptions(**kwargs)


def test_finish_detections_keeps_landmarks_scaled_and_shaped():
    marks = np.arange(10, dtype=np.float32)  # flat x, y, x, y, ...
    rows = [(10.0, 10.0, 50.0, 50.0, 0.9, marks), (60.0, 10.0, 90.0, 40.0, 0.8)]
    found = finish_detections(rows, 200, 200, DetectorOptions(), scale=0.5)
    assert found[0].landmarks.shape == (5, 2) and found[0].landmarks.dtype == np.float32
    np.testing.assert_allclose(found[0].landmarks, marks.reshape(5, 2) * 2)
    assert found[1].landmarks is None


def test_finish_detections_drops_non_finite_landmarks_but_keeps_the_face():
    marks = np.full((5, 2), np.nan)
    (found,) = finish_detections([(0.0, 0.0, 20.0, 20.0, 0.9, marks)], 50, 50, DetectorOptions())
    assert found.box == Box(0, 0, 20, 20) and found.landmarks is None


def test_detect_with_malformed_landmarks_raises_detector_error_naming_it():
    detector = _Fixed([(0.0, 0.0, 20.0, 20.0, 0.9, np.zeros(6))])
    with pytest.raises(DetectorError, match=r"fixed: expected 5 landmarks"):
        detector.detect(np.zeros((50, 50, 3), np.uint8))


def test_face_detections_compare_by_box_and_score_only():
    first = finish_detections(
        [(0.0, 0.0, 20.0, 20.0, 0.9, np.zeros(10))], 50, 50, DetectorOptions()
    )
    second = finish_detections([(0.0, 0.0, 20.0, 20.0, 0.9)], 50, 50, DetectorOptions())
    assert first == second


class _SeesOnlyBright(FaceDetector):
    """A backend that finds its face only where the frame is bright enough (like a detector
    trained on well-lit photos), with a score that grows with brightness."""

    key = "bright"

    def _detect(self, frame):
        mean = float(frame[20:60, 20:60].mean())
        return [(20.0, 20.0, 60.0, 60.0, mean / 255.0)] if mean >= 64 else []


def test_low_light_pass_finds_a_face_in_shadow_that_one_pass_misses():
    frame = np.full((100, 100, 3), 30, np.uint8)  # a face in shadow: value 30 of 255
    one_pass = _SeesOnlyBright(DetectorOptions(score_threshold=0.1)).detect(frame)
    two_passes = _SeesOnlyBright(DetectorOptions(score_threshold=0.1, low_light_gamma=0.5)).detect(
        frame
    )
    assert one_pass == []
    assert [d.box for d in two_passes] == [Box(20, 20, 40, 40)]
    # gamma 0.5 lifts 30 to round(255 * (30 / 255) ** 0.5) = 87
    assert two_passes[0].score == pytest.approx(87 / 255)


def test_low_light_pass_reports_a_face_both_passes_find_once_with_the_best_score():
    frame = np.full((100, 100, 3), 100, np.uint8)
    found = _SeesOnlyBright(DetectorOptions(score_threshold=0.1, low_light_gamma=0.5)).detect(frame)
    assert [d.box for d in found] == [Box(20, 20, 40, 40)]
    assert found[0].score == pytest.approx(160 / 255)  # the brightened pass scores higher


def test_merge_detections_keeps_the_best_of_overlapping_and_every_separate_face():
    strong = FaceDetection(Box(0, 0, 40, 40), 0.9)
    weak_same_face = FaceDetection(Box(2, 2, 40, 40), 0.7)
    elsewhere = FaceDetection(Box(60, 60, 30, 30), 0.65)
    merged = merge_detections([weak_same_face], [strong, elsewhere], iou_threshold=0.3)
    assert merged == [strong, elsewhere]


class _CountsPasses(FaceDetector):
    key = "counts"

    def __init__(self, options=None):
        super().__init__(options)
        self.means = []

    def _detect(self, frame):
        self.means.append(float(frame.mean()))
        return []


def test_low_light_pass_with_max_luma_runs_on_a_dark_frame_only():
    options = DetectorOptions(low_light_gamma=0.5, low_light_max_luma=60.0)
    dark, bright = _CountsPasses(options), _CountsPasses(options)
    dark.detect(np.full((64, 64, 3), 30, np.uint8))
    bright.detect(np.full((64, 64, 3), 150, np.uint8))
    assert dark.means == [30.0, 87.0]  # the frame, then the frame brightened by gamma 0.5
    assert bright.means == [150.0]


def test_is_dark_weighs_channels_as_luma():
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 255  # luma 0.114 * 255 = 29
    assert is_dark(blue, 30.0) and not is_dark(blue, 28.0)
    assert is_dark(np.full((8, 8, 3), 255, np.uint8), None)
