"""edge_agent.outputs.hls: fMP4 playlist, RGB-lossless with the sRGB colour tags, exact pixels."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from edge_agent.outputs.base import StreamFormat
from edge_agent.outputs.hls import HlsWriter
from edge_agent.pipeline import SealedFrame
from shared import stego
from shared.video_io import read_frames


def test_hls_playlist_decodes_bit_exact_with_colour_tags(tmp_path):
    writer = HlsWriter(tmp_path / "hls", segment_s=1.0, playlist_size=10)
    writer.open(StreamFormat(64, 48, Fraction(10)))
    rng = np.random.default_rng(0)
    frames = [
        stego.embed(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), f"f{i}") for i in range(25)
    ]
    for i, rgb in enumerate(frames):
        writer.write(SealedFrame(i, rgb, (), (), ""))
    writer.close()
    playlist = (tmp_path / "hls" / "index.m3u8").read_text()
    assert '#EXT-X-MAP:URI="init.mp4"' in playlist and playlist.count(".m4s") == 3
    decoded = list(read_frames(tmp_path / "hls" / "index.m3u8"))
    assert len(decoded) == 25
    for original, got in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(got.rgb, original)
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed: colour tags not checked")
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_streams",
            "-of",
            "json",
            str(tmp_path / "hls" / "init.mp4"),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["color_space"], stream["color_primaries"]) == ("gbr", "bt709")
    assert (stream["color_transfer"], stream["color_range"]) == ("iec61966-2-1", "pc")
