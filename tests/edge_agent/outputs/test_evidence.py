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
