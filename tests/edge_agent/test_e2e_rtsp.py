"""End to end: the agent publishes to a real RTSP server on 127.0.0.1 (FFmpeg in listen mode,
receiving as mediamtx would), the stream is read back with PyAV, and every frame is checked.
Lossless stream: the v1 message verifies, its boxes cover the faces found in the source frame,
and no pixel of those ROIs equals the source frame's. Lossy stream: the message comes back from
SEI, its boxes cover the faces, and the faces are far from the source's pixels."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.app import build_agent
from shared.detectors import create_detector
from shared.frame_seal import open_frame
from shared.roi_message import parse_message
from shared.sei import messages_from_frame
from shared.video_io import read_frames
from tests.edge_agent.conftest import CAMERA_ID, CAMERA_KEY, covers, roi_pixels_equal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI not installed"),
]


def _listening(port: int) -> bool:
    """Whether a socket listens on ``port`` (read from /proc: a probe connection would use up
    FFmpeg's single RTSP session)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rtsp_server(tmp_path):
    """An RTSP server on 127.0.0.1 that records what is published to it, untouched."""
    port = _free_port()
    url = f"rtsp://127.0.0.1:{port}/camera"
    received = tmp_path / "received.mkv"
    process = subprocess.Popen(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_flags", "listen",
            "-timeout", "60", "-i", url, "-c", "copy", "-f", "matroska", str(received),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url, received, process
    if process.poll() is None:
        process.terminate()
        process.wait(10)


def test_public_rtsp_stream_verifies_covers_faces_and_changes_every_roi_pixel(
    make_settings, rtsp_server, sample_clip
):
    url, received, server = rtsp_server
    settings = make_settings(sample_clip, outputs={"rtsp": {"url": url, "queue_size": 200}})
    agent = build_agent(settings)
    result = agent.run()
    assert result.frames_processed == 90
    assert server.wait(30) == 0, server.stderr.read().decode()
    assert agent.stats.get("frames_dropped") == 0
    assert agent.stats.get("sink_frames_written", sink="rtsp") == 90

    detector = create_detector("yunet")
    source = {f.index: f.rgb for f in read_frames(sample_clip)}
    public = list(read_frames(received))
    assert len(public) == 90
    faces_checked = 0
    for frame in public:
        message = open_frame(frame.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
        assert message.model_id == "toy0123456789abc" and message.camera_id == CAMERA_ID
        original = source[message.frame_index]
        for face in (d.box for d in detector.detect(original)):
            assert any(covers(box, face) for box in message.boxes), (message.frame_index, face)
            faces_checked += 1
        for box in message.boxes:
            assert roi_pixels_equal(original, frame.rgb, box) == 0, (message.frame_index, box)
    keys = {CAMERA_ID: CAMERA_KEY}
    assert [open_frame(f.rgb, keys).frame_index for f in public] == list(range(90))
    assert faces_checked >= 300


def test_lossy_rtsp_stream_carries_messages_in_sei_and_no_original_face(
    make_settings, rtsp_server, sample_clip
):
    url, received, server = rtsp_server
    settings = make_settings(sample_clip, outputs={"lossy": {"target": url, "queue_size": 200}})
    agent = build_agent(settings)
    assert agent.run().frames_processed == 90
    assert server.wait(30) == 0, server.stderr.read().decode()
    detector = create_detector("yunet")
    source = {f.index: f.rgb for f in read_frames(sample_clip)}
    with av.open(str(received)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = [
            (messages_from_frame(f), f.to_ndarray(format="rgb24")) for f in container.decode(stream)
        ]
    assert len(decoded) == 90
    for texts, rgb in decoded:
        (text,) = texts
        message = parse_message(text, (640, 360))
        assert message.camera_id == CAMERA_ID and message.version == "1"
        original = source[message.frame_index]
        for face in (d.box for d in detector.detect(original)):
            assert any(covers(box, face) for box in message.boxes)
            region = (slice(face.y, face.bottom), slice(face.x, face.right))
            difference = np.abs(rgb[region].astype(int) - original[region]).mean()
            assert difference > 60, (message.frame_index, face, difference)
