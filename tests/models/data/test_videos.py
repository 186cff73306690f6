"""models.data.videos: face tracklets from raw footage through the edge's detector and tracker,
on a generated clip (the edge's drawn sample people, real YuNet), a scripted detector (exact
track logic) and a real clip; packed crops are exactly the stored head ROIs."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge_agent.config import DetectorSettings
from edge_agent.samples.make_sample import face_boxes, render
from models.data.errors import (
    DatasetLayoutError,
    EmptySequenceError,
    ImageReadError,
    LabelsFileError,
)
from models.data.pack import PackedFaces, main, pack_tracklets
from models.data.videos import EDGE_DETECTOR_OPTIONS, list_videos, load_videos, read_tracks_csv
from shared.detectors import FaceDetector, create_detector
from shared.geometry import HEAD_MARGIN, Box, crop, expand_to_head, iou, resize_to_model
from shared.video_io import LosslessWriter, read_frames
from tests.media import MEDIA_DIR, needs_media

SAMPLE_FRAMES = 16


def _write(path, frames, fps=15):
    height, width = frames[0].shape[:2]
    with LosslessWriter(path, width, height, fps, codec="ffv1") as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def sample_clip(tmp_path_factory):
    """16 frames of the edge's generated street clip (4 drawn people), lossless."""
    folder = tmp_path_factory.mktemp("videos")
    return _write(folder / "street.mkv", [render(i) for i in range(SAMPLE_FRAMES)])


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet", EDGE_DETECTOR_OPTIONS)


def _decoded(path):
    return {f.index: f.rgb for f in read_frames(path)}


def test_defaults_are_the_edges():
    edge = DetectorSettings()
    assert edge.detector_options() == EDGE_DETECTOR_OPTIONS
    assert edge.head_margin == HEAD_MARGIN


def test_load_videos_on_generated_clip_gives_one_tracklet_per_drawn_person(sample_clip, yunet):
    tracklets = load_videos(sample_clip, detector=yunet, min_frames=8)
    assert len(tracklets) == 4
    assert sum(len(t) == SAMPLE_FRAMES for t in tracklets) >= 3
    assert [t.subject for t in tracklets] == [t.sequence for t in tracklets]
    assert len({t.subject for t in tracklets}) == 4
    assert all(t.subject.startswith("street-t") and t.source == "videos" for t in tracklets)
    for t in tracklets:
        # YuNet misses the second person now and then; the others are found in every frame
        assert len(t) >= 10 and list(t.frame_numbers) == sorted(set(t.frame_numbers))
        assert t.crop.describe() == "full" and all(f == sample_clip for f in t.frames)
        for number, box in zip(t.frame_numbers, t.boxes, strict=True):
            drawn = [Box(*b) for b in face_boxes(number)]
            # the head ROI holds one drawn face entirely, and it is the one it overlaps most
            best = max(drawn, key=lambda d: iou(d, box))
            assert box.x <= best.x and box.y <= best.y
            assert box.right >= best.right and box.bottom >= best.bottom
            assert box.w == box.h or not box.fits_in(639, 359)  # square unless clipped


def test_packed_crops_are_exactly_the_stored_head_rois(sample_clip, yunet, tmp_path):
    tracklets = load_videos(sample_clip, detector=yunet, min_frames=8)
    pack = PackedFaces.open(pack_tracklets(tracklets, tmp_path / "faces.npz", size=32))
    assert len(pack) == sum(len(t) for t in tracklets)
    frames = _decoded(sample_clip)
    by_sequence = {t.sequence: t for t in tracklets}
    for q, name in enumerate(pack.sequence_names):
        t = by_sequence[name]
        rows = np.arange(pack.sequence_start[q], pack.sequence_start[q + 1])
        for row, number, box in zip(rows, t.frame_numbers, t.boxes, strict=True):
            expected = resize_to_model(crop(frames[number], box), 32)
            np.testing.assert_array_equal(pack.image(int(row)), expected)


