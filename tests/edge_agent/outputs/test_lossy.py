"""edge_agent.outputs.lossy: plays as ordinary H.264; each frame's message comes back from SEI."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from edge_agent.outputs.base import SinkError, StreamFormat
from edge_agent.outputs.lossy import LossyPublisher
from edge_agent.pipeline import SealedFrame
from shared.sei import messages_from_frame
from shared.video_io import probe, read_frames


def _frames(n):
    rng = np.random.default_rng(0)
    for i in range(n):
        rgb = np.clip(rng.normal(128, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
        yield SealedFrame(i, rgb, (), (), f"UU1|cam|model|{i}|0,|{i:032x}")


@pytest.mark.parametrize("suffix", [".mp4", ".ts", ".mkv"])
def test_lossy_file_carries_one_message_per_frame(tmp_path, suffix):
    target = tmp_path / f"public{suffix}"
    sink = LossyPublisher(str(target), crf=28)
    sink.open(StreamFormat(64, 48, Fraction(15)))
    frames = list(_frames(20))
    for frame in frames:
        sink.write(frame)
    sink.close()
    assert probe(target).codec == "h264"
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = list(container.decode(stream))
    assert [messages_from_frame(f) for f in decoded] == [[f.message] for f in frames]
    pixels = [f.rgb for f in read_frames(target)]
    error = np.mean(
        [np.abs(a.astype(int) - f.rgb).mean() for a, f in zip(pixels, frames, strict=True)]
    )
    assert 0 < error < 40  # lossy, but the same pictures


def test_lossy_with_unknown_suffix_or_odd_size_refuses(tmp_path):
    with pytest.raises(SinkError, match="rtsp:// or a file"):
        LossyPublisher(str(tmp_path / "x.avi")).open(StreamFormat(64, 48, Fraction(15)))
    with pytest.raises(SinkError, match="even sizes"):
        LossyPublisher(str(tmp_path / "x.mp4")).open(StreamFormat(63, 48, Fraction(15)))
