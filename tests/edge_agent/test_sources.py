"""edge_agent.sources: what a URL is, a file paced at its rate, whether a live source answers."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from edge_agent.sources import SourceSpec, open_frames, parse_source, source_answers
from tests.edge_agent.conftest import decoder_threads

linux_tasks = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="counts threads in /proc/self/task (Linux)"
)


def test_source_answers_checks_the_rtsp_port_or_the_device_node(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"rtsp://127.0.0.1:{server.getsockname()[1]}/x"
        answers = source_answers(SourceSpec("rtsp", url))
        assert answers()
    assert not answers()
    device = tmp_path / "video9"
    answers = source_answers(SourceSpec("v4l2", str(device)))
    assert not answers()
    device.touch()
    assert answers()
    assert source_answers(SourceSpec("file", str(device))) is None


def test_parse_source_classifies_urls(sample_clip):
    assert parse_source("rtsp://cam:554/s").kind == "rtsp"
    assert parse_source("/dev/video0") == SourceSpec("v4l2", "/dev/video0")
    assert parse_source("v4l2:///dev/video2") == SourceSpec("v4l2", "/dev/video2")
    assert parse_source(str(sample_clip)).kind == "file"


def test_open_frames_realtime_paces_a_file_at_its_frame_rate(sample_clip):
    spec = parse_source(str(sample_clip))
    start = time.monotonic()
    frames = [f for f, _ in zip(open_frames(spec, realtime=True), range(16), strict=False)]
    elapsed = time.monotonic() - start
    assert len(frames) == 16
    assert elapsed >= 15 / 15 * 0.9  # 16 frames at 15 fps span 1 s


@linux_tasks
def test_open_frames_decode_threads_sets_the_decoders_thread_count(sample_clip):
    spec = parse_source(str(sample_clip))
    before = decoder_threads()
    for threads, started in ((1, 0), (3, 3)):
        frames = open_frames(spec, decode_threads=threads)
        assert next(frames).shape == (360, 640, 3)
        try:
            assert decoder_threads() - before == started, threads
        finally:
            frames.close()
    with pytest.raises(ValueError, match="decode_threads"):
        next(open_frames(spec, decode_threads=-1))
