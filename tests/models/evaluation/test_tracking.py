import pytest

from models.evaluation.tracking import IouTracker
from shared.geometry import Box


def test_tracker_follows_moving_box_and_opens_new_tracks():
    tracker = IouTracker(min_iou=0.3)
    first = tracker.update(0, [Box(0, 0, 20, 20), Box(100, 100, 20, 20)])
    second = tracker.update(1, [Box(102, 101, 20, 20), Box(2, 1, 20, 20)])
    assert second == [first[1], first[0]]
    third = tracker.update(2, [Box(300, 300, 10, 10)])
    assert third[0] not in first


def test_tracker_closes_tracks_after_max_missed():
    tracker = IouTracker(max_missed=1)
    (first,) = tracker.update(0, [Box(0, 0, 20, 20)])
    (later,) = tracker.update(5, [Box(0, 0, 20, 20)])
    assert later != first


def test_tracker_bad_iou_raises():
    with pytest.raises(ValueError, match="min_iou"):
        IouTracker(min_iou=0)
