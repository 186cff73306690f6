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


# detect_every: the detector runs on every Nth frame; the frames between take boxes from the
# detection frames around them. The frame's index is written into its first pixel so that a
# detector can tell which frame it is looking at.
def _moving_face(index: int) -> Box:
    return Box(20 + 6 * index, 30 + 2 * index, 24, 30)  # 6 px a frame right, 2 down


class TrajectoryDetector:
    """Finds the face where ``_moving_face`` puts it, from frame ``first`` on, as a detection of
    ``score``; records which frames it was called on; raises on the frames in ``fail_on``."""

    key = "trajectory"

    def __init__(
        self, first: int = 0, score: float = 0.9, fail_on: tuple[int, ...] = (), path=None
    ):
        self.first, self.score, self.fail_on, self.seen = first, score, set(fail_on), []
        self.path = path or _moving_face

    def detect(self, frame):
        index = int(frame[0, 0, 0])
        self.seen.append(index)
        if index in self.fail_on:
            raise DetectorError("injected detector failure")
        return [FaceDetection(self.path(index), self.score)] if index >= self.first else []


def _indexed_frames(count: int) -> list[np.ndarray]:
    frames = _frames(count)
    for index, rgb in enumerate(frames):
        rgb[0, 0] = index
    return frames


def _strided(toy_model, detector, depth, every, stats, **kwargs) -> LookaheadBuffer:
    processor = toy_processor(toy_model, detector, stats, **kwargs)
    return LookaheadBuffer(processor, depth, detect_every=every)


def _open_pixels(frames, sealed, face=_moving_face) -> dict[int, int]:
    return {s.index: roi_pixels_equal(frames[s.index], s.rgb, face(s.index)) for s in sealed}


def test_detect_every_3_runs_the_detector_on_every_third_frame_and_covers_the_moving_face(
    toy_model,
):
    frames = _indexed_frames(13)
    detector = TrajectoryDetector()
    stats = Stats()
    sealed = _run(_strided(toy_model, detector, 2, 3, stats), frames)
    assert detector.seen == [0, 3, 6, 9, 12]
    assert [s.index for s in sealed] == list(range(13))
    assert _open_pixels(frames, sealed) == dict.fromkeys(range(13), 0)
    for s in sealed:  # replaced by Ue and listed in the message, not blacked out
        assert s.blacked == () and any(covers(b, _moving_face(s.index)) for b in s.boxes)


def _walking(index: int) -> Box:
    """2 px a frame to the right: boxes 3 frames apart overlap enough to stay one track."""
    return Box(20 + 2 * index, 40, 24, 30)


def test_detect_every_the_frames_between_take_the_interpolated_box(toy_model):
    """With no held boxes (``max_missed`` 0) and one track from start to end (no back-fill),
    only the box interpolated between two detection frames can cover the frames between."""
    from shared.tracking import IouTracker

    frames = _indexed_frames(10)
    detector = TrajectoryDetector(path=_walking)
    processor = toy_processor(toy_model, detector, Stats())
    processor.tracker = IouTracker(max_missed=0)
    sealed = _run(LookaheadBuffer(processor, 2, detect_every=3), frames)
    assert detector.seen == [0, 3, 6, 9]
    assert _open_pixels(frames, sealed, _walking) == dict.fromkeys(range(10), 0)
    for s in sealed:
        assert any(covers(b, _walking(s.index)) for b in s.boxes), s.index


def test_detect_every_back_fills_a_face_that_appears_between_detection_frames(toy_model):
    frames = _indexed_frames(10)
    detector = TrajectoryDetector(first=4)  # appears at 4, first seen at detection frame 6
    sealed = _run(_strided(toy_model, detector, 2, 3, Stats()), frames)
    assert detector.seen == [0, 3, 6, 9]
    assert all(n == 0 for i, n in _open_pixels(frames, sealed).items() if i >= 4)


def test_detect_every_a_failed_detection_frame_makes_the_frames_around_it_detect(toy_model):
    frames = _indexed_frames(10)
    detector = TrajectoryDetector(fail_on=(3,))
    sealed = _run(_strided(toy_model, detector, 2, 3, Stats()), frames)
    # 1, 2 and 4, 5 (next to the failed 3) detect at their turn; 7, 8 take 6's and 9's boxes
    assert detector.seen == [0, 3, 1, 2, 6, 4, 5, 9]
    assert sealed[3].rgb.max() <= 1  # the failed frame is black
    assert all(n == 0 for n in _open_pixels(frames, sealed).values())


