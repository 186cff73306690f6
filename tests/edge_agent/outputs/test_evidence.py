"""edge_agent.outputs.evidence: lossless segments, renamed when complete, rotated."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edge_agent.outputs.base import StreamFormat
from edge_agent.outputs.evidence import EvidenceRecorder
from edge_agent.pipeline import SealedFrame
from shared import stego
from shared.video_io import read_frames
from tests.file_modes import modes_under, umask

FMT = StreamFormat(64, 48, Fraction(10))


def _frames(indices):
    rng = np.random.default_rng(0)
    for i in indices:
        rgb = stego.embed(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), f"frame {i}")
        yield SealedFrame(i, rgb, (), (), f"frame {i}")


def test_single_file_is_bit_exact_and_renamed_on_close(tmp_path):
    recorder = EvidenceRecorder(tmp_path / "sub" / "clip.mkv")
    recorder.open(FMT)
    frames = list(_frames(range(5)))
    for frame in frames:
        recorder.write(frame)
    assert (tmp_path / "sub" / "clip.mkv.partial").exists()
    assert not (tmp_path / "sub" / "clip.mkv").exists()
    recorder.close()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["clip.mkv"]
    decoded = list(read_frames(tmp_path / "sub" / "clip.mkv"))
    for frame, got in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(got.rgb, frame.rgb)


@pytest.mark.parametrize("codec", ["ffv1", "libx264rgb"])
def test_segments_split_by_duration_and_keep_time_gaps(tmp_path, codec):
    recorder = EvidenceRecorder(tmp_path, camera_id="cam", codec=codec, segment_s=0.5)
    recorder.open(FMT)
    indices = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # 2 was dropped upstream
    frames = list(_frames(indices))
    for frame in frames:
        recorder.write(frame)
    recorder.close()
    segments = sorted(tmp_path.glob("cam_*.mkv"))
    assert len(segments) == 3 and recorder.finished == segments
    decoded = [f for segment in segments for f in read_frames(segment)]
    assert [stego.extract(f.rgb) for f in decoded] == [f"frame {i}" for i in indices]
    first = list(read_frames(segments[0]))
    assert [round(f.time, 2) for f in first] == [0.0, 0.1, 0.3, 0.4]  # the gap is kept


def test_rotation_keeps_the_newest_segments(tmp_path):
    recorder = EvidenceRecorder(tmp_path, camera_id="cam", segment_s=0.1, max_segments=2)
    recorder.open(FMT)
    for frame in _frames(range(5)):
        recorder.write(frame)
    recorder.close()
    remaining = sorted(tmp_path.glob("cam_*.mkv"))
    assert [p.name[-10:] for p in remaining] == ["000003.mkv", "000004.mkv"]
    assert [stego.extract(next(iter(read_frames(p))).rgb) for p in remaining] == [
        "frame 3",
        "frame 4",
    ]


def test_segments_are_0640_in_a_0750_directory_under_umask_022(tmp_path):
    """Never world-readable (the unit's UMask=0027 is not the only guard); the group may read
    them (the authority's reconstruct on the same host)."""
    with umask(0o022):
        recorder = EvidenceRecorder(tmp_path / "evidence", camera_id="cam", segment_s=0.2)
        recorder.open(FMT)
        for frame in _frames(range(5)):
            recorder.write(frame)
        partial = modes_under(tmp_path / "evidence")
        recorder.close()
    assert [m for n, m in partial.items() if n.endswith(".partial")] == [0o640]
    modes = modes_under(tmp_path / "evidence")
    assert len(recorder.finished) == 3 and modes.pop(".") == 0o750
    assert set(modes.values()) == {0o640} and len(modes) == 3


def _record(recorder, indices):
    recorder.open(FMT)
    for frame in _frames(indices):
        recorder.write(frame)
    recorder.close()


def _first_messages(paths):
    return [stego.extract(next(iter(read_frames(p))).rgb) for p in paths]


def test_single_file_reopened_or_restarted_never_overwrites_the_recording(tmp_path):
    path = tmp_path / "clip.mkv"
    recorder = EvidenceRecorder(path, segment_s=None)
    _record(recorder, range(0, 3))
    _record(recorder, range(3, 6))  # the sink reopened after an error
    _record(EvidenceRecorder(path, segment_s=None), range(6, 9))  # a restart
    files = sorted(tmp_path.glob("clip*.mkv"))
    assert len(files) == 3 and path in files  # with clip_<UTC>_<seq>.mkv beside it
    assert sorted(_first_messages(files)) == ["frame 0", "frame 3", "frame 6"]
    assert _first_messages([path]) == ["frame 0"]
    assert all(len(list(read_frames(f))) == 3 for f in files)


def test_a_restart_within_the_same_second_takes_the_next_segment_name(tmp_path):
    _record(EvidenceRecorder(tmp_path, camera_id="cam", segment_s=60), range(0, 2))
    _record(EvidenceRecorder(tmp_path, camera_id="cam", segment_s=60), range(0, 2))
    segments = sorted(tmp_path.glob("cam_*.mkv"))
    assert len(segments) == 2  # both runs kept, whatever the clock says


def test_rotation_deletes_only_this_cameras_segments(tmp_path):
    _record(EvidenceRecorder(tmp_path, camera_id="cam10", segment_s=0.1), range(3))
    _record(EvidenceRecorder(tmp_path, camera_id="cam1_b", segment_s=0.1), range(3))
    _record(EvidenceRecorder(tmp_path, camera_id="cam1", segment_s=0.1, max_segments=1), range(3))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len([n for n in names if n.startswith("cam10_")]) == 3
    assert len([n for n in names if n.startswith("cam1_b_")]) == 3
    assert len([n for n in names if n.startswith("cam1_2")]) == 1


def test_open_recovers_readable_partials_and_quarantines_the_rest_never_deleting(tmp_path):
    first = EvidenceRecorder(tmp_path, camera_id="cam", segment_s=60)
    _record(first, range(4))
    (done,) = first.finished
    whole = tmp_path / "cam_20240101T000000Z_000000.mkv.partial"
    whole.write_bytes(done.read_bytes())  # a segment a crash left unrenamed
    cut = tmp_path / "cam_20240101T000001Z_000000.mkv.partial"
    cut.write_bytes(done.read_bytes()[: done.stat().st_size * 2 // 3])  # killed mid-write
    garbage = tmp_path / "cam_20240101T000002Z_000000.mkv.partial"
    garbage.write_bytes(b"\x00not a video" * 100)
    other = tmp_path / "cam10_20240101T000000Z_000000.mkv.partial"  # another camera's, live
    other.write_bytes(done.read_bytes())
    recorder = EvidenceRecorder(tmp_path, camera_id="cam", segment_s=60)
    recorder.open(FMT)
    recovered = [whole.with_name(whole.name[:-8]), cut.with_name(cut.name[:-8])]
    assert recorder.recovered == recovered
    assert _first_messages(recovered) == ["frame 0", "frame 0"]
    quarantined = garbage.with_name(garbage.name + ".quarantined")
    assert recorder.quarantined == [quarantined]
    assert quarantined.read_bytes() == b"\x00not a video" * 100
    assert other.exists() and not whole.exists() and not cut.exists()
    recorder.close()


def test_single_file_partial_is_recovered_under_its_own_name(tmp_path):
    path = tmp_path / "clip.mkv"
    _record(EvidenceRecorder(path, segment_s=None), range(3))
    partial = tmp_path / "clip.mkv.partial"
    path.rename(partial)  # the run before crashed
    recorder = EvidenceRecorder(path, segment_s=None)
    _record(recorder, range(3, 5))
    assert recorder.recovered == [path] and _first_messages([path]) == ["frame 0"]
    (new,) = recorder.finished
    assert new != path and _first_messages([new]) == ["frame 3"]
