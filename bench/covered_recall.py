"""Covered recall: the share of a reference detector's faces the edge agent covered, per frame.

What privacy needs is not that each detector call finds each face, but that every face leaving
the edge is covered in its frame, by whatever the agent has: a detection, a track held through
a miss (moving on at its velocity), a box back-filled by the look-ahead from a later frame's
detection, a weak detection blurred by the low-confidence tier. So the frames go through the
edge's own path (``edge_agent.app.build_processor`` and ``build_lookahead``, never a copy), and
each reference face is looked for among the boxes the agent covered in that frame: its ``Ue``
ROIs (the message's boxes), the low-confidence ROIs it blurred, the boxes it blacked out.

When is a face covered by such a box? The boxes are head ROIs (the face box grown by
``head_margin`` per side, 1.5x its side with the default 0.25), so IoU against the reference
face box is no test (a face box wholly inside its own head ROI has IoU 0.44). A face counts as
*covered* when its 5 landmarks (eyes, nose tip, mouth corners: what identifies it) all lie in
one box, those in the frame (in its frame-clipped box) that is; a reference without landmarks:
at least ``INSIDE`` of its box. Two more counts are
printed: the strict one, at least ``INSIDE`` of the reference box inside one box (two detectors,
or one at two scales, disagree on where a large face's box ends: forehead and chin), and the
lenient one, the reference box's centre inside a box. A frame the agent dropped left nothing to
see: its faces count as covered (the drops are reported).

The full-size reference has false positives of its own, which no other path reproduces: at
1080p on clips upscaled from 640x360, YuNet scores the back of a head, a torso or a blurred
background at 0.6-0.7 in boxes of 300-600 px (looked at, on mrsingh63_crowd). So the faces are
counted once more, restricted to those *confirmed* by a detector of another family
(``CONFIRM_DETECTOR``, the oracle of ``bench/leaks.py``: a box of its own with IoU at least
``CONFIRM_IOU``).

Used by ``bench/detectors.py --covered``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_agent.app import build_lookahead, build_processor
from edge_agent.config import EdgeSettings
from edge_agent.margins import CoverPlan
from edge_agent.sources import CapturedFrame
from shared.detectors import (
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetection,
    FaceDetector,
    create_detector,
)
from shared.geometry import Box, expand_to_head, iou

__all__ = [
    "INSIDE",
    "AgentCover",
    "Counts",
    "agent_cover",
    "confirmed_faces",
    "count_covered",
    "reference_faces",
]

log = logging.getLogger(__name__)

#: A reference face is covered by a box holding at least this share of its area.
INSIDE = 0.9
#: The second detector family (and its score) that confirms a reference face; the overlap.
CONFIRM_DETECTOR, CONFIRM_SCORE, CONFIRM_IOU = "centerface", 0.5, 0.3
KEY = b"bench-covered-camera-key-0123456789"
NOISE_SECRET = b"bench-covered-noise"


@dataclass
class _RecordingPlan(CoverPlan):
    """The agent's cover plan, also noting the head ROIs of the weak detections it covers, per
    frame (keyed by the frame array's ``id``: the processor seals that same array)."""

    weak_rois: dict[int, list[Box]] = field(default_factory=dict, repr=False)

    def apply(self, frame: np.ndarray, weak: Sequence[FaceDetection]) -> tuple[int, int]:
        height, width = frame.shape[:2]
        self.weak_rois[id(frame)] = [
            expand_to_head(d.box, width, height, self.head_margin) for d in weak
        ]
        return super().apply(frame, weak)


@dataclass(frozen=True)
class AgentCover:
    """What the agent covered: per frame index, its boxes (absent: the frame was dropped);
    the agent's stats snapshot; the wall time of the run (s); the detector backend's calls
    and the pixels it was given (what detection costs, whatever the machine's load)."""

    boxes: dict[int, list[Box]]
    stats: dict
    seconds: float
    calls: int = 0
    pixels: int = 0


def agent_cover(
    frames: Sequence[np.ndarray],
    settings: EdgeSettings,
    detector: FaceDetector | None = None,
) -> AgentCover:
    """Run ``frames`` through the edge's frame path and look-ahead as ``settings`` make them
    (``detector``: another detector than the settings' plug-in); return what was covered.

    Raises:
        as :func:`edge_agent.app.build_processor` (the model, the detector, the key).
    """
    processor = build_processor(settings, detector=detector, key=KEY, noise_secret=NOISE_SECRET)
    plan = processor.cover_plan
    recording = None
    if plan is not None:
        values = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan) if f.init}
        recording = processor.cover_plan = _RecordingPlan(**values)
    lookahead = build_lookahead(settings, processor)
    boxes: dict[int, list[Box]] = {}
    cost = [0, 0]  # the backend's calls and pixels
    backend = processor.detector._detect

    def counted(image: np.ndarray) -> list:
        cost[0] += 1
        cost[1] += image.shape[0] * image.shape[1]
        return backend(image)

    processor.detector._detect = counted  # type: ignore[method-assign]

    def take(sealed_frames: list) -> None:
        for sealed in sealed_frames:
            weak = recording.weak_rois.pop(id(sealed.rgb), []) if recording else []
            boxes[sealed.index] = [*sealed.boxes, *sealed.blacked, *weak]

    start = time.perf_counter()
    for index, rgb in enumerate(frames):
        take(lookahead.push(CapturedFrame(index, rgb.copy(), 0.0)))
    take(lookahead.flush())
    seconds = time.perf_counter() - start
    return AgentCover(boxes, processor.stats.snapshot(), seconds, *cost)


