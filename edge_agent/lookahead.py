"""The look-ahead buffer: frames wait N frames before ``Ue`` and sealing, so a face is covered
before its first detection too.

Without it a face is open from the frame it enters (turns towards the camera, comes out of a
crowd) until the detector first finds it. :class:`LookaheadBuffer` runs the detector when a
frame arrives, follows the detections with its own :class:`~shared.tracking.IouTracker`, and
holds the frame for ``frames`` frames; when a track *starts* (a face not seen in the previous
``max_missed`` frames), its first box is back-filled into the frames still held, back to the
first one that already has a detection there (grown by ``hold_growth`` per frame back, as a held
box grows; at its start a track has no velocity to extrapolate by). A frame leaves through the
edge's own :meth:`~edge_agent.pipeline.FrameProcessor.process` with its detections and its
back-filled boxes, which are tracked, replaced by ``Ue``, sealed and listed in the ROI message
like any detection, and black if ``Ue`` fails (fail-closed, as every ROI). A detection failure
is carried to the frame's turn and fails it closed there.

With ``detect_every`` N > 1 the detector runs on every Nth frame only (the costly step at
1080p) and the frames between wait for the next detection frame, then take boxes from the two
around them, per look-ahead track: a face found in both is interpolated linearly between its two
boxes (grown by ``hold_growth``), a face found in one only is that box, grown by ``hold_growth``
per frame away from it (as a held or back-filled box grows, up to 3 steps); the weak
detections of both are covered in every frame between (the low-confidence tier). A frame next
to a failed detection frame, or with none after it (the end of a run), runs the detector
itself. So a frame needs ``frames >= N - 1`` to wait for the detection after it (refused
otherwise). The boxes given to the frames between are counted as ``faces_backfilled``.

Latency: ``frames`` frames (at 15 fps, 5 frames are 0.33 s; at 25 fps, 0.2 s), plus the
processing. :meth:`flush` processes what is held when the run stops: no frame is lost.
``frames=0`` is the edge without look-ahead (each frame processed as it arrives).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

from edge_agent.pipeline import FrameProcessor, SealedFrame
from edge_agent.sources import CapturedFrame
from shared.detectors import FaceDetection
from shared.geometry import Box, clip_box, iou
from shared.tracking import IouTracker

__all__ = ["LookaheadBuffer"]

log = logging.getLogger(__name__)

_MAX_GROWTH_STEPS = 3


@dataclass
class _Held:
    """A frame waiting; ``detections`` ``None``: the detector skipped it (``detect_every``)."""

    captured: CapturedFrame
    detections: list[FaceDetection] | Exception | None
    backfilled: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    """What a detection frame found: strong boxes per look-ahead track id, weak detections."""

    tracked: dict[int, Box]
    weak: list[FaceDetection]


class LookaheadBuffer:
    """Delay frames by ``frames`` and back-fill the boxes of tracks that start later.

    Args:
        processor: the edge's frame processor (its detector, cover plan and stats are used).
        frames: how many frames a frame waits (0: no look-ahead).
        hold_growth: fraction per side a back-filled box grows per frame back (max 3 steps).
        detect_every: run the detector on every this many frames (1: all of them).

    Raises:
        ValueError: ``frames`` negative, ``detect_every`` below 1, or more than ``frames + 1``.
    """

    def __init__(
        self,
        processor: FrameProcessor,
        frames: int,
        hold_growth: float = 0.1,
        detect_every: int = 1,
    ) -> None:
        if frames < 0:
            raise ValueError(f"frames must be >= 0, got {frames}")
        if detect_every < 1 or detect_every > frames + 1:
            raise ValueError(
                f"detect_every {detect_every} needs 1 <= detect_every <= frames + 1 = "
                f"{frames + 1}: a frame the detector skips waits for the next detection frame"
            )
        self.processor = processor
        self.frames = frames
        self.hold_growth = hold_growth
        self.detect_every = detect_every
        tracker = processor.tracker
        self._tracker = IouTracker(tracker.iou_threshold, tracker.max_missed, 0.0)
        self._held: deque[_Held] = deque()
        self._pushed = 0
        self._last_found: _Found | None = None  # the last detection frame's, None if it failed

    def push(self, captured: CapturedFrame) -> list[SealedFrame]:
        """Take a new frame; return the frames that leave now (0 or 1; dropped ones omitted)."""
        if self.frames == 0:
            return self._emit(self.processor.process(captured))
        detect_now = self._pushed % self.detect_every == 0
        self._pushed += 1
        if not detect_now:
            self._held.append(_Held(captured, None))
        else:
            held = _Held(captured, self._detect(captured))
            found = None
            try:
                if not isinstance(held.detections, Exception):
                    found = self._backfill(held)
                if found is not None and self._last_found is not None:
                    self._fill_skipped(self._last_found, found)
            except Exception:  # a bug here must not stop the daemon
                # Fail safe: frames not given boxes yet run the detector at their turn.
                log.exception("frame %d: look-ahead failed; the frames held detect", captured.index)
                self.processor.stats.fail_closed("lookahead", "detect")
                found = None
            self._last_found = found
            self._held.append(held)
        out: list[SealedFrame] = []
        while len(self._held) > self.frames:
            out += self._release()
        return out

    def flush(self) -> list[SealedFrame]:
        """Process every frame still held (at the end of a run), oldest first."""
        out: list[SealedFrame] = []
        while self._held:
            out += self._release()
        return out

    def __len__(self) -> int:
        return len(self._held)

    def _emit(self, sealed: SealedFrame | None) -> list[SealedFrame]:
        return [] if sealed is None else [sealed]

    def _release(self) -> list[SealedFrame]:
        held = self._held.popleft()
        return self._emit(
            self.processor.process(
                held.captured, detections=held.detections, backfilled=held.backfilled
            )
        )

    def _detect(self, captured: CapturedFrame) -> list[FaceDetection] | Exception:
        """The frame's detections now, or the exception the detector raised (carried to the
        frame's turn, where it fails closed)."""
        stats = self.processor.stats
        start = time.perf_counter()
        try:
            return self.processor.detector.detect(captured.rgb)
        except Exception as exc:  # noqa: BLE001 (any detector failure fails the frame closed)
            return exc
        finally:
            stats.observe("detect", time.perf_counter() - start)

    def _split(
        self, detections: list[FaceDetection] | Exception | None
    ) -> tuple[list[FaceDetection], list[FaceDetection]]:
        """Strong and weak detections (none for a skipped frame or a failed detection)."""
        if detections is None or isinstance(detections, Exception):
            return [], []
        plan = self.processor.cover_plan
        return plan.split(detections) if plan is not None else (list(detections), [])

    def _strong(self, detections: list[FaceDetection] | Exception | None) -> list[Box]:
        return [d.box for d in self._split(detections)[0]]

    def _grown(self, box: Box, steps: int, width: int, height: int) -> Box | None:
        grow = self.hold_growth * min(steps, _MAX_GROWTH_STEPS)
        dx, dy = box.w * grow, box.h * grow
        return clip_box(box.x - dx, box.y - dy, box.right + dx, box.bottom + dy, width, height)

    def _backfill(self, held: _Held) -> _Found | None:
        """Back-fill the first box of each track starting in ``held`` into the frames held;
        return what ``held`` found (``None``: look-ahead tracking failed)."""
        assert not isinstance(held.detections, Exception) and held.detections is not None
        height, width = held.captured.rgb.shape[:2]
        strong, weak = self._split(held.detections)
        try:
            tracks = self._tracker.update([d.box for d in strong], width, height)
        except ValueError as exc:  # a box outside the frame: the processor fails it closed
            log.warning("frame %d: look-ahead tracking failed: %s", held.captured.index, exc)
            return None
        threshold = self._tracker.iou_threshold
        for track in tracks:
            if track.age != 0 or track.detection is None:
                continue
            first = track.box
            for back, earlier in enumerate(reversed(self._held), start=1):
                if isinstance(earlier.detections, Exception):
                    continue  # that frame is black anyway
                h, w = earlier.captured.rgb.shape[:2]
                box = self._grown(first, back, w, h)
                if box is None:
                    break
                seen = self._strong(earlier.detections) + earlier.backfilled
                if any(iou(box, other) >= threshold for other in seen):
                    break  # covered there already (and before, by its own track)
                earlier.backfilled.append(box)
        found = {t.id: t.box for t in tracks if t.detection is not None}
        return _Found(found, weak)

    def _fill_skipped(self, before: _Found, after: _Found) -> None:
        """Give the frames skipped since the last detection frame the boxes of the two detection
        frames around them (the module docstring says how)."""
        skipped: list[_Held] = []
        for held in reversed(self._held):
            if held.detections is not None:
                break
            skipped.append(held)
        skipped.reverse()
        gap = len(skipped) + 1
        threshold = self._tracker.iou_threshold
        for k, held in enumerate(skipped, start=1):
            h, w = held.captured.rgb.shape[:2]
            boxes: list[Box | None] = []
            for track_id in before.tracked.keys() | after.tracked.keys():
                a, b = before.tracked.get(track_id), after.tracked.get(track_id)
                if a is not None and b is not None:
                    between = _lerp(a, b, k / gap, w, h)
                    boxes.append(None if between is None else self._grown(between, 1, w, h))
                elif a is not None:
                    boxes.append(self._grown(a, k, w, h))
                elif b is not None:
                    boxes.append(self._grown(b, gap - k, w, h))
            for box in boxes:
                if box is not None and all(iou(box, o) < threshold for o in held.backfilled):
                    held.backfilled.append(box)
            held.detections = before.weak + after.weak


def _lerp(a: Box, b: Box, t: float, width: int, height: int) -> Box | None:
    """The box a fraction ``t`` of the way from ``a`` to ``b`` (corners interpolated)."""
    return clip_box(
        a.x + (b.x - a.x) * t,
        a.y + (b.y - a.y) * t,
        a.right + (b.right - a.right) * t,
        a.bottom + (b.bottom - a.bottom) * t,
        width,
        height,
    )
