"""edge_agent.pipeline: every frame is de-identified and sealed, or fails closed (counted)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.pipeline import FrameProcessor
from edge_agent.sources import CapturedFrame
from edge_agent.stats import Stats
from shared.detectors import DetectorError, FaceDetection, create_detector
from shared.frame_seal import open_frame
from shared.geometry import Box
from shared.video_io import read_frames
from tests.edge_agent.conftest import CAMERA_ID, CAMERA_KEY, covers, roi_pixels_equal, toy_processor


@pytest.fixture(scope="module")
def clip_frames(sample_clip) -> list[np.ndarray]:
    return [f.rgb for f in read_frames(sample_clip)][:12]


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


class FlakyDetector:
    """The real detector, raising on chosen frames (counted by calls)."""

    key = "flaky"

    def __init__(self, real, fail_on=(), miss_on=()):
        self.real, self.fail_on, self.miss_on, self.calls = real, set(fail_on), set(miss_on), 0

    def detect(self, frame):
        call, self.calls = self.calls, self.calls + 1
        if call in self.fail_on:
            raise DetectorError("injected detector failure")
        return [] if call in self.miss_on else self.real.detect(frame)


class FlakyEncoder:
    def __init__(self, real, fail_on=()):
        self.real, self.fail_on, self.calls = real, set(fail_on), 0

    def __call__(self, batch):
        call, self.calls = self.calls, self.calls + 1
        if call in self.fail_on:
            raise RuntimeError("injected Ue failure")
        return self.real(batch)


def _processor(toy_model, detector, stats, **kwargs) -> FrameProcessor:
    kwargs.setdefault("message_format", "v1")
    return toy_processor(toy_model, detector, stats, **kwargs)


def _assert_no_face_leaks(source, public, faces, boxes_must_cover=True):
    for face in faces:
        assert roi_pixels_equal(source, public, face) == 0, f"original pixels in {face}"


def test_process_replaces_every_face_and_seals_a_verifiable_message(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(toy_model, yunet, stats)
    for index, source in enumerate(clip_frames):
        sealed = processor.process(CapturedFrame(index, source.copy(), 0.0))
        assert sealed is not None
        message = open_frame(sealed.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
        assert message.frame_index == index and message.model_id == "toy0123456789abc"
        assert message.boxes == sealed.boxes
        faces = [d.box for d in yunet.detect(source)]
        assert len(faces) >= 3
        for face in faces:
            assert any(covers(box, face) for box in message.boxes)
        _assert_no_face_leaks(source, sealed.rgb, faces)
    assert stats.get("frames_processed") == len(clip_frames)
    assert stats.get("fail_closed") == 0


def test_process_with_paper_format_writes_the_paper_grammar(toy_model, clip_frames, yunet):
    processor = _processor(toy_model, yunet, Stats(), message_format="paper")
    sealed = processor.process(CapturedFrame(0, clip_frames[0].copy(), 0.0))
    assert sealed is not None
    assert sealed.message.startswith(f"{len(sealed.boxes)},")
    assert open_frame(sealed.rgb, require_authentication=False).version == "paper"


def test_detector_failure_blacks_out_the_whole_frame_and_counts(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(toy_model, FlakyDetector(yunet, fail_on={1}), stats)
    results = [
        processor.process(CapturedFrame(i, f.copy(), 0.0)) for i, f in enumerate(clip_frames[:3])
    ]
    black = results[1]
    assert black is not None and black.boxes == ()
    assert black.blacked == (Box(0, 0, 640, 360),)
    cleared = black.rgb & 0xFE  # the message lives in the LSBs; everything else is black
    assert not cleared.any()
    assert open_frame(black.rgb, {CAMERA_ID: CAMERA_KEY}).boxes == ()
    assert stats.get("fail_closed", stage="detect", action="black") == 1
    assert results[0].boxes and results[2].boxes


def test_detector_failure_with_drop_action_emits_nothing(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(
        toy_model, FlakyDetector(yunet, fail_on={0}), stats, failure_action="drop"
    )
    assert processor.process(CapturedFrame(0, clip_frames[0].copy(), 0.0)) is None
    assert stats.get("frames_dropped", stage="failure") == 1
    assert stats.get("fail_closed", stage="detect", action="drop") == 1


def test_ue_failure_blacks_out_every_roi(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(toy_model, yunet, stats)
    processor.deidentifier.encoder = FlakyEncoder(processor.deidentifier.encoder, fail_on={0})
    source = clip_frames[0]
    sealed = processor.process(CapturedFrame(0, source.copy(), 0.0))
    assert sealed is not None and sealed.boxes == () and len(sealed.blacked) >= 3
    for roi in sealed.blacked:
        assert not (sealed.rgb[roi.y : roi.bottom, roi.x : roi.right] & 0xFE).any()
    _assert_no_face_leaks(source, sealed.rgb, [d.box for d in yunet.detect(source)])
    assert stats.get("fail_closed", stage="deidentify", action="black") == 1
    assert open_frame(sealed.rgb, {CAMERA_ID: CAMERA_KEY}).boxes == ()


def test_seal_failure_drops_the_frame(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(toy_model, yunet, stats)
    processor.key = b"short"  # refused by the v1 tag: sealing fails
    assert processor.process(CapturedFrame(0, clip_frames[0].copy(), 0.0)) is None
    assert stats.get("fail_closed", stage="seal", action="drop") == 1
    assert stats.get("frames_dropped", stage="failure") == 1


def test_detector_returning_garbage_is_an_internal_failure_and_drops(toy_model, clip_frames):
    class Garbage:
        def detect(self, frame):
            return [FaceDetection(Box(600, 300, 100, 100), 0.9)]  # beyond the 640x360 frame

    stats = Stats()
    processor = _processor(toy_model, Garbage(), stats)
    result = processor.process(CapturedFrame(0, clip_frames[0].copy(), 0.0))
    assert result is None or not result.boxes
    assert stats.get("fail_closed") == 1


def test_one_missed_detection_keeps_the_face_covered(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(toy_model, FlakyDetector(yunet, miss_on={2}), stats)
    for index, source in enumerate(clip_frames[:4]):
        sealed = processor.process(CapturedFrame(index, source.copy(), 0.0))
        assert sealed is not None
        faces = [d.box for d in yunet.detect(source)]
        for face in faces:
            assert any(covers(box, face) for box in sealed.boxes), (index, face)
        _assert_no_face_leaks(source, sealed.rgb, faces)
    assert stats.get("faces_held") >= 3


def test_tracker_failure_blacks_detections_and_previous_tracks(toy_model, clip_frames, yunet):
    stats = Stats()
    processor = _processor(toy_model, FlakyDetector(yunet, miss_on={1}), stats)
    assert processor.process(CapturedFrame(0, clip_frames[0].copy(), 0.0)).boxes
    before = processor.tracker.tracks

    def broken(*args, **kwargs):
        raise RuntimeError("injected tracker failure")

    processor.tracker.update = broken
    source = clip_frames[1]
    sealed = processor.process(CapturedFrame(1, source.copy(), 0.0))  # the detector missed all
    assert sealed is not None and sealed.boxes == ()
    assert len(sealed.blacked) == len(before) >= 3  # the previous tracks' ROIs cover them
    _assert_no_face_leaks(source, sealed.rgb, [d.box for d in yunet.detect(source)])
    assert stats.get("fail_closed", stage="track", action="black") == 1


def test_two_starts_write_different_run_ids_so_their_frames_are_not_interchangeable(
    toy_model, clip_frames, yunet
):
    """Before: both starts wrote ``...|0|...`` for frame 0, a message valid for either."""
    source = clip_frames[0]
    runs = [_processor(toy_model, yunet, Stats()) for _ in range(2)]
    sealed = [p.process(CapturedFrame(0, source.copy(), 0.0)) for p in runs]
    messages = [open_frame(s.rgb, {CAMERA_ID: CAMERA_KEY}) for s in sealed]
    assert [m.run_id for m in messages] == [p.run_id for p in runs]
    assert messages[0].run_id != messages[1].run_id and all(m.frame_index == 0 for m in messages)
    assert _processor(toy_model, yunet, Stats(), message_format="paper").run_id is None
