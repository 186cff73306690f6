"""What every face detector plug-in is: RGB ``uint8`` frame in, face boxes with scores out.

A detector is an object with ``detect(frame) -> list[FaceDetection]``; :class:`FaceDetector`
is the base class plug-ins derive from. The options every detector understands
(:class:`DetectorOptions`: score threshold, minimum face size, NMS overlap, a cap on the
detector's input size, a second low-light pass) are applied the same way by all of them;
:func:`finish_detections` clips boxes to the frame and drops what is too small or too unsure.

Low light: surveillance scenes hold faces in shadow that a detector trained on well-lit photos
scores too low. With ``low_light_gamma`` set, the detector also runs on a brightened copy of the
frame (each value ``v -> 255 * (v / 255) ** gamma``) and the two passes are merged by
non-maximum suppression, so recall can only grow (at the cost of a second pass). Measured on
``hamilton_640x360.mp4`` (stage and dark audience, 150 frames), YuNet at 0.6 with gamma 0.5:
frames with a face another detector finds uncovered fell from 24 to 4 (docs/EVALUATION.md).
With ``low_light_max_luma`` set, the second pass runs only on images (the frame, or a region of
it, see below) whose mean luma is at most that value (:func:`is_dark`): a bright frame costs one
pass.

Large frames: with ``max_input_side`` set, a frame larger than that (and than
``shrink_above_side``, when set: smaller frames keep the full-size path) is detected shrunk;
with ``full_res_regions`` also set, faces are then refined at (up to) full resolution in
regions around the shrunk pass's candidates and the previous frames' faces, and a rotating
tile of the full-resolution frame looks for faces too small for the shrunk pass
(:mod:`shared.detectors.regions`).

Detectors that locate facial landmarks (YuNet, CenterFace) also return them: 5 points in frame
pixels, in the order right eye, left eye, nose tip, right mouth corner, left mouth corner (the
subject's right, i.e. the image's left first), which is what face recognizers align with.
Others (MTCNN here) leave ``landmarks`` as ``None``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from shared.geometry import Box, clip_box, iou

__all__ = [
    "DEFAULT_LOW_LIGHT_GAMMA",
    "DetectorError",
    "DetectorNotFoundError",
    "DetectorOptions",
    "DetectorUnavailableError",
    "FaceDetection",
    "FaceDetector",
    "RawDetection",
    "check_frame",
    "finish_detections",
    "is_dark",
    "merge_detections",
]

log = logging.getLogger(__name__)


class DetectorError(RuntimeError):
    """A detector failed on a frame (the frame is not usable, or the backend raised)."""


class DetectorNotFoundError(ValueError):
    """No detector plug-in is registered under the requested key."""


class DetectorUnavailableError(ImportError):
    """A registered detector needs a package that is not installed (the message names it)."""


#: The edge's default ``low_light_gamma`` (see the module docstring).
DEFAULT_LOW_LIGHT_GAMMA = 0.5

#: Number of landmarks a detection carries when its detector locates them.
LANDMARK_COUNT = 5

#: What a plug-in's ``_detect`` returns per face: ``(x0, y0, x1, y1, score)``, optionally
#: followed by the landmarks (``LANDMARK_COUNT x 2``, or a flat ``x, y, x, y, ...`` sequence) in
#: the same pixels as the box.
RawDetection = (
    tuple[float, float, float, float, float]
    | tuple[float, float, float, float, float, np.ndarray | None]
)


@dataclass(frozen=True, slots=True)
class FaceDetection:
    """One face: its box in frame pixels (clipped to the frame), the detector's score and, when
    the detector locates them, its landmarks.

    Attributes:
        box: the face box.
        score: the detector's confidence (0..1).
        landmarks: ``5 x 2`` float32 points in frame pixels (right eye, left eye, nose tip, right
            mouth corner, left mouth corner; not clipped, a point may lie outside the frame), or
            ``None`` when the detector gives none. Not part of equality.
    """

    box: Box
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """Options every detector honours.

    Attributes:
        score_threshold: faces scoring below this are dropped (0..1).
        min_face_size: faces whose shorter side is below this many pixels are dropped.
        nms_threshold: overlap (IoU) above which the weaker of two boxes is suppressed.
        max_input_side: frames whose longer side exceeds this are shrunk before detection
            (boxes are scaled back); ``None`` runs on the full frame.
        low_light_gamma: when set (0 < gamma < 1), a second pass on the frame brightened by
            this gamma, merged with the first (module docstring); ``None``: one pass.
        low_light_max_luma: the low-light pass runs only on images whose mean luma (0..255)
            is at most this; ``None``: on every image.
        full_res_regions: when a frame is shrunk (``max_input_side``), refine faces at full
            resolution in regions (module docstring); false: the shrunk pass alone.
        candidate_threshold: detections scoring at least this seed regions: the shrunk
            pass's in this frame, and every pass's in the last ``region_memory`` frames.
        region_face_side: a region is shrunk so that its seed face's longer side is at most
            this many pixels (never enlarged); ``None``: regions at full resolution.
        region_memory: frames (>= 1) after the last one a face was found in during which it
            still seeds a region.
        tile_grid: the full-resolution frame is cut into ``tile_grid x tile_grid`` tiles and one
            of them, in turn, is searched each frame; 0: no tiles.
        region_seed_side: a face seeds a region only while its longer side in the shrunk
            image is below this many pixels (bigger ones the shrunk pass finds by itself);
            ``None``: every face.
        shrink_above_side: with ``max_input_side``, frames whose longer side is at most this
            are still detected at full size (small frames keep their full-size path);
            ``None``: every frame larger than ``max_input_side`` is shrunk.
    """

    score_threshold: float = 0.6
    min_face_size: int = 8
    nms_threshold: float = 0.3
    max_input_side: int | None = None
    low_light_gamma: float | None = None
    low_light_max_luma: float | None = None
    full_res_regions: bool = False
    candidate_threshold: float = 0.3
    region_face_side: int | None = None
    region_memory: int = 5
    tile_grid: int = 0
    region_seed_side: int | None = None
    shrink_above_side: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1, got {self.min_face_size}")
        if not 0.0 < self.nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {self.nms_threshold}")
        if self.max_input_side is not None and self.max_input_side < 32:
            raise ValueError(f"max_input_side must be >= 32, got {self.max_input_side}")
        if self.low_light_gamma is not None and not 0.0 < self.low_light_gamma < 1.0:
            raise ValueError(f"low_light_gamma must be in (0, 1), got {self.low_light_gamma}")
        luma = self.low_light_max_luma
        if luma is not None and not 0.0 <= luma <= 255.0:
            raise ValueError(f"low_light_max_luma must be in [0, 255], got {luma}")
        if not 0.0 <= self.candidate_threshold <= 1.0:
            raise ValueError(
                f"candidate_threshold must be in [0, 1], got {self.candidate_threshold}"
            )
        if self.region_face_side is not None and self.region_face_side < 16:
            raise ValueError(f"region_face_side must be >= 16, got {self.region_face_side}")
        if self.region_memory < 1 or self.tile_grid < 0:
            raise ValueError("region_memory must be >= 1 and tile_grid >= 0")
        for name in ("region_seed_side", "shrink_above_side"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def check_frame(frame: np.ndarray) -> None:
    """Raise :class:`DetectorError` unless ``frame`` is an ``H x W x 3`` ``uint8`` array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        kind = getattr(frame, "dtype", type(frame).__name__)
        raise DetectorError(f"expected an RGB uint8 frame, got {kind}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise DetectorError(f"expected an H x W x 3 RGB frame, got shape {frame.shape}")


def is_dark(image: np.ndarray, max_luma: float | None) -> bool:
    """Whether ``image`` (RGB ``uint8``) is dark enough for the low-light pass: its mean luma
    (BT.601, on every 4th pixel of every 4th row: under 1 ms at 1080p) is at most
    ``max_luma``; ``None``: always."""
    if max_luma is None:
        return True
    import cv2  # local, as in detect

    small = min(image.shape[:2]) < 4
    nearest = cv2.INTER_NEAREST
    sample = image if small else cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=nearest)
    red, green, blue = cv2.mean(np.ascontiguousarray(sample))[:3]
    return 0.299 * red + 0.587 * green + 0.114 * blue <= max_luma