class _Scripted(FaceDetector):
    """Face boxes per frame index, in call order (one call per detected frame)."""

    key = "scripted"

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.calls = 0

    def _detect(self, frame):
        boxes = self.script[self.calls]
        self.calls += 1
        return [(float(x), float(y), float(x + w), float(y + h), 0.9) for x, y, w, h in boxes]


@pytest.fixture(scope="module")
def flat_clip(tmp_path_factory):
    frames = [np.full((120, 160, 3), 10 * i, np.uint8) for i in range(10)]
    return _write(tmp_path_factory.mktemp("flat") / "flat.mkv", frames)


def test_tracks_shorter_than_min_frames_are_dropped_and_counted(flat_clip, caplog):
    # A: frames 0-9 (moving 2 px a frame); B: frames 0-2 only; C: one frame at the far side.
    script = [
        [(20 + 2 * i, 30, 30, 30)] + ([(100, 40, 20, 20)] if i < 3 else []) for i in range(10)
    ]
    script[5].append((130, 80, 20, 20))
    caplog.set_level(logging.INFO, logger="models.data.videos")
    tracklets = load_videos(flat_clip, detector=_Scripted(script), min_frames=4)
    assert [(t.subject, len(t)) for t in tracklets] == [("flat-t0", 10)]
    (t,) = tracklets
    assert t.frame_numbers == tuple(range(10))
    assert t.boxes[3] == expand_to_head(Box(26, 30, 30, 30), 160, 120)
    assert "10 frames decoded, 10 detected, 14 faces, 3 tracks, 1 kept" in caplog.text
    assert "left out 2 tracks shorter than 4 frames" in caplog.text


def test_frame_step_and_max_frames_limit_what_is_detected(flat_clip):
    detector = _Scripted([[(40, 40, 30, 30)]] * 10)
    (t,) = load_videos(flat_clip, detector=detector, frame_step=3, max_frames=8, min_frames=1)
    assert t.frame_numbers == (0, 3, 6) and detector.calls == 3


def test_tracks_csv_maps_tracks_to_subjects_with_labels(flat_clip, tmp_path):
    script = [[(10, 10, 30, 30), (100, 60, 30, 30)] for _ in range(10)]
    csv = tmp_path / "tracks.csv"
    csv.write_text("video,track,subject,gender\nflat.mkv,0,alice,female\nflat.mkv,1,alice,\n")
    tracklets = load_videos(flat_clip, csv, detector=_Scripted(script))
    assert [(t.subject, t.sequence, dict(t.labels)) for t in tracklets] == [
        ("alice", "flat-t0", {"gender": 1}),
        ("alice", "flat-t1", {}),
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("video,subject\n", "header must start"),
        ("video,track,subject,colour\n", "unknown label column"),
        ("video,track,subject\nflat.mkv,x,alice\n", r"line 2, field 'track'"),
        ("video,track,subject\nflat.mkv,0,\n", r"line 2, field 'subject'"),
        ("video,track,subject\nflat.mkv,0,a\nflat.mkv,0,b\n", "duplicate row"),
        ("video,track,subject\nother.mkv,0,alice\n", r"line 2, field 'video'.*other\.mkv"),
        ("video,track,subject\nflat.mkv,7,alice\n", r"line 2, field 'track'.*no track 7"),
    ],
)
def test_bad_tracks_csv_raises_naming_file_line_and_field(flat_clip, tmp_path, text, match):
    csv = tmp_path / "tracks.csv"
    csv.write_text(text)
    detector = _Scripted([[(10, 10, 30, 30)]] * 10)
    with pytest.raises(LabelsFileError, match=match) as caught:
        load_videos(flat_clip, csv, detector=detector)
    assert caught.value.path == csv


def test_read_tracks_csv_missing_file_raises(tmp_path):
    with pytest.raises(LabelsFileError, match="not found"):
        read_tracks_csv(tmp_path / "nope.csv")


