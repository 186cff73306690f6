"""One frame through the pipeline, fail-closed: detect, track, de-identify, seal.

:class:`FrameProcessor` turns a :class:`~edge_agent.sources.CapturedFrame` into a
:class:`SealedFrame` (the only thing outputs accept) or ``None`` (dropped). Whatever fails, no
original face pixel is emitted:

=================  =====================================================================
failing stage      what leaves (``failure.action`` = ``black`` / ``drop``)
=================  =====================================================================
detect             the whole frame black, sealed with no box / nothing
track              head ROIs of the detections and of the previous frame's tracks black
                   (the whole frame if those cannot be made) / nothing
deidentify (Ue)    every head ROI of the frame black / nothing
seal               nothing (the frame is dropped whatever the action)
anything else      nothing
=================  =====================================================================

Each case is counted (``fail_closed{stage,action}``, ``frames_dropped{stage="failure"}``) and
logged. The ROI message lists only the ROIs that ``Ue`` replaced (the reversible ones).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from edge_agent.deid import Deidentifier
from edge_agent.sources import CapturedFrame
from edge_agent.stats import Stats
from shared.detectors import FaceDetector
from shared.frame_seal import MessageFormat, seal_frame
from shared.geometry import HEAD_MARGIN, Box, expand_to_head
from shared.tracking import IouTracker

__all__ = ["FailureAction", "FrameProcessor", "SealedFrame"]

log = logging.getLogger(__name__)

FailureAction = Literal["black", "drop"]
T = TypeVar("T")


@dataclass(frozen=True)
class SealedFrame:
    """A public frame: de-identified (or blacked out) and carrying its ROI message.

    Attributes:
        index: the capture index (also the frame index in a v1 message).
        rgb: the pixels (``H x W x 3`` uint8); never an original face.
        boxes: the ROIs replaced by ``Ue`` (those the message lists).
        blacked: ROIs blacked out because a stage failed (the whole frame when detection did).
        message: the text hidden in the LSBs.
    """

    index: int
    rgb: np.ndarray
    boxes: tuple[Box, ...]
    blacked: tuple[Box, ...]
    message: str


class _StageError(Exception):
    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{stage}: {cause}")
        self.stage = stage
        self.cause = cause


class FrameProcessor:
    """Detect, track, de-identify and seal frames, one at a time, never failing open.

    Args:
        detector: a face detector plug-in.
        tracker: the IoU tracker.
        deidentifier: ``Ue`` with its noise bank.
        stats: where counts and latencies go.
        head_margin: face box -> head ROI margin (see :func:`shared.geometry.expand_to_head`).
        message_format: ``v1`` (needs camera id and key) or ``paper``.
        camera_id / key: for v1 messages.
        failure_action: ``black`` or ``drop`` (see the module docstring).
    """

    def __init__(
        self,
        detector: FaceDetector,
        tracker: IouTracker,
        deidentifier: Deidentifier,
        stats: Stats,
        *,
        head_margin: float = HEAD_MARGIN,
        message_format: MessageFormat = "v1",
        camera_id: str | None = None,
        key: bytes | None = None,
        failure_action: FailureAction = "black",
    ) -> None:
        if message_format == "v1" and (not camera_id or not key):
            raise ValueError("v1 messages need a camera id and a key")
        self.detector = detector
        self.tracker = tracker
        self.deidentifier = deidentifier
        self.stats = stats
        self.head_margin = head_margin
        self.message_format = message_format
        self.camera_id = camera_id
        self.key = key
        self.failure_action = failure_action
        self.frame_size = (0, 0)

    def _timed(self, stage: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return call()
        except Exception as exc:  # every stage fails closed, whatever it raised
            raise _StageError(stage, exc) from exc
        finally:
            self.stats.observe(stage, time.perf_counter() - start)

    def _seal(self, frame: np.ndarray, boxes: list[Box], index: int) -> str:
        _, text = seal_frame(
            frame,
            boxes,
            message_format=self.message_format,
            camera_id=self.camera_id,
            model_id=self.deidentifier.model_id,
            frame_index=index,
            key=self.key,
            inplace=True,
        )
        return text

    def process(self, captured: CapturedFrame) -> SealedFrame | None:
        """Return the public version of a captured frame, or ``None`` when it is dropped.

        The captured pixels are modified in place (no copy of the raw frame is kept). Never
        raises for a failing stage: failures are handled as the module docstring says.
        """
        frame = captured.rgb
        if not frame.flags.writeable:
            frame = frame.copy()
        height, width = frame.shape[:2]
        self.frame_size = (height, width)
        self.stats.count("frames_processed")
        rois: list[Box] = []
        boxes: list[Box] = []
        try:
            try:
                detections = self._timed("detect", lambda: self.detector.detect(frame))
            except _StageError as failed:
                return self._fail(failed, captured, frame, None)
            face_boxes = [d.box for d in detections]
            self.stats.count("faces_detected", len(face_boxes))
            try:
                tracks = self._timed(
                    "track", lambda: self.tracker.update(face_boxes, width, height)
                )
                rois = [expand_to_head(t.box, width, height, self.head_margin) for t in tracks]
                track_ids = [t.id for t in tracks]
                self.deidentifier.noise.forget(self.tracker.ended)
            except _StageError as failed:
                return self._fail(failed, captured, frame, self._fallback_rois(face_boxes))
            except ValueError as exc:
                failed = _StageError("track", exc)
                return self._fail(failed, captured, frame, self._fallback_rois(face_boxes))
            held = sum(1 for t in tracks if t.missed)
            if held:
                self.stats.count("faces_held", held)
            if rois:
                start = time.perf_counter()
                try:
                    self._timed(
                        "deidentify", lambda: self.deidentifier.apply(frame, rois, track_ids)
                    )
                except _StageError as failed:
                    return self._fail(failed, captured, frame, rois)
                self.stats.observe("ue_per_face", (time.perf_counter() - start) / len(rois))
                self.stats.count("faces_deidentified", len(rois))
                boxes = rois
            try:
                text = self._timed("seal", lambda: self._seal(frame, boxes, captured.index))
            except _StageError as failed:
                for roi in boxes:  # nothing leaves, but be explicit about the ROI pixels
                    frame[roi.y : roi.bottom, roi.x : roi.right] = 0
                self.stats.fail_closed("seal", "drop")
                self.stats.dropped("failure")
                log.error("frame %d dropped: %s", captured.index, failed)
                return None
            return SealedFrame(captured.index, frame, tuple(boxes), (), str(text))
        except Exception as exc:  # an unexpected bug: drop the frame, keep the daemon alive
            self.stats.fail_closed("internal", "drop")
            self.stats.dropped("failure")
            log.exception("frame %d dropped after an unexpected error: %s", captured.index, exc)
            return None

    def _fallback_rois(self, face_boxes: list[Box]) -> list[Box] | None:
        """Head ROIs of this frame's detections and of the tracks alive before it (faces the
        detector may have missed now); ``None`` (the whole frame) if they cannot be made."""
        height, width = self.frame_size
        try:
            boxes = face_boxes + [t.box for t in self.tracker.tracks]
            return [expand_to_head(b, width, height, self.head_margin) for b in boxes]
        except Exception:  # noqa: BLE001 (a box outside the frame: black everything)
            return None

    def _fail(
        self,
        failed: _StageError,
        captured: CapturedFrame,
        frame: np.ndarray,
        rois: list[Box] | None,
    ) -> SealedFrame | None:
        """Black out (``rois`` None: the whole frame) and seal with no box, or drop."""
        action = self.failure_action
        self.stats.fail_closed(failed.stage, action)
        log.error(
            "frame %d: %s failed (%s); %s",
            captured.index,
            failed.stage,
            failed.cause,
            "blacking out " + ("the frame" if rois is None else f"{len(rois)} ROIs")
            if action == "black"
            else "dropping it",
        )
        height, width = frame.shape[:2]
        if rois is None:
            frame[...] = 0
            blacked = (Box(0, 0, width, height),)
        else:
            for roi in rois:
                frame[roi.y : roi.bottom, roi.x : roi.right] = 0
            blacked = tuple(rois)
        if action == "drop":
            self.stats.dropped("failure")
            return None
        try:
            text = self._seal(frame, [], captured.index)
        except Exception as exc:  # noqa: BLE001
            self.stats.fail_closed("seal", "drop")
            self.stats.dropped("failure")
            log.error(
                "frame %d dropped: sealing the blacked-out frame failed: %s", captured.index, exc
            )
            return None
        return SealedFrame(captured.index, frame, (), blacked, text)
