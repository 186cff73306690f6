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
    captured: CapturedFrame
    detections: list[FaceDetection] | Exception
    backfilled: list[Box] = field(default_factory=list)


class LookaheadBuffer:
    """Delay frames by ``frames`` and back-fill the boxes of tracks that start later.

    Args:
        processor: the edge's frame processor (its detector, cover plan and stats are used).
        frames: how many frames a frame waits (0: no look-ahead).
        hold_growth: fraction per side a back-filled box grows per frame back (max 3 steps).

    Raises:
        ValueError: ``frames`` negative.
    """

    def __init__(self, processor: FrameProcessor, frames: int, hold_growth: float = 0.1) -> None:
        if frames < 0:
            raise ValueError(f"frames must be >= 0, got {frames}")
        self.processor = processor
        self.frames = frames
        self.hold_growth = hold_growth
        tracker = processor.tracker
        self._tracker = IouTracker(tracker.iou_threshold, tracker.max_missed, 0.0)
        self._held: deque[_Held] = deque()

    def push(self, captured: CapturedFrame) -> list[SealedFrame]:
        """Take a new frame; return the frames that leave now (0 or 1; dropped ones omitted)."""
        if self.frames == 0:
            return self._emit(self.processor.process(captured))
        held = _Held(captured, self._detect(captured))
        if not isinstance(held.detections, Exception):
            self._backfill(held)
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

    def _strong(self, detections: list[FaceDetection]) -> list[Box]:
        plan = self.processor.cover_plan
        strong = plan.split(detections)[0] if plan is not None else detections
        return [d.box for d in strong]

    def _backfill(self, held: _Held) -> None:
        """Back-fill the first box of each track starting in ``held`` into the frames held."""
        assert not isinstance(held.detections, Exception)
        height, width = held.captured.rgb.shape[:2]
        boxes = self._strong(held.detections)
        try:
            tracks = self._tracker.update(boxes, width, height)
        except ValueError as exc:  # a box outside the frame: the processor fails it closed
            log.warning("frame %d: look-ahead tracking failed: %s", held.captured.index, exc)
            return
        threshold = self._tracker.iou_threshold
        for track in tracks:
            if track.age != 0 or track.detection is None:
                continue
            first = track.box
            for back, earlier in enumerate(reversed(self._held), start=1):
                if isinstance(earlier.detections, Exception):
                    continue  # that frame is black anyway
                h, w = earlier.captured.rgb.shape[:2]
                grow = self.hold_growth * min(back, _MAX_GROWTH_STEPS)
                dx, dy = first.w * grow, first.h * grow
                box = clip_box(
                    first.x - dx, first.y - dy, first.right + dx, first.bottom + dy, w, h
                )
                if box is None:
                    break
                seen = self._strong(earlier.detections) + earlier.backfilled
                if any(iou(box, other) >= threshold for other in seen):
                    break  # covered there already (and before, by its own track)
                earlier.backfilled.append(box)
