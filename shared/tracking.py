"""A greedy IoU tracker of face boxes, shared by the edge, the evaluation and the data tools.

Each frame's boxes are matched to the live tracks by IoU against each track's last *detected*
box (best overlap first, at least ``iou_threshold``); unmatched boxes open new tracks with ids
never reused. A track the detector misses is *held* for up to ``max_missed`` frames: it stays
live at its last detected box, grown by ``hold_growth`` of the box per side per missed frame (at
most 3 steps), so that a face missed for a frame or two stays covered on the edge instead of
flashing through. ``max_missed=0`` ends a track at its first miss; ``hold_growth=0`` holds the
box unchanged. With ``hold_velocity`` (the edge's default) a held box also moves on at the
track's velocity (per frame, measured between its last two detections, constant-velocity
prediction clipped to the frame), so a fast face the detector misses stays covered where it has
moved to; detections then match a track by the better of their IoU with its last detected box
and with that prediction.

:meth:`IouTracker.update` returns the live tracks (detected and held); ``Track.detection`` says
which of this frame's boxes a track matched (``None`` when held), so callers that only want
detections (the evaluation, the video data loader) keep ``missed == 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.geometry import Box, clip_box, iou

__all__ = [
    "DEFAULT_HOLD_GROWTH",
    "DEFAULT_HOLD_VELOCITY",
    "DEFAULT_IOU_THRESHOLD",
    "DEFAULT_MAX_MISSED",
    "IouTracker",
    "Track",
]

#: The edge's defaults (``edge_agent.config.TrackerSettings``), also used by the evaluation.
DEFAULT_IOU_THRESHOLD = 0.3
DEFAULT_MAX_MISSED = 5
DEFAULT_HOLD_GROWTH = 0.1
DEFAULT_HOLD_VELOCITY = True
_MAX_GROWTH_STEPS = 3


@dataclass(frozen=True)
class Track:
    """A tracked face in the current frame.

    Attributes:
        id: stable over the track's life (never reused by this tracker).
        box: the face box (the detection, or the held box when ``missed > 0``).
        missed: frames in a row without a matching detection (0: detected now).
        age: frames since the track started (0 in its first frame).
        detection: index of the box of this frame's ``update`` call the track matched, or
            ``None`` when it is held.
    """

    id: int
    box: Box
    missed: int
    age: int
    detection: int | None = None


class IouTracker:
    """Greedy IoU tracker (see the module docstring).

    Args:
        iou_threshold: least IoU between a detection and a track's last detected box to match.
        max_missed: frames a track is held without detection before it ends.
        hold_growth: fraction by which a held box grows per side, per missed frame (max 3x).
        hold_velocity: move held boxes on at the track's velocity (module docstring).

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(
        self,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        max_missed: int = DEFAULT_MAX_MISSED,
        hold_growth: float = DEFAULT_HOLD_GROWTH,
        hold_velocity: bool = False,
    ) -> None:
        if not 0.0 < iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1), got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        if hold_growth < 0:
            raise ValueError(f"hold_growth must be >= 0, got {hold_growth}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.hold_growth = hold_growth
        self.hold_velocity = hold_velocity
        self._tracks: list[Track] = []
        self._anchor: dict[int, Box] = {}
        self._velocity: dict[int, tuple[float, float]] = {}
        self._next_id = 0
        self.ended: list[int] = []

    @property
    def tracks(self) -> list[Track]:
        """The live tracks after the last :meth:`update`."""
        return list(self._tracks)

    def _predicted(self, track: Track) -> Box | None:
        """The track's last detected box moved on by its velocity to this frame (a matching
        target, clipped at the frame's top-left only; ``None`` when it left there)."""
        anchor = self._anchor[track.id]
        vx, vy = self._velocity.get(track.id, (0.0, 0.0))
        ox, oy = vx * (track.missed + 1), vy * (track.missed + 1)
        far = 1 << 30
        return clip_box(
            anchor.x + ox, anchor.y + oy, anchor.right + ox, anchor.bottom + oy, far, far
        )

    def _held_box(self, track_id: int, missed: int, width: int, height: int) -> Box:
        anchor = self._anchor[track_id]
        vx, vy = self._velocity.get(track_id, (0.0, 0.0))
        ox, oy = vx * missed, vy * missed
        grow = self.hold_growth * min(missed, _MAX_GROWTH_STEPS)
        dx, dy = anchor.w * grow, anchor.h * grow
        box = clip_box(
            anchor.x + ox - dx,
            anchor.y + oy - dy,
            anchor.right + ox + dx,
            anchor.bottom + oy + dy,
            width,
            height,
        )
        return (
            box
            or clip_box(anchor.x, anchor.y, anchor.right, anchor.bottom, width, height)
            or anchor
        )

    def _match_iou(self, track: Track, box: Box) -> float:
        overlap = iou(self._anchor[track.id], box)
        predicted = self._predicted(track) if track.id in self._velocity else None
        if predicted is not None:
            overlap = max(overlap, iou(predicted, box))
        return overlap

    def _record(self, track: Track, box: Box) -> None:
        """A detection of ``track``: update its velocity (per frame) and its anchor."""
        if self.hold_velocity:
            anchor = self._anchor[track.id]
            steps = track.missed + 1
            cx = (box.x + box.w / 2 - anchor.x - anchor.w / 2) / steps
            cy = (box.y + box.h / 2 - anchor.y - anchor.h / 2) / steps
            self._velocity[track.id] = (cx, cy)
        self._anchor[track.id] = box

    def update(self, boxes: Sequence[Box], width: int, height: int) -> list[Track]:
        """Match this frame's face boxes; return the live tracks (detected and held).

        Continuing tracks come first (in the order they were live), then the new ones in the
        order of ``boxes``. ``ended`` then lists the ids of tracks that ended with this frame.
        ``width`` and ``height`` (the frame's) clip held boxes.
        """
        pairs = sorted(
            (
                (self._match_iou(track, box), t, b)
                for t, track in enumerate(self._tracks)
                for b, box in enumerate(boxes)
            ),
            reverse=True,
        )
        matched_tracks: dict[int, int] = {}
        used_boxes: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.iou_threshold:
                break
            if t in matched_tracks or b in used_boxes:
                continue
            matched_tracks[t] = b
            used_boxes.add(b)
        live: list[Track] = []
        self.ended = []
        for t, track in enumerate(self._tracks):
            if t in matched_tracks:
                b = matched_tracks[t]
                self._record(track, boxes[b])
                live.append(Track(track.id, boxes[b], 0, track.age + 1, b))
            elif track.missed < self.max_missed:
                missed = track.missed + 1
                held = self._held_box(track.id, missed, width, height)
                live.append(Track(track.id, held, missed, track.age + 1))
            else:
                self.ended.append(track.id)
                self._anchor.pop(track.id, None)
                self._velocity.pop(track.id, None)
        for b, box in enumerate(boxes):
            if b not in used_boxes:
                track = Track(self._next_id, box, 0, 0, b)
                self._anchor[track.id] = box
                self._next_id += 1
                live.append(track)
        self._tracks = live
        return list(live)
