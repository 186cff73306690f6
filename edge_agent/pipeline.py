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
seal faces         the frame as usual; the faces not sealed stay ``Ud``-only
                   (``faces_unsealed{reason="capacity"|"error"}``), never dropped
anything else      nothing
=================  =====================================================================

Each case is counted (``fail_closed{stage,action}``, ``frames_dropped{stage="failure"}``) and
logged. The ROI message lists only the ROIs that ``Ue`` replaced (the reversible ones). With a
:class:`~edge_agent.face_sealing.FaceSealer`, the original pixels of those ROIs are copied before
``Ue`` replaces them and, once it has, sealed to the authority's keys into the v1 message
(:mod:`edge_agent.face_sealing`); a frame whose ``Ue`` failed seals nothing (its ROIs are black).

Safety margins (:mod:`edge_agent.margins`, :mod:`edge_agent.lookahead`): with a
:class:`~edge_agent.margins.CoverPlan`, privacy zones and weak detections are covered
irreversibly right after detection (never listed in the message); the look-ahead buffer runs
the detector when a frame arrives and calls :meth:`FrameProcessor.process` N frames later with
those detections and the boxes back-filled from later frames, which are tracked and replaced by
``Ue`` like any detection (``faces_backfilled``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from edge_agent.deid import Deidentifier
from edge_agent.face_sealing import FaceSealer, SealedFaces, copy_originals
from edge_agent.margins import CoverPlan
from edge_agent.sources import CapturedFrame
from edge_agent.stats import Stats
from shared import stego
from shared.detectors import FaceDetection, FaceDetector
from shared.frame_seal import MessageFormat, seal_frame
from shared.geometry import HEAD_MARGIN, Box, expand_to_head
from shared.roi_message import new_run_id
from shared.sealed_faces import SealContext
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
        message: the text hidden in the LSBs (with sealed faces: encrypted, never in clear).
        sei_message: the text the lossy stream's SEI carries instead of ``message``, when they
            differ (``sealed_faces.sei``: the faces in another codec, or none); its tag is
            computed over the same pixels, so it verifies against the lossless frame.
    """

    index: int
    rgb: np.ndarray
    boxes: tuple[Box, ...]
    blacked: tuple[Box, ...]
    message: str
    sei_message: str | None = None

    @property
    def lossy_message(self) -> str:
        """What a lossy output carries in the frame's SEI."""
        return self.message if self.sei_message is None else self.sei_message


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
        run_id: this run's id in every v1 message and sealed payload (default: a fresh
            :func:`shared.roi_message.new_run_id`, so two starts never share frame ids).
        failure_action: ``black`` or ``drop`` (see the module docstring).
        face_sealer: seal the replaced faces' original pixels into the message (v1 only).
        cover_plan: privacy zones and the low-confidence tier (:mod:`edge_agent.margins`).

    Raises:
        ValueError: v1 without a camera id or key; a face sealer with the paper format.
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
        face_sealer: FaceSealer | None = None,
        cover_plan: CoverPlan | None = None,
        run_id: str | None = None,
    ) -> None:
        if message_format == "v1" and (not camera_id or not key):
            raise ValueError("v1 messages need a camera id and a key")
        if face_sealer is not None and message_format != "v1":
            raise ValueError("sealed faces need v1 messages (the paper format has no place)")
        self.detector = detector
        self.tracker = tracker
        self.deidentifier = deidentifier
        self.stats = stats
        self.head_margin = head_margin
        self.message_format = message_format
        self.camera_id = camera_id
        self.run_id = (run_id or new_run_id()) if message_format == "v1" else None
        self.key = key
        self.failure_action = failure_action
        self.face_sealer = face_sealer
        self.cover_plan = cover_plan
        self.frame_size = (0, 0)

    def _timed(self, stage: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return call()
        except Exception as exc:  # every stage fails closed, whatever it raised
            raise _StageError(stage, exc) from exc
        finally:
            self.stats.observe(stage, time.perf_counter() - start)

    def _seal_context(self, index: int) -> SealContext:
        """What frame ``index``'s sealed faces are bound to (as its v1 message says)."""
        return SealContext(self.camera_id or "", self.deidentifier.model_id, index, self.run_id)

    def _seal_faces(
        self, originals: list[np.ndarray], boxes: list[Box], frame: np.ndarray, index: int
    ) -> SealedFaces | None:
        """The sealed faces of the frame's replaced ROIs (timed; never raises)."""
        if self.face_sealer is None:
            return None
        start = time.perf_counter()
        context = self._seal_context(index)
        try:
            return self.face_sealer.seal(originals, boxes, context, frame.shape)
        finally:
            self.stats.observe("seal_faces", time.perf_counter() - start)

    def _seal(
        self, frame: np.ndarray, boxes: list[Box], index: int, faces: SealedFaces | None = None
    ) -> tuple[str, str | None]:
        """Embed the message; return it and the SEI's own text (``None``: the same).

        Raises:
            ValueError, shared.roi_message.RoiMessageError, shared.stego.MessageTooLargeError:
                as :func:`shared.frame_seal.seal_frame` (sealed faces that do not fit after all
                are left out instead, counted and logged).
        """
        if faces is not None and faces.payload is not None:
            try:
                return self._write_message(frame, boxes, index, faces)
            except stego.MessageTooLargeError as exc:
                log.error("frame %d: sealed faces left out, no room after all: %s", index, exc)
                faces = faces.without_faces()
        return self._write_message(frame, boxes, index, faces)

    def _write_message(
        self, frame: np.ndarray, boxes: list[Box], index: int, faces: SealedFaces | None
    ) -> tuple[str, str | None]:
        _, text = seal_frame(
            frame,
            boxes,
            message_format=self.message_format,
            camera_id=self.camera_id,
            model_id=self.deidentifier.model_id,
            frame_index=index,
            run_id=self.run_id,
            key=self.key,
            sealed=faces.payload if faces is not None else None,
            inplace=True,
        )
        if faces is None or self.face_sealer is None:
            return text, None
        context = self._seal_context(index)
        sei_text = self.face_sealer.sei_message(faces, boxes, context, frame)
        self.face_sealer.record(faces)
        return text, sei_text

    def process(
        self,
        captured: CapturedFrame,
        *,
        detections: Sequence[FaceDetection] | Exception | None = None,
        backfilled: Sequence[Box] = (),
    ) -> SealedFrame | None:
        """Return the public version of a captured frame, or ``None`` when it is dropped.

        The captured pixels are modified in place (no copy of the raw frame is kept). Never
        raises for a failing stage: failures are handled as the module docstring says.
        ``detections`` are the frame's, found earlier (an exception: detection failed then);
        ``None`` runs the detector now. ``backfilled`` are face boxes known from later frames
        (the look-ahead), tracked and de-identified like detections.
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
                if isinstance(detections, Exception):
                    raise _StageError("detect", detections)
                if detections is None:
                    detections = self._timed("detect", lambda: self.detector.detect(frame))
            except _StageError as failed:
                return self._fail(failed, captured, frame, None)
            if self.cover_plan is not None:
                detections, weak = self.cover_plan.split(detections)
                zones, covered = self.cover_plan.apply(frame, weak)
                if zones:
                    self.stats.count("zones_covered", zones)
                if covered:
                    self.stats.count("faces_low_confidence", covered)
            face_boxes = [d.box for d in detections]
            self.stats.count("faces_detected", len(face_boxes))
            if backfilled:
                face_boxes += backfilled
                self.stats.count("faces_backfilled", len(backfilled))
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
            originals: list[np.ndarray] = []  # in memory only, for the face sealer
            if rois:
                if self.face_sealer is not None:
                    originals = copy_originals(frame, rois)
                start = time.perf_counter()
                try:
                    self._timed(
                        "deidentify", lambda: self.deidentifier.apply(frame, rois, track_ids)
                    )
                except _StageError as failed:
                    originals.clear()
                    return self._fail(failed, captured, frame, rois)
                self.stats.observe("ue_per_face", (time.perf_counter() - start) / len(rois))
                self.stats.count("faces_deidentified", len(rois))
                boxes = rois
            faces = self._seal_faces(originals, boxes, frame, captured.index)
            originals.clear()
            try:
                text, sei_text = self._timed(
                    "seal", lambda: self._seal(frame, boxes, captured.index, faces)
                )
            except _StageError as failed:
                for roi in boxes:  # nothing leaves, but be explicit about the ROI pixels
                    frame[roi.y : roi.bottom, roi.x : roi.right] = 0
                self.stats.fail_closed("seal", "drop")
                self.stats.dropped("failure")
                log.error("frame %d dropped: %s", captured.index, failed)
                return None
            return SealedFrame(captured.index, frame, tuple(boxes), (), text, sei_text)
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
            text, _ = self._seal(frame, [], captured.index)
        except Exception as exc:  # noqa: BLE001
            self.stats.fail_closed("seal", "drop")
            self.stats.dropped("failure")
            log.error(
                "frame %d dropped: sealing the blacked-out frame failed: %s", captured.index, exc
            )
            return None
        return SealedFrame(captured.index, frame, (), blacked, text)
