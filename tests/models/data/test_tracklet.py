"""models.data.tracklet.Tracklet: validation and normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data.crops import FullFrame, HeadTop
from models.data.errors import EmptySequenceError
from models.data.tracklet import Tracklet
from shared.geometry import Box


def test_tracklet_normalises_crop_and_freezes_labels():
    t = Tracklet("p1", "s1", [Path("a.jpg"), "b.jpg"], labels={"gender": 1}, crop="head_top")
    assert isinstance(t.crop, HeadTop) and t.frames == (Path("a.jpg"), Path("b.jpg"))
    assert len(t) == 2 and t.labels["gender"] == 1
    with pytest.raises(TypeError):
        t.labels["gender"] = 0  # type: ignore[index]


def test_tracklet_without_frames_raises_empty_sequence():
    with pytest.raises(EmptySequenceError, match="no frame"):
        Tracklet("p1", "s1", ())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": {"id": 3}}, "'id'"),
        ({"labels": {"gender": 2}}, "outside"),
        ({"labels": {"gender": -1}}, ">= 0"),
        ({"boxes": (Box(0, 0, 1, 1),) * 2}, "2 boxes for 1 frames"),
        ({"frame_numbers": (-1,)}, ">= 0"),
        ({"crop": "middle"}, "unknown crop"),
    ],
)
def test_tracklet_rejects_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Tracklet("p", "s", (Path("a.jpg"),), **kwargs)


def test_tracklet_rejects_empty_names():
    with pytest.raises(ValueError):
        Tracklet("", "s", (Path("a.jpg"),))
    assert isinstance(Tracklet("p", "s", (Path("a.jpg"),)).crop, FullFrame)
