"""shared.tracking: tracks follow faces, hold through misses, end, say which box they matched."""

from __future__ import annotations

import pytest

from shared.geometry import Box
from shared.tracking import IouTracker


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


def test_update_reports_which_box_each_track_matched():
    tracker = IouTracker(max_missed=2)
    tracker.update([Box(10, 10, 40, 40), Box(100, 10, 40, 40)], 200, 100)
    tracks = tracker.update([Box(300, 10, 20, 20), Box(104, 12, 40, 40)], 400, 100)
    by_id = {t.id: t for t in tracks}
    assert by_id[1].detection == 1 and by_id[1].missed == 0
    assert by_id[0].detection is None and by_id[0].missed == 1  # held
    assert by_id[2].detection == 0 and by_id[2].age == 0  # new


def test_tracks_follow_moving_boxes_and_far_boxes_open_new_tracks():
    tracker = IouTracker(iou_threshold=0.3, max_missed=0)
    first = tracker.update([Box(0, 0, 20, 20), Box(100, 100, 20, 20)], 400, 400)
    second = tracker.update([Box(102, 101, 20, 20), Box(2, 1, 20, 20)], 400, 400)
    assert {t.detection: t.id for t in first} == {0: 0, 1: 1}
    assert {t.detection: t.id for t in second} == {0: 1, 1: 0}
    third = tracker.update([Box(300, 300, 10, 10)], 400, 400)
    assert [t.id for t in third] == [2] and sorted(tracker.ended) == [0, 1]


def test_held_box_without_growth_stays_at_the_last_detection():
    tracker = IouTracker(max_missed=2, hold_growth=0.0)
    tracker.update([Box(50, 50, 20, 20)], 200, 200)
    assert [t.box for t in tracker.update([], 200, 200)] == [Box(50, 50, 20, 20)]


def test_held_box_follows_the_track_velocity_clipped_to_the_frame():
    tracker = IouTracker(max_missed=3, hold_growth=0.0, hold_velocity=True)
    tracker.update([Box(100, 50, 20, 20)], 200, 200)
    tracker.update([Box(105, 51, 20, 20)], 200, 200)  # 5 px right, 1 down per frame
    assert [t.box for t in tracker.update([], 200, 200)] == [Box(110, 52, 20, 20)]
    assert [t.box for t in tracker.update([], 200, 200)] == [Box(115, 53, 20, 20)]
    (back,) = tracker.update([Box(120, 54, 20, 20)], 200, 200)
    assert (back.id, back.missed) == (0, 0)
    far = IouTracker(max_missed=5, hold_growth=0.0, hold_velocity=True)
    far.update([Box(160, 0, 20, 20)], 200, 200)
    far.update([Box(170, 0, 20, 20)], 200, 200)
    assert [t.box for t in far.update([], 200, 200)] == [Box(180, 0, 20, 20)]  # clipped


def test_fast_face_matches_its_predicted_box_after_a_miss():
    tracker = IouTracker(max_missed=2, hold_growth=0.0, hold_velocity=True)
    tracker.update([Box(0, 0, 20, 20)], 300, 100)
    tracker.update([Box(8, 0, 20, 20)], 300, 100)
    tracker.update([], 300, 100)
    (track,) = tracker.update([Box(24, 0, 20, 20)], 300, 100)  # IoU 0.11 with the last box
    assert (track.id, track.missed) == (0, 0)
