"""An IoU tracker that keeps faces covered, and the per-track noise planes of ``Ue``.

* :class:`IouTracker` matches each frame's face boxes to the tracks of the previous frame by
  IoU (greedy, best overlap first). A track the detector misses is *held* for ``max_missed``
  frames at its last box (grown by ``hold_growth``), so a face missed for a frame or two stays
  de-identified instead of flashing through.
* :class:`NoiseBank` gives each track its own ``U(0,1)`` noise plane, derived from a secret and
  the track id with HMAC-SHA256, so ``Ue``'s surrogate face stays the same along a track
  instead of flickering frame to frame, and cannot be predicted without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.geometry import Box, clip_box, iou

__all__ = ["IouTracker", "NoiseBank", "Track"]


@dataclass(frozen=True)
class Track:
    """A tracked face in the current frame.

    Attributes:
        id: stable over the track's life (never reused by this tracker).
        box: the face box (the detection, or the held box when ``missed > 0``).
        missed: frames in a row without a matching detection (0: detected now).
        age: frames since the track started.
    """

    id: int
    box: Box
    missed: int
    age: int


class IouTracker:
    """Greedy IoU tracker.

    Args:
        iou_threshold: least IoU between a detection and a track's box to match.
        max_missed: frames a track is held without detection before it ends.
        hold_growth: fraction by which a held box grows per side, per missed frame (max 3x).

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(
        self, iou_threshold: float = 0.3, max_missed: int = 5, hold_growth: float = 0.1
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
        self._tracks: list[Track] = []
        self._anchor: dict[int, Box] = {}
        self._next_id = 0
        self.ended: list[int] = []

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks)

    def _held_box(self, track: Track, width: int, height: int) -> Box:
        anchor = self._anchor[track.id]
        grow = self.hold_growth * min(track.missed, 3)
        dx, dy = anchor.w * grow, anchor.h * grow
        box = clip_box(
            anchor.x - dx, anchor.y - dy, anchor.right + dx, anchor.bottom + dy, width, height
        )
        return box or anchor

    def update(self, boxes: Sequence[Box], width: int, height: int) -> list[Track]:
        """Match this frame's face boxes; return the live tracks (detected and held).

        ``ended`` then lists the ids of tracks that ended with this frame.
        """
        pairs = sorted(
            (
                (iou(self._anchor[track.id], box), t, b)
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
                box = boxes[matched_tracks[t]]
                self._anchor[track.id] = box
                live.append(Track(track.id, box, 0, track.age + 1))
            elif track.missed < self.max_missed:
                held = Track(track.id, track.box, track.missed + 1, track.age + 1)
                live.append(
                    Track(held.id, self._held_box(held, width, height), held.missed, held.age)
                )
            else:
                self.ended.append(track.id)
                self._anchor.pop(track.id, None)
        for b, box in enumerate(boxes):
            if b not in used_boxes:
                track = Track(self._next_id, box, 0, 0)
                self._anchor[track.id] = box
                self._next_id += 1
                live.append(track)
        self._tracks = live
        return list(live)


class NoiseBank:
    """Per-track ``U(0,1)`` noise planes of ``size x size``, stable for a track id.

    The plane of track ``i`` is drawn by numpy's PCG64 seeded with
    ``HMAC-SHA256(secret, "uunet-noise" NUL size NUL i)``.

    Raises:
        ValueError: an empty secret or a size below 1.
    """

    def __init__(self, secret: bytes, size: int) -> None:
        if not secret:
            raise ValueError("the noise secret must not be empty")
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._secret = secret
        self.size = size
        self._planes: dict[int, np.ndarray] = {}

    def plane(self, track_id: int) -> np.ndarray:
        """The ``float32`` noise plane of a track (cached until :meth:`forget`)."""
        plane = self._planes.get(track_id)
        if plane is None:
            message = b"uunet-noise\x00%d\x00%d" % (self.size, track_id)
            seed = int.from_bytes(hmac.new(self._secret, message, hashlib.sha256).digest(), "big")
            rng = np.random.Generator(np.random.PCG64(seed))
            plane = rng.random((self.size, self.size), dtype=np.float32)
            self._planes[track_id] = plane
        return plane

    def forget(self, track_ids: Sequence[int]) -> None:
        """Drop the cached planes of ended tracks."""
        for track_id in track_ids:
            self._planes.pop(track_id, None)