def _landmarks(raw: object, scale: float) -> np.ndarray | None:
    """``LANDMARK_COUNT x 2`` float32 points divided by ``scale``; ``None`` for none or any
    non-finite point.

    Raises:
        DetectorError: the plug-in gave landmarks of another shape (a plug-in bug).
    """
    if raw is None:
        return None
    points = np.asarray(raw, dtype=np.float64)
    if points.size != 2 * LANDMARK_COUNT:
        raise DetectorError(
            f"expected {LANDMARK_COUNT} landmarks (x, y), got an array of shape {points.shape}"
        )
    if not np.isfinite(points).all():
        return None
    return (points.reshape(LANDMARK_COUNT, 2) / scale).astype(np.float32)


def finish_detections(
    rows: Iterable[RawDetection],
    frame_width: int,
    frame_height: int,
    options: DetectorOptions,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
    threshold: float | None = None,
) -> list[FaceDetection]:
    """Turn ``(x0, y0, x1, y1, score[, landmarks])`` rows into clipped, filtered detections,
    best first.

    ``scale`` divides the coordinates (for a detector that ran on a shrunk frame), then
    ``offset`` ``(x, y)`` is added (for one that ran on a region). ``threshold`` replaces the
    options' score threshold.

    Raises:
        DetectorError: a row's landmarks are not ``LANDMARK_COUNT`` points.
    """
    found = []
    limit = options.score_threshold if threshold is None else threshold
    ox, oy = offset
    for row in rows:
        x0, y0, x1, y1, score = row[:5]
        if not np.isfinite([x0, y0, x1, y1, score]).all() or score < limit:
            continue
        box = clip_box(
            x0 / scale + ox, y0 / scale + oy, x1 / scale + ox, y1 / scale + oy,
            frame_width, frame_height,
        )  # fmt: skip
        if box is None or min(box.w, box.h) < options.min_face_size:
            continue
        marks = _landmarks(row[5], scale) if len(row) > 5 else None
        if marks is not None and (ox or oy):
            marks = marks + np.array([ox, oy], np.float32)
        found.append(FaceDetection(box, float(score), marks))
    found.sort(key=lambda d: d.score, reverse=True)
    return found


