"""A minimal greedy IoU tracker, so the suite can keep one noise plane per track and measure
temporal consistency before ``edge_agent``'s tracker lands (switch to it at merge).

Each frame's boxes are matched to live tracks by decreasing IoU (>= ``min_iou``); unmatched
boxes open new tracks; a track unseen for more than ``max_missed`` frames is closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.geometry import Box, iou

__all__ = ["IouTracker", "Track"]


@dataclass
class Track:
    """One track: its id, last box and the frame it was last seen in."""

    track_id: int
    box: Box
    last_frame: int
    frames: list[int] = field(default_factory=list)


class IouTracker:
    """Greedy IoU association of per-frame boxes into tracks."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        self.min_iou = min_iou
        self.max_missed = max_missed
        self._live: list[Track] = []
        self._next_id = 0

    def update(self, frame_index: int, boxes: Sequence[Box]) -> list[int]:
        """Assign a track id to each box of ``frame_index`` (same order as ``boxes``)."""
        self._live = [t for t in self._live if frame_index - t.last_frame <= self.max_missed]
        pairs = sorted(
            (
                (iou(track.box, box), t, b)
                for t, track in enumerate(self._live)
                for b, box in enumerate(boxes)
            ),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
            if t in used_tracks or ids[b] is not None:
                continue
            used_tracks.add(t)
            track = self._live[t]
            track.box, track.last_frame = boxes[b], frame_index
            track.frames.append(frame_index)
            ids[b] = track.track_id
        for b, box in enumerate(boxes):
            if ids[b] is None:
                track = Track(self._next_id, box, frame_index, [frame_index])
                self._next_id += 1
                self._live.append(track)
                ids[b] = track.track_id
        return [int(i) for i in ids if i is not None]