def test_list_videos_bad_layouts_raise(tmp_path, flat_clip):
    with pytest.raises(DatasetLayoutError, match="not found"):
        list_videos(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="not a video file"):
        list_videos(tmp_path / "notes.txt")
    with pytest.raises(DatasetLayoutError, match="unexpected entry"):
        list_videos(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match="no video file"):
        list_videos(empty)
    assert list_videos(flat_clip.parent) == [flat_clip]


def test_corrupt_video_raises_image_read_error_naming_it(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(ImageReadError) as caught:
        load_videos(bad, detector=_Scripted([]))
    assert caught.value.path == bad


def test_failing_detector_raises_image_read_error_naming_the_frame(flat_clip):
    class _Broken(FaceDetector):
        key = "broken"

        def _detect(self, frame):
            raise RuntimeError("boom")

    with pytest.raises(ImageReadError, match=r"flat\.mkv: frame 0: broken failed: boom"):
        load_videos(flat_clip, detector=_Broken())


def test_no_track_long_enough_raises_empty_sequence_error(flat_clip):
    with pytest.raises(EmptySequenceError, match="no face track of at least 4 frames"):
        load_videos(flat_clip, detector=_Scripted([[]] * 10))


def test_pack_cli_with_videos_writes_a_pack(sample_clip, tmp_path, capsys):
    out = tmp_path / "cli.npz"
    code = main(
        [
            "--out", str(out), "--size", "16", "--videos", str(sample_clip.parent),
            "--videos-min-frames", "3", "--videos-max-frames", "12", "--videos-step", "2",
        ]
    )  # fmt: skip
    assert code == 0
    pack = PackedFaces.open(out)
    # frames 0, 2, ..., 10 detected: at most 6 per track
    assert pack.n_sequences == 4 and 4 * 3 <= len(pack) <= 4 * 6
    assert [(s["key"], s["crops"]) for s in pack.meta["sources"]] == [("videos", ["full"])]
    assert "videos/street-t0" in pack.subject_names
    assert f"({len(pack)} frames, codec raw)" in capsys.readouterr().out


@needs_media
def test_load_videos_on_real_clip_tracks_yunet_faces(yunet, tmp_path):
    clip = MEDIA_DIR / "videos" / "hamilton_640x360.mp4"
    tracklets = load_videos(clip, detector=yunet, max_frames=30, min_frames=10)
    assert len(tracklets) >= 2
    frames = {}
    for f in read_frames(clip):
        if f.index >= 30:
            break
        frames[f.index] = f.rgb
    for t in tracklets:
        assert 10 <= len(t) <= 30 and max(t.frame_numbers) < 30
        number, box = t.frame_numbers[0], t.boxes[0]
        heads = [expand_to_head(d.box, 640, 360) for d in yunet.detect(frames[number])]
        assert box in heads  # the stored box is the edge's head ROI of a detection
    pack = PackedFaces.open(pack_tracklets(tracklets, tmp_path / "real.npz", size=64))
    assert len(pack) == sum(len(t) for t in tracklets)
    t = next(x for x in tracklets if x.sequence == pack.sequence_names[0])
    np.testing.assert_array_equal(
        pack.image(0), resize_to_model(crop(frames[t.frame_numbers[0]], t.boxes[0]), 64)
    )


def test_uunet_train_pack_with_videos_and_a_bad_path(sample_clip, tmp_path, capsys):
    from models.cli import main as uunet_train

    out = tmp_path / "train.npz"
    args = ["pack", "--out", str(out), "--size", "16", "--videos", str(sample_clip)]
    assert uunet_train([*args, "--videos-max-frames", "8"]) == 0
    assert PackedFaces.open(out).n_sequences == 4
    missing = ["pack", "--out", str(out), "--videos", str(tmp_path / "nope.mp4")]
    assert uunet_train(missing) == 2
    assert "video file or folder not found" in capsys.readouterr().err
