"""edge_agent.lookahead: a face is covered before its first detection, nothing is lost or leaks."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.lookahead import LookaheadBuffer
from edge_agent.sources import CapturedFrame
from edge_agent.stats import Stats
from shared.detectors import DetectorError, FaceDetection
from shared.geometry import Box
from tests.edge_agent.conftest import covers, roi_pixels_equal, toy_processor

WIDTH, HEIGHT = 160, 120
FACE = Box(60, 40, 24, 30)  # the ground truth: where the face is in every frame


class ScriptedDetector:
    """Finds ``FACE`` from call ``first`` on (before: misses it); raises on ``fail_on``."""

    key = "scripted"

    def __init__(self, first: int, fail_on: tuple[int, ...] = ()) -> None:
        self.first, self.fail_on, self.calls = first, set(fail_on), 0

    def detect(self, frame):
        call, self.calls = self.calls, self.calls + 1
        if call in self.fail_on:
            raise DetectorError("injected detector failure")
        return [FaceDetection(FACE, 0.9)] if call >= self.first else []


class FailingEncoder:
    def __init__(self, real) -> None:
        self.real = real

    def __call__(self, batch):
        raise RuntimeError("injected Ue failure")


def _frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(count)]


def _buffer(toy_model, detector, depth, stats, fail_ue=False) -> LookaheadBuffer:
    processor = toy_processor(
        toy_model, detector, stats, wrap_encoder=FailingEncoder if fail_ue else None
    )
    return LookaheadBuffer(processor, depth)


def _run(buffer: LookaheadBuffer, frames: list[np.ndarray]) -> list:
    out = []
    for index, rgb in enumerate(frames):
        out += buffer.push(CapturedFrame(index, rgb.copy(), 0.0))
        assert len(buffer) <= buffer.frames
    return out + buffer.flush()


def test_push_face_first_detected_at_k_is_covered_in_the_n_frames_before(toy_model):
    depth, first = 3, 6
    frames = _frames(10)
    stats = Stats()
    sealed = _run(_buffer(toy_model, ScriptedDetector(first), depth, stats), frames)
    assert [s.index for s in sealed] == list(range(10))  # in order, none lost at the end
    for s in sealed:
        unchanged = roi_pixels_equal(frames[s.index], s.rgb, FACE)
        if s.index >= first - depth:
            assert unchanged == 0, f"frame {s.index}: original face pixels"
            assert any(covers(b, FACE) for b in s.boxes)  # replaced by Ue, in the message
        else:
            assert unchanged == FACE.w * FACE.h and s.boxes == ()
    assert stats.snapshot()["counters"]["faces_backfilled"] == depth


def test_push_without_lookahead_leaves_the_face_open_until_detected(toy_model):
    frames = _frames(8)
    sealed = _run(_buffer(toy_model, ScriptedDetector(6), 0, Stats()), frames)
    assert roi_pixels_equal(frames[5], sealed[5].rgb, FACE) == FACE.w * FACE.h


def test_backfilled_rois_are_black_when_ue_fails(toy_model):
    frames = _frames(6)
    stats = Stats()
    sealed = _run(_buffer(toy_model, ScriptedDetector(4), 2, stats, fail_ue=True), frames)
    for s in sealed[2:]:
        assert s.boxes == () and any(covers(b, FACE) for b in s.blacked)
        assert s.rgb[FACE.y : FACE.bottom, FACE.x : FACE.right].max() <= 1


def test_detector_failure_on_arrival_blacks_that_frame_at_its_turn(toy_model):
    frames = _frames(5)
    sealed = _run(_buffer(toy_model, ScriptedDetector(0, fail_on=(2,)), 2, Stats()), frames)
    assert [s.index for s in sealed] == list(range(5))
    assert sealed[2].rgb.max() <= 1 and sealed[2].boxes == ()  # black (but the LSB message)
    assert all(roi_pixels_equal(frames[i], sealed[i].rgb, FACE) == 0 for i in range(5))


def test_negative_depth_raises(toy_model):
    with pytest.raises(ValueError):
        _buffer(toy_model, ScriptedDetector(0), -1, Stats())
