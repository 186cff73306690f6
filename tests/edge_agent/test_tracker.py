"""edge_agent.tracker: tracks follow faces and hold through misses; noise is stable per track."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.tracker import IouTracker, NoiseBank
from shared.geometry import Box


def test_update_keeps_ids_along_moving_faces():
    tracker = IouTracker(iou_threshold=0.3, max_missed=2)
    first = tracker.update([Box(10, 10, 40, 40), Box(100, 10, 40, 40)], 200, 100)
    second = tracker.update([Box(104, 12, 40, 40), Box(14, 11, 40, 40)], 200, 100)
    assert [t.id for t in first] == [0, 1]
    ids = {t.box.x: t.id for t in second}
    assert ids == {14: 0, 104: 1}
    assert all(t.missed == 0 and t.age == 1 for t in second)


def test_missed_face_is_held_grown_then_ended():
    tracker = IouTracker(iou_threshold=0.3, max_missed=2, hold_growth=0.1)
    tracker.update([Box(50, 50, 20, 20)], 200, 200)
    held1 = tracker.update([], 200, 200)
    held2 = tracker.update([], 200, 200)
    assert [(t.id, t.missed) for t in held1] == [(0, 1)]
    assert held1[0].box == Box(48, 48, 24, 24)
    assert held2[0].box == Box(46, 46, 28, 28)  # grows with the misses, around the last box
    assert tracker.update([], 200, 200) == []
    assert tracker.ended == [0]


def test_reappearing_face_within_hold_keeps_its_id():
    tracker = IouTracker(max_missed=3)
    tracker.update([Box(50, 50, 20, 20)], 200, 200)
    tracker.update([], 200, 200)
    back = tracker.update([Box(52, 51, 20, 20)], 200, 200)
    assert [(t.id, t.missed) for t in back] == [(0, 0)]


def test_new_face_gets_a_new_id_and_ids_are_never_reused():
    tracker = IouTracker(max_missed=0)
    tracker.update([Box(0, 0, 10, 10)], 100, 100)
    tracker.update([], 100, 100)
    assert [t.id for t in tracker.update([Box(0, 0, 10, 10)], 100, 100)] == [1]


def test_held_box_at_frame_border_is_clipped():
    tracker = IouTracker(max_missed=1, hold_growth=0.5)
    tracker.update([Box(0, 0, 20, 20)], 30, 30)
    (held,) = tracker.update([], 30, 30)
    assert held.box == Box(0, 0, 30, 30)


@pytest.mark.parametrize(
    "kwargs", [{"iou_threshold": 0.0}, {"max_missed": -1}, {"hold_growth": -0.1}]
)
def test_tracker_with_bad_parameters_raises(kwargs):
    with pytest.raises(ValueError):
        IouTracker(**kwargs)


def test_noise_plane_is_stable_per_track_and_differs_between_tracks_and_secrets():
    bank = NoiseBank(b"secret-a", 64)
    plane = bank.plane(3)
    assert plane.shape == (64, 64) and plane.dtype == np.float32
    assert plane.min() >= 0.0 and plane.max() < 1.0
    assert abs(float(plane.mean()) - 0.5) < 0.05
    np.testing.assert_array_equal(NoiseBank(b"secret-a", 64).plane(3), plane)
    assert not np.array_equal(bank.plane(4), plane)
    assert not np.array_equal(NoiseBank(b"secret-b", 64).plane(3), plane)
    bank.forget([3])
    np.testing.assert_array_equal(bank.plane(3), plane)


def test_noise_bank_refuses_empty_secret():
    with pytest.raises(ValueError, match="secret"):
        NoiseBank(b"", 64)
