"""edge_agent.app: whole runs of the agent on real files with faults injected; outputs checked."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from edge_agent.app import PyAvOpener, build_agent
from edge_agent.outputs.base import FrameSink
from edge_agent.sources import SourceError, SourceInfo, SourceSpec, parse_source
from shared import stego
from shared.detectors import DetectorError, create_detector
from shared.frame_seal import open_frame
from shared.video_io import read_frames
from tests.edge_agent.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    covers,
    decoder_threads,
    roi_pixels_equal,
)
from tests.media import MEDIA_DIR, needs_media


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


@pytest.fixture(scope="module")
def source_frames(sample_clip):
    return {f.index: f.rgb for f in read_frames(sample_clip)}


def _check_public(frames, source_frames, yunet, *, verify=True, every=3):
    """Every public frame: the message verifies; sampled frames: no original face pixel."""
    for public in frames:
        message = open_frame(public.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=verify)
        source = source_frames[message.frame_index]
        if message.frame_index % every:
            continue
        for face in (d.box for d in yunet.detect(source)):
            assert roi_pixels_equal(source, public.rgb, face) == 0, message.frame_index
            if message.boxes:
                assert any(covers(box, face) for box in message.boxes)


class FlakyDetector:
    def __init__(self, real, every):
        self.real, self.every, self.calls = real, every, 0

    def detect(self, frame):
        self.calls += 1
        if self.calls % self.every == 0:
            raise DetectorError("injected")
        return self.real.detect(frame)


class FlakyEncoder:
    def __init__(self, real, every):
        self.real, self.every, self.calls = real, every, 0

    def __call__(self, batch):
        self.calls += 1
        if self.calls % self.every == 0:
            raise RuntimeError("injected Ue failure")
        return self.real(batch)


class SlowSink(FrameSink):
    name = "slow"

    def __init__(self):
        self.written = []

    def open(self, fmt):
        self.fmt = fmt

    def write(self, frame):
        time.sleep(0.4)  # far slower than the pipeline, even on a busy machine
        self.written.append(frame)

    def close(self):
        pass


@pytest.mark.slow
def test_run_with_failing_detector_ue_and_slow_sink_never_leaks(
    make_settings, tmp_path, sample_clip, source_frames, yunet
):
    settings = make_settings(sample_clip, outputs={"evidence": {"path": str(tmp_path / "e.mkv")}})
    agent = build_agent(settings, detector=FlakyDetector(yunet, every=7))
    deid = agent.processor.deidentifier
    deid.encoder = FlakyEncoder(deid.encoder, every=5)
    slow = SlowSink()
    agent.sink_specs.append((slow, 2, (1.0, 1.0)))
    result = agent.run()
    assert result.frames_processed == 90 and result.error is None
    stats = agent.stats
    assert stats.get("fail_closed", stage="detect", action="black") == 12  # 90 // 7
    ue_failures = stats.get("fail_closed", stage="deidentify", action="black")
    assert ue_failures >= 10
    assert stats.get("frames_emitted") == 90
    assert stats.get("frames_dropped", stage="sink:slow") > 0
    assert len(slow.written) + stats.get("frames_dropped", stage="sink:slow") == 90
    public = list(read_frames(tmp_path / "e.mkv"))
    assert len(public) == 90  # the evidence output kept up: nothing dropped there
    _check_public(public, source_frames, yunet)
    blacked = [f for f in public if not (f.rgb & 0xFE).any()]
    assert len(blacked) == 12


class DroppingOpener:
    """A live source that fails after some frames and comes back (twice)."""

    def __init__(self, frames, cuts):
        self.spec = SourceSpec("rtsp", "rtsp://camera.invalid/stream")
        self.info = SourceInfo(640, 360, Fraction(15))
        self.frames, self.cuts, self.connections, self.position = frames, list(cuts), 0, 0

    def __call__(self, stop):
        self.connections += 1
        if self.connections == 2:
            raise SourceError("connection refused (injected)")
        return self._frames(stop)

    def _frames(self, stop):
        cut = self.cuts.pop(0) if self.cuts else len(self.frames)
        while self.position < cut:
            self.position += 1
            yield self.frames[self.position - 1].copy()
        if self.cuts or self.position < len(self.frames):
            raise SourceError("connection lost (injected)")
        stop.wait(30)  # a live camera with nothing more to say, until the agent stops


@pytest.mark.slow
def test_run_with_source_dropping_and_coming_back_reconnects(
    make_settings, tmp_path, sample_clip, source_frames, yunet
):
    settings = make_settings(
        sample_clip,
        source={"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "queue_size": 100},
        outputs={"evidence": {"path": str(tmp_path / "e.mkv")}},
        max_frames=40,
    )
    agent = build_agent(settings)
    frames = [source_frames[i] for i in range(40)]
    agent.opener = DroppingOpener(frames, cuts=[15, 30])
    result = agent.run()
    assert result.frames_processed == 40
    assert agent.stats.get("source_reconnects") == 3  # lost, refused, lost again
    assert agent.opener.connections == 4
    public = list(read_frames(tmp_path / "e.mkv"))
    assert len(public) == 40
    indices = [open_frame(f.rgb, {CAMERA_ID: CAMERA_KEY}).frame_index for f in public]
    assert indices == list(range(40))  # capture indices continue across reconnections
    _check_public(public, source_frames, yunet, every=4)


@needs_media
@pytest.mark.slow
def test_run_on_crowd_without_faces_changes_only_the_lsbs_outside_rois(make_settings, tmp_path):
    """MOT20 (overhead crowd, no usable face): frames pass unchanged but for the message.

    At the default threshold (0.6, chosen for recall) YuNet fires on a few heads seen from above
    (scores 0.6-0.7): those ROIs are replaced, everything else must be untouched. (The safety
    margins are off here: the low-confidence tier blurs weaker detections outside the message,
    and the look-ahead back-fills each false positive into the 5 frames before it; both are
    tested in tests/edge_agent/test_margins.py and test_lookahead.py.)
    """
    clip = MEDIA_DIR / "videos" / "MOT20-05_826x540.mp4"
    settings = make_settings(
        clip,
        outputs={"evidence": {"path": str(tmp_path / "e.mkv")}},
        margins={"low_score_threshold": None, "lookahead_frames": 0},
        max_frames=30,
    )
    agent = build_agent(settings)
    result = agent.run()
    assert result.frames_processed == 30
    source = [f.rgb for f, _ in zip(read_frames(clip), range(30), strict=False)]
    public = list(read_frames(tmp_path / "e.mkv"))
    assert len(public) == 30
    with_boxes = 0
    for original, frame in zip(source, public, strict=True):
        message = open_frame(frame.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
        assert stego.extract(frame.rgb).startswith(f"UU1|{CAMERA_ID}|")
        outside = np.ones(original.shape[:2], bool)
        for box in message.boxes:
            outside[box.y : box.bottom, box.x : box.right] = False
        np.testing.assert_array_equal(original[outside] & 0xFE, frame.rgb[outside] & 0xFE)
        with_boxes += bool(message.boxes)
    # a few false positives, each held by the tracker for max_missed (5) frames
    assert with_boxes < 15, f"{with_boxes} of 30 frames with false positives"
    assert agent.stats.get("faces_deidentified") >= with_boxes


def test_stop_from_another_thread_ends_a_realtime_run_cleanly(make_settings, tmp_path, sample_clip):
    settings = make_settings(
        sample_clip,
        source={"realtime": True},
        outputs={"evidence": {"path": str(tmp_path / "seg"), "segment_s": 100}},
    )
    agent = build_agent(settings)
    threading.Timer(1.5, agent.stop, args=("test stop",)).start()
    result = agent.run()
    assert result.reason == "test stop"
    assert 1 <= result.frames_processed < 60
    (segment,) = sorted((tmp_path / "seg").iterdir())
    assert segment.suffix == ".mkv" and not segment.name.endswith(".partial")
    assert len(list(read_frames(segment))) == agent.stats.get("frames_emitted")


def test_build_agent_refuses_bad_sources(make_settings, tmp_path):
    with pytest.raises(SourceError, match="not found"):
        build_agent(make_settings(tmp_path / "none.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(SourceError):
        build_agent(make_settings(junk))
    with pytest.raises(SourceError, match="scheme"):
        build_agent(make_settings("http://camera/stream"))


class ResizingOpener(DroppingOpener):
    """A live source whose resolution changes when it comes back (camera reconfigured)."""

    def __call__(self, stop):
        self.connections += 1
        if self.connections == 1:
            return iter([f.copy() for f in self.frames[:5]])
        small = [np.ascontiguousarray(f[::2, ::2]) for f in self.frames[5:10]]
        self.info = SourceInfo(320, 180, Fraction(15))

        def rest():
            yield from small
            stop.wait(30)

        return rest()


def test_source_changing_resolution_restarts_the_outputs(make_settings, tmp_path, source_frames):
    settings = make_settings(
        "rtsp://camera.invalid/stream",
        source={"reconnect_initial_s": 0.05, "queue_size": 100},
        outputs={"evidence": {"path": str(tmp_path / "seg"), "segment_s": 100}},
        max_frames=10,
    )
    agent = build_agent(settings)
    agent.opener = ResizingOpener([source_frames[i] for i in range(10)], cuts=[])
    result = agent.run()
    assert result.frames_processed == 10
    segments = sorted((tmp_path / "seg").glob("*.mkv"))
    assert len(segments) == 2
    sizes = [next(iter(read_frames(s))).rgb.shape[:2] for s in segments]
    assert sorted(sizes) == [(180, 320), (360, 640)]
    assert sum(len(list(read_frames(s))) for s in segments) == 10


def test_run_quick_form_outputs_hls_and_evidence_together(make_settings, tmp_path, sample_clip):
    settings = make_settings(
        sample_clip,
        outputs={
            "evidence": {"path": str(tmp_path / "e.mp4"), "codec": "libx264rgb"},
            "hls": {"dir": str(tmp_path / "hls"), "segment_s": 1},
        },
        max_frames=20,
    )
    agent = build_agent(settings)
    assert agent.run().frames_processed == 20
    evidence = [f.rgb for f in read_frames(tmp_path / "e.mp4")]
    hls = [f.rgb for f in read_frames(tmp_path / "hls" / "index.m3u8")]
    assert len(evidence) == len(hls) == 20
    for a, b in zip(evidence, hls, strict=True):
        np.testing.assert_array_equal(a, b)
        open_frame(b, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)


@needs_media
@pytest.mark.slow
def test_run_on_real_faces_covers_every_detected_face(make_settings, tmp_path, yunet):
    """hamilton (real people, 1-7 faces, shot cuts): every face the detector finds in the source
    frame lies inside a message box, and its pixels are replaced (the toy Ue inverts them: only
    mid-grey pixels can come back equal, by rounding)."""
    clip = MEDIA_DIR / "videos" / "hamilton_640x360.mp4"
    settings = make_settings(
        clip, outputs={"evidence": {"path": str(tmp_path / "e.mkv")}}, max_frames=45
    )
    agent = build_agent(settings)
    assert agent.run().frames_processed == 45
    source = [f.rgb for f, _ in zip(read_frames(clip), range(45), strict=False)]
    public = list(read_frames(tmp_path / "e.mkv"))
    assert len(public) == 45
    faces = equal = area = 0
    for frame in public:
        message = open_frame(frame.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
        original = source[message.frame_index]
        for face in (d.box for d in yunet.detect(original)):
            assert any(covers(box, face) for box in message.boxes), (message.frame_index, face)
            faces += 1
            equal += roi_pixels_equal(original, frame.rgb, face)
            area += face.area
    assert faces >= 45
    assert equal / area < 0.001, f"{equal} of {area} face pixels unchanged"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads (Linux)")
def test_source_decode_threads_reach_the_decoder_and_default_to_one(make_settings, sample_clip):
    spec = parse_source(str(sample_clip))
    before = decoder_threads()
    for source, started in (({}, 0), ({"decode_threads": 2}, 2)):
        frames = PyAvOpener(spec, make_settings(sample_clip, source=source))(threading.Event())
        next(frames)
        try:
            assert decoder_threads() - before == started, source
        finally:
            frames.close()