def merge_detections(*passes: Sequence[FaceDetection], iou_threshold: float) -> list[FaceDetection]:
    """Greedy non-maximum suppression over the detections of several passes on one frame:
    best score first, a detection overlapping a kept one by more than ``iou_threshold`` (IoU)
    is dropped."""
    kept: list[FaceDetection] = []
    for candidate in sorted(
        (d for found in passes for d in found), key=lambda d: d.score, reverse=True
    ):
        if all(iou(candidate.box, k.box) <= iou_threshold for k in kept):
            kept.append(candidate)
    return kept


@lru_cache(maxsize=4)
def _gamma_table(gamma: float) -> np.ndarray:
    """Lookup table ``v -> round(255 * (v / 255) ** gamma)`` for uint8 values."""
    values = np.arange(256, dtype=np.float64) / 255.0
    return np.round(255.0 * values**gamma).astype(np.uint8)


class FaceDetector(ABC):
    """Base of detector plug-ins. Subclasses implement :meth:`_detect`.

    Instances are used from one thread at a time.
    """

    key: str = ""

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        self._regions: object | None = None  # a regions.RegionSearch, made on first use

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
        above = self.options.shrink_above_side
        if limit is not None and max(width, height) > max(limit, above or 0):
            scale = limit / float(max(width, height))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            import cv2  # local: base stays importable without OpenCV for typing users

            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if scale == 1.0 or not self.options.full_res_regions:
            return self.passes(image, width, height, scale)
        from shared.detectors.regions import RegionSearch  # local: regions imports this module

        search = getattr(self, "_regions", None)  # a plug-in may skip our __init__
        if not isinstance(search, RegionSearch):
            search = self._regions = RegionSearch(self)
        return search.detect(frame, image, scale)

    def passes(
        self,
        image: np.ndarray,
        width: int,
        height: int,
        scale: float = 1.0,
        offset: tuple[int, int] = (0, 0),
        threshold: float | None = None,
    ) -> list[FaceDetection]:
        """The detections of ``image`` (the frame, or its region at ``offset``, shrunk by
        ``scale``) in the frame's ``width x height`` pixels: one pass, plus the low-light pass
        when it is configured and the image is dark (module docstring).

        Raises:
            DetectorError: the backend failed or returned malformed rows.
        """
        found = self._one_pass(image, width, height, scale, offset, threshold)
        gamma = self.options.low_light_gamma
        if gamma is None or not is_dark(image, self.options.low_light_max_luma):
            return found
        import cv2  # local, as above; cv2.LUT: 2 ms at 1080p where numpy indexing takes 15

        brightened = self._one_pass(
            cv2.LUT(image, _gamma_table(gamma)), width, height, scale, offset, threshold
        )
        return merge_detections(found, brightened, iou_threshold=self.options.nms_threshold)

    def _one_pass(
        self,
        image: np.ndarray,
        width: int,
        height: int,
        scale: float,
        offset: tuple[int, int] = (0, 0),
        threshold: float | None = None,
    ) -> list[FaceDetection]:
        """Run the backend on ``image`` (see :meth:`passes`) and finish its rows in the frame's
        ``width x height`` pixels.

        Raises:
            DetectorError: the backend failed or returned malformed rows.
        """
        try:
            rows = self._detect(np.ascontiguousarray(image))
        except DetectorError:
            raise
        except Exception as exc:  # the backend's own errors, whatever their type
            raise DetectorError(f"{self.key or type(self).__name__} failed: {exc}") from exc
        try:
            return finish_detections(rows, width, height, self.options, scale, offset, threshold)
        except DetectorError as exc:
            raise DetectorError(f"{self.key or type(self).__name__}: {exc}") from exc

    @abstractmethod
    def _detect(self, frame: np.ndarray) -> list[RawDetection]:
        """Return ``(x0, y0, x1, y1, score[, landmarks])`` rows in ``frame``'s pixels
        (unfiltered)."""
