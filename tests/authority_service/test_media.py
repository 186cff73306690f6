"""authority_service.media: videos vs corrupt videos vs non-videos; PNG frames with LSBs kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from authority_service.errors import (
    CorruptVideoError,
    NotAVideoError,
    UnsupportedFrameSizeError,
    UnsupportedImageError,
)
from authority_service.media import (
    MIN_FRAME_SIDE,
    decode_png,
    encode_png,
    inspect_clip,
)
from shared import stego
from shared.video_io import LosslessWriter, expected_frames
from tests.authority_service.edge_role import synthetic_frames


def _clip(path, n=6, codec="ffv1"):
    with LosslessWriter(path, 64, 48, 10, codec=codec) as writer:
        for frame in synthetic_frames(n, 64, 48):
            writer.write(frame)
    return path


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "ffv1"), (".mp4", "libx264rgb")])
def test_inspect_clip_reads_size_and_declared_frames(tmp_path, suffix, codec):
    info = inspect_clip(_clip(tmp_path / f"c{suffix}", codec=codec))
    assert (info.width, info.height) == (64, 48)
    assert expected_frames(info) == 6


def test_inspect_clip_truncated_mp4_is_corrupt_not_not_a_video(tmp_path):
    data = _clip(tmp_path / "c.mp4", codec="libx264rgb").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: now missing
    with pytest.raises(CorruptVideoError, match="truncated or damaged"):
        inspect_clip(cut)


@pytest.mark.parametrize(
    "content", [b"%PDF-1.7\n" + b"x" * 2000, b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100]
)
def test_inspect_clip_other_content_is_not_a_video(tmp_path, content):
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(NotAVideoError):
        inspect_clip(path)


def test_png_round_trip_keeps_every_bit_and_drops_alpha(tmp_path):
    frame = stego.embed(synthetic_frames(1, 64, 48)[0], "3,1,2,3,4,5,6,7,8,9,10,11,12,")
    assert np.array_equal(decode_png(encode_png(frame)), frame)
    rgba = np.dstack([cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), np.full((48, 64), 7, np.uint8)])
    ok, data = cv2.imencode(".png", rgba)
    assert ok and np.array_equal(decode_png(data.tobytes()), frame)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda f: cv2.imencode(".jpg", f)[1].tobytes(), "must be a PNG"),
        (lambda f: cv2.imencode(".png", f[..., 0])[1].tobytes(), "colour type 0"),
        (lambda f: cv2.imencode(".png", f.astype(np.uint16) * 257)[1].tobytes(), "bit depth 16"),
        (lambda f: cv2.imencode(".png", f)[1].tobytes()[:60], "cannot be decoded"),
        (lambda f: b"\x89PNG\r\n\x1a\n", "no IHDR"),
    ],
    ids=["jpeg", "grey", "16-bit", "truncated", "header-only"],
)
def test_decode_png_refuses_what_cannot_carry_the_message(make, match):
    with pytest.raises(UnsupportedImageError, match=match):
        decode_png(make(synthetic_frames(1, 64, 48)[0]))


def test_decode_png_refuses_a_huge_declared_size_before_decoding():
    data = bytearray(cv2.imencode(".png", synthetic_frames(1, 64, 48)[0])[1].tobytes())
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    with pytest.raises(UnsupportedImageError, match="100000x100000"):
        decode_png(bytes(data))


@pytest.mark.parametrize(("width", "height"), [(MIN_FRAME_SIDE - 1, 40), (40, 2)])
def test_inspect_clip_and_decode_png_refuse_a_side_under_the_minimum(tmp_path, width, height):
    path = tmp_path / "small.mkv"
    frames = synthetic_frames(2, 40, 40)
    with LosslessWriter(path, width, height, 10) as writer:
        for frame in frames:
            writer.write(frame[:height, :width].copy())
    with pytest.raises(UnsupportedFrameSizeError, match=f"{width}x{height}") as info:
        inspect_clip(path)
    assert info.value.extra["min_side"] == MIN_FRAME_SIDE
    with pytest.raises(UnsupportedFrameSizeError):
        decode_png(encode_png(frames[0][:height, :width].copy()))
    inspect_clip(_clip(tmp_path / "ok.mkv"))  # 64x48 is fine
