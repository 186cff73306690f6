"""models.data.summary: counts from tracklets and from packed arrays agree."""

from __future__ import annotations

from pathlib import Path

from models.data.pack import PackedFaces, pack_tracklets
from models.data.summary import summarise
from models.data.tracklet import Tracklet

from .helpers import noise_image, write_image


def test_summarise_counts_subjects_sequences_frames_and_labels():
    f = Path("x.jpg")
    tracklets = [
        Tracklet("a", "1", (f, f, f), labels={"gender": 0}, source="mars"),
        Tracklet("a", "2", (f,), labels={"gender": 0, "hairstyle": 3}, source="mars"),
        Tracklet("b", "1", (f,), labels={}, source="lfw"),
    ]
    s = summarise(tracklets, ["id", "gender", "hairstyle"])
    assert (s["subjects"], s["sequences"], s["frames"]) == (2, 3, 5)
    assert s["sources"]["mars"]["subjects"] == 1 and s["sources"]["lfw"]["frames"] == 1
    assert "licence" in s["sources"]["lfw"]
    assert s["sequences_per_subject"] == {
        "min": 1,
        "median": 1.5,
        "max": 2,
        "subjects_with_2_or_more": 1,
    }
    assert s["frames_per_sequence"]["sequences_with_2_or_more"] == 1
    assert "id" not in s["labels"]
    assert s["labels"]["gender"]["classes"] == {"male": {"sequences": 2, "frames": 4}}
    assert s["labels"]["gender"]["unknown_sequences"] == 1
    assert s["labels"]["hairstyle"]["classes"] == {"long": {"sequences": 1, "frames": 1}}


def test_pack_summary_matches_summarise(tmp_path):
    frames = [write_image(tmp_path / f"{i}.png", noise_image(8, 8, i)) for i in range(4)]
    tracklets = [
        Tracklet("a", "1", tuple(frames[:2]), labels={"gender": 1}),
        Tracklet("a", "2", (frames[2],), labels={"ethnicity": 2}),
        Tracklet("b", "1", (frames[3],), labels={"gender": 0}),
    ]
    names = ["id", "gender", "ethnicity"]
    pack = PackedFaces.open(
        pack_tracklets(tracklets, tmp_path / "p.npz", size=8, label_names=names)
    )
    expected = summarise(tracklets, names)
    assert pack.summary == expected
