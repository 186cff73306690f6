"""What every face detector plug-in is: RGB ``uint8`` frame in, face boxes with scores out.

A detector is an object with ``detect(frame) -> list[FaceDetection]``; :class:`FaceDetector`
is the base class plug-ins derive from. The options every detector understands
(:class:`DetectorOptions`: score threshold, minimum face size, NMS overlap, a cap on the
detector's input size) are applied the same way by all of them; :func:`finish_detections`
clips boxes to the frame and drops what is too small or too unsure.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shared.geometry import Box, clip_box

__all__ = [
    "DetectorError",
    "DetectorNotFoundError",
    "DetectorOptions",
    "DetectorUnavailableError",
    "FaceDetection",
    "FaceDetector",
    "check_frame",
    "finish_detections",
]

log = logging.getLogger(__name__)


class DetectorError(RuntimeError):
    """A detector failed on a frame (the frame is not usable, or the backend raised)."""


class DetectorNotFoundError(ValueError):
    """No detector plug-in is registered under the requested key."""


class DetectorUnavailableError(ImportError):
    """A registered detector needs a package that is not installed (the message names it)."""


@dataclass(frozen=True, slots=True)
class FaceDetection:
    """One face: its box in frame pixels (clipped to the frame) and the detector's score."""

    box: Box
    score: float


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """Options every detector honours.

    Attributes:
        score_threshold: faces scoring below this are dropped (0..1).
        min_face_size: faces whose shorter side is below this many pixels are dropped.
        nms_threshold: overlap (IoU) above which the weaker of two boxes is suppressed.
        max_input_side: frames whose longer side exceeds this are shrunk before detection
            (boxes are scaled back); ``None`` runs on the full frame.
    """

    score_threshold: float = 0.6
    min_face_size: int = 8
    nms_threshold: float = 0.3
    max_input_side: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1, got {self.min_face_size}")
        if not 0.0 < self.nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {self.nms_threshold}")
        if self.max_input_side is not None and self.max_input_side < 32:
            raise ValueError(f"max_input_side must be >= 32, got {self.max_input_side}")


def check_frame(frame: np.ndarray) -> None:
    """Raise :class:`DetectorError` unless ``frame`` is an ``H x W x 3`` ``uint8`` array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        kind = getattr(frame, "dtype", type(frame).__name__)
        raise DetectorError(f"expected an RGB uint8 frame, got {kind}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise DetectorError(f"expected an H x W x 3 RGB frame, got shape {frame.shape}")


def finish_detections(
    rows: Iterable[tuple[float, float, float, float, float]],
    frame_width: int,
    frame_height: int,
    options: DetectorOptions,
    scale: float = 1.0,
) -> list[FaceDetection]:
    """Turn ``(x0, y0, x1, y1, score)`` rows into clipped, filtered detections, best first.

    ``scale`` divides the coordinates (for a detector that ran on a shrunk frame).
    """
    found = []
    for x0, y0, x1, y1, score in rows:
        if not np.isfinite([x0, y0, x1, y1, score]).all() or score < options.score_threshold:
            continue
        box = clip_box(x0 / scale, y0 / scale, x1 / scale, y1 / scale, frame_width, frame_height)
        if box is None or min(box.w, box.h) < options.min_face_size:
            continue
        found.append(FaceDetection(box, float(score)))
    found.sort(key=lambda d: d.score, reverse=True)
    return found


class FaceDetector(ABC):
    """Base of detector plug-ins. Subclasses implement :meth:`_detect`.

    Instances are used from one thread at a time.
    """

    key: str = ""

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()

    def detect(self, frame: np.ndarray) -> list[FaceDetection]:
        """Find the faces of an RGB ``uint8`` frame, best score first.

        Raises:
            DetectorError: the frame is not ``H x W x 3`` ``uint8``, or the backend failed.
        """
        check_frame(frame)
        height, width = frame.shape[:2]
        scale = 1.0
        limit = self.options.max_input_side
        image = frame
        if limit is not None and max(width, height) > limit:
            scale = limit / float(max(width, height))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            import cv2  # local: base stays importable without OpenCV for typing users

            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        try:
            rows = self._detect(np.ascontiguousarray(image))
        except DetectorError:
            raise
        except Exception as exc:  # the backend's own errors, whatever their type
            raise DetectorError(f"{self.key or type(self).__name__} failed: {exc}") from exc
        return finish_detections(rows, width, height, self.options, scale)

    @abstractmethod
    def _detect(self, frame: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Return ``(x0, y0, x1, y1, score)`` rows in ``frame``'s pixels (unfiltered)."""
