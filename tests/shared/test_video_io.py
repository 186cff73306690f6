"""shared.video_io: lossless writers keep every pixel (and the LSB message); bad files raise."""

from __future__ import annotations

import numpy as np
import pytest

from shared import stego
from shared.video_io import LosslessWriter, VideoDecodeError, probe, read_frames
from tests.media import MEDIA_DIR, needs_media


def _frames(n: int = 5, h: int = 48, w: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        stego.embed(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f"frame {i}") for i in range(n)
    ]


@pytest.mark.parametrize(
    ("codec", "suffix"), [("ffv1", ".mkv"), ("libx264rgb", ".mp4"), ("libx264rgb", ".mkv")]
)
def test_lossless_round_trip_is_bit_exact(tmp_path, codec, suffix):
    frames = _frames()
    path = tmp_path / f"clip{suffix}"
    with LosslessWriter(path, 64, 48, 15, codec=codec) as writer:
        for frame in frames:
            writer.write(frame)
    decoded = list(read_frames(path))
    assert [f.index for f in decoded] == list(range(len(frames)))
    for original, frame in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(frame.rgb, original)
        assert stego.extract(frame.rgb) == f"frame {frame.index}"
    info = probe(path)
    assert (info.width, info.height, info.fps) == (64, 48, 15)
    assert info.duration == pytest.approx(len(frames) / 15, abs=1e-3)


def test_writer_refuses_wrong_frames_and_codecs(tmp_path):
    with pytest.raises(ValueError, match="not lossless"):
        LosslessWriter(tmp_path / "x.mp4", 64, 48, 15, codec="libx264")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="even"):
        LosslessWriter(tmp_path / "x.mp4", 63, 48, 15, codec="libx264rgb")
    with (
        LosslessWriter(tmp_path / "x.mkv", 64, 48, 15) as writer,
        pytest.raises(ValueError, match="expected"),
    ):
        writer.write(np.zeros((48, 63, 3), np.uint8))
    with pytest.raises(ValueError, match="closed"):
        writer.write(np.zeros((48, 64, 3), np.uint8))


def test_missing_and_non_video_files_raise(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found"):
        list(read_frames(tmp_path / "none.mp4"))
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoDecodeError):
        list(read_frames(bogus))
    with pytest.raises(VideoDecodeError):
        probe(bogus)


def test_truncated_video_raises_or_ends_early(tmp_path):
    path = tmp_path / "clip.mkv"
    with LosslessWriter(path, 64, 48, 15) as writer:
        for frame in _frames(20):
            writer.write(frame)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    # A cut file either decodes fewer frames or raises VideoDecodeError; never more frames.
    try:
        frames = list(read_frames(cut))
    except VideoDecodeError:
        return
    assert 0 < len(frames) < 20


@needs_media
def test_reads_real_clip():
    info = probe(MEDIA_DIR / "videos" / "hamilton_640x360.mp4")
    assert (info.width, info.height) == (640, 360)
    # The stream's duration (275 frames at 29.97 fps), not the container's (audio is longer).
    assert info.duration == pytest.approx(275 / 29.97, abs=0.01)
    first = next(iter(read_frames(MEDIA_DIR / "videos" / "hamilton_640x360.mp4")))
    assert first.rgb.shape == (360, 640, 3) and first.rgb.dtype == np.uint8


def test_writer_with_explicit_pts_keeps_gaps_and_refuses_going_back(tmp_path):
    frames = _frames(3)
    path = tmp_path / "gaps.mkv"
    with LosslessWriter(path, 64, 48, 10) as writer:
        writer.write(frames[0], pts=0)
        writer.write(frames[1], pts=3)
        with pytest.raises(ValueError, match="does not follow"):
            writer.write(frames[2], pts=3)
        writer.write(frames[2])  # default: the next period after the last pts
    decoded = list(read_frames(path))
    assert [round(f.time, 2) for f in decoded] == [0.0, 0.3, 0.4]
    for original, frame in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(frame.rgb, original)


def test_writer_codec_options_apply_and_cannot_make_x264rgb_lossy(tmp_path):
    with pytest.raises(ValueError, match="qp 0"):
        LosslessWriter(
            tmp_path / "x.mp4", 64, 48, 10, codec="libx264rgb", codec_options={"qp": "20"}
        )
    frames = _frames(4)
    path = tmp_path / "gop.mp4"
    with LosslessWriter(
        path, 64, 48, 10, codec="libx264rgb", codec_options={"g": "2", "tune": "zerolatency"}
    ) as writer:
        for frame in frames:
            writer.write(frame)
    for original, frame in zip(frames, read_frames(path), strict=True):
        np.testing.assert_array_equal(frame.rgb, original)