def test_detect_every_frames_after_the_last_detection_frame_detect_at_flush(toy_model):
    frames = _indexed_frames(8)
    detector = TrajectoryDetector()
    sealed = _run(_strided(toy_model, detector, 2, 3, Stats()), frames)
    assert detector.seen == [0, 3, 6, 7]  # 7 had no detection frame after it
    assert all(n == 0 for n in _open_pixels(frames, sealed).values())


def test_detect_every_covers_a_weak_face_in_the_frames_between(toy_model):
    from edge_agent.margins import CoverPlan

    frames = _indexed_frames(7)
    detector = TrajectoryDetector(score=0.4)  # below the normal threshold 0.6: covered only
    plan = CoverPlan(0.6, 0.3, "black", [], 0.25)
    sealed = _run(_strided(toy_model, detector, 2, 3, Stats(), cover_plan=plan), frames)
    for s in sealed:
        face = _moving_face(s.index)
        assert s.boxes == ()  # weak: not replaced by Ue, not in the message
        if s.index % 3 == 0:
            assert s.rgb[face.y : face.bottom, face.x : face.right].max() <= 1
        else:  # the weak boxes of both detection frames around it are covered
            for near in (3 * (s.index // 3), 3 * (s.index // 3 + 1)):
                box = _moving_face(min(near, 6))
                assert s.rgb[box.y : box.bottom, box.x : box.right].max() <= 1


def test_detect_every_beyond_the_lookahead_depth_is_refused(toy_model):
    with pytest.raises(ValueError, match="detect_every"):
        _strided(toy_model, TrajectoryDetector(), 1, 3, Stats())


@pytest.mark.parametrize("every", [1, 3])
def test_detect_every_on_the_sample_clip_leaves_no_drawn_face_open(
    make_settings, sample_clip, every
):
    """The edge's own path (settings -> build_processor -> build_lookahead, real YuNet, the
    default margins) on the sample clip, judged by its generator's ground-truth face boxes (an
    oracle that is not the detector): with the detector on every 3rd frame, as on every frame,
    no frame leaves with a drawn face's pixels unchanged."""
    from edge_agent.app import build_lookahead, build_processor
    from edge_agent.samples.make_sample import face_boxes
    from shared.video_io import read_frames

    settings = make_settings(sample_clip, margins={"detect_every": every})
    stats = Stats()
    processor = build_processor(settings, stats=stats, noise_secret=b"noise")
    buffer = build_lookahead(settings, processor)
    calls = []
    detect = processor.detector.detect
    processor.detector.detect = lambda frame: (calls.append(1), detect(frame))[1]
    frames = [f.rgb for f, _ in zip(read_frames(sample_clip), range(45), strict=False)]
    sealed = _run(buffer, frames)
    assert [s.index for s in sealed] == list(range(len(frames)))
    for s in sealed:
        for box in (Box(*b) for b in face_boxes(s.index)):
            open_pixels = roi_pixels_equal(frames[s.index], s.rgb, box)
            assert open_pixels < box.w * box.h // 2, f"frame {s.index}: {box} left open"
    trailing = (len(frames) - 1) % every  # after the last detection frame: detect at flush
    assert len(calls) == -(-len(frames) // every) + trailing, len(calls)
    assert (stats.get("faces_backfilled") > 0) == (every > 1)  # the frames between: boxes given


def test_detect_every_a_failing_lookahead_makes_the_frames_detect_and_the_run_go_on(toy_model):
    """A bug in the look-ahead's bookkeeping (injected) neither stops the run nor leaves a
    face open: the frames it gave no boxes run the detector themselves, and a counter says so."""
    frames = _indexed_frames(10)
    detector = TrajectoryDetector()
    stats = Stats()
    buffer = _strided(toy_model, detector, 2, 3, stats)

    def broken(before, after):
        raise RuntimeError("injected look-ahead bug")

    buffer._fill_skipped = broken
    sealed = _run(buffer, frames)
    assert [s.index for s in sealed] == list(range(10))
    assert sorted(detector.seen) == list(range(10))  # the skipped frames detected at their turn
    assert _open_pixels(frames, sealed) == dict.fromkeys(range(10), 0)
    # at frames 3 and 9 (after the failure at 3, frame 6 has no earlier one to fill from)
    assert stats.snapshot()["labelled"]["fail_closed"] == {"action=detect,stage=lookahead": 2}