def _inside_share(face: Box, box: Box) -> float:
    ix = max(0, min(face.right, box.right) - max(face.x, box.x))
    iy = max(0, min(face.bottom, box.bottom) - max(face.y, box.y))
    return ix * iy / face.area if face.area else 0.0


def _holds(box: Box, x: float, y: float) -> bool:
    return box.x <= x <= box.right and box.y <= y <= box.bottom


def _landmarks_inside(face: FaceDetection, box: Box) -> bool:
    """Whether ``box`` holds the landmarks of ``face`` that lie in its (frame-clipped) box;
    none there: whether it holds ``INSIDE`` of the box."""
    points = [] if face.landmarks is None else [(float(x), float(y)) for x, y in face.landmarks]
    points = [(x, y) for x, y in points if _holds(face.box, x, y)]  # off-frame: nothing to see
    if not points:
        return _inside_share(face.box, box) >= INSIDE
    return all(_holds(box, x, y) for x, y in points)


@dataclass(frozen=True)
class Counts:
    """Reference faces, and how many were covered (landmarks), held at least ``INSIDE`` of
    their box in one covered box (strict), had their centre in one (lenient)."""

    faces: int = 0
    covered: int = 0
    strict: int = 0
    centre: int = 0

    def row(self) -> str:
        """The faces, then the three shares, as table cells."""
        faces = max(1, self.faces)
        return (
            f"{self.faces:>9} {self.covered / faces:>8.1%} {self.strict / faces:>7.1%} "
            f"{self.centre / faces:>7.1%}"
        )

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            *(
                a + b
                for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
            )
        )


def count_covered(
    truth: Sequence[Sequence[FaceDetection]], covered: dict[int, list[Box]]
) -> Counts:
    """The counts over the frames of ``truth`` (frame index -> its reference faces); a frame
    missing from ``covered`` was dropped, so its faces count as covered."""
    total = Counts()
    for index, frame_faces in enumerate(truth):
        boxes = covered.get(index)
        for face in frame_faces:
            if boxes is None:
                total += Counts(1, 1, 1, 1)
                continue
            cx, cy = face.box.x + face.box.w / 2.0, face.box.y + face.box.h / 2.0
            total += Counts(
                1,
                any(_landmarks_inside(face, b) for b in boxes),
                any(_inside_share(face.box, b) >= INSIDE for b in boxes),
                any(_holds(b, cx, cy) for b in boxes),
            )
    return total


def _encode(face: FaceDetection) -> list[float]:
    marks = [] if face.landmarks is None else [float(v) for v in face.landmarks.ravel()]
    return [*face.box.as_tuple(), face.score, *marks]


def _decode(row: list[float]) -> FaceDetection:
    marks = np.array(row[5:], np.float32).reshape(-1, 2) if len(row) > 5 else None
    return FaceDetection(Box(*(int(v) for v in row[:4])), float(row[4]), marks)


def reference_faces(
    frames: Sequence[np.ndarray], settings: EdgeSettings, cache: Path | None, key: str
) -> tuple[list[list[FaceDetection]], float | None]:
    """The reference faces of ``frames``: the settings' detector at full size, the low-light
    pass on every frame, at ``detector.score_threshold`` (the faces ``Ue`` is for); with the
    median ms per frame, ``None`` when read from ``cache`` (a JSON file, entries by ``key``)."""
    entries = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    if key in entries:
        return [[_decode(row) for row in frame] for frame in entries[key]], None
    options = dataclasses.replace(
        settings.detector.detector_options(),
        max_input_side=None,
        low_light_max_luma=None,
        full_res_regions=False,
    )
    detector = create_detector(settings.detector.kind, options, **settings.detector.options)
    found, times = [], []
    for frame in frames:
        start = time.perf_counter()
        found.append(detector.detect(frame))
        times.append(time.perf_counter() - start)
    if cache is not None:
        entries[key] = [[_encode(face) for face in frame] for frame in found]
        cache.write_text(json.dumps(entries))
    return found, float(np.median(times)) * 1000.0


def confirmed_faces(
    frames: Sequence[np.ndarray],
    truth: Sequence[Sequence[FaceDetection]],
    cache: Path | None,
    key: str,
) -> list[list[FaceDetection]] | None:
    """The faces of ``truth`` that ``CONFIRM_DETECTOR`` also finds in their frame (its boxes
    cached in ``cache`` under ``key``); ``None`` when that detector is not installed."""
    entries = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    if key in entries:
        found = [[Box(*b) for b in frame] for frame in entries[key]]
    else:
        try:
            detector = create_detector(
                CONFIRM_DETECTOR, DetectorOptions(score_threshold=CONFIRM_SCORE)
            )
        except DetectorUnavailableError as exc:
            log.warning("no confirmation: %s", exc)
            return None
        found = [[d.box for d in detector.detect(frame)] for frame in frames]
        if cache is not None:
            entries[key] = [[b.as_tuple() for b in frame] for frame in found]
            cache.write_text(json.dumps(entries))
    return [
        [f for f in faces if any(iou(f.box, b) >= CONFIRM_IOU for b in boxes)]
        for faces, boxes in zip(truth, found, strict=True)
    ]
