"""The rows of ``job_segments`` as :mod:`authority_service.segment_store` reads and changes
them: a segment's states, what its store's operations find, and :class:`Segment`, one row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authority_service.segment_codec import decode_result
from authority_service.segments import SegmentResult

__all__ = [
    "Finish",
    "Segment",
    "SegmentClaim",
    "SegmentKind",
    "SegmentStatus",
    "Stop",
    "segment_of_row",
]


class SegmentKind:
    """What a row's run does."""

    #: Reverse a range of the clip's frames into a part of the result.
    frames = "frames"
    #: Make the job's public preview from its upload (a re-encode of the whole clip, as long as
    #: several segments): beside the segments, not after the join.
    preview = "preview"


class SegmentStatus:
    """The states of a segment (plain strings in the database)."""

    queued = "queued"
    running = "running"
    #: Reversed (successfully or not: its result says).
    done = "done"
    #: Stopped before it finished, because an earlier segment failed.
    stopped = "stopped"
    ENDED = (done, stopped)


class SegmentClaim:
    """What :meth:`~authority_service.segment_store.SegmentStore.claim` found."""

    claimed = "claimed"
    #: Another run holds the segment and renews its lease.
    busy = "busy"
    #: The segment has ended (this message is a repeat, or its run died while joining).
    ended = "ended"
    #: Nothing to do: the job no longer runs this start, or has no such segment.
    gone = "gone"
    #: The segment was started ``max_attempts`` times: the job is now failed.
    exhausted = "exhausted"


class Finish:
    """What :meth:`~authority_service.segment_store.SegmentStore.finish` found."""

    #: Every segment has ended: this run joins the clip (the job's lease renewed).
    last = "last"
    #: Segments are still open.
    more = "more"
    #: The segment is not this run's any more, or the job ended: its part is to be removed.
    lost = "lost"


class Stop:
    """Why :meth:`~authority_service.segment_store.SegmentStore.beat` says a run must stop."""

    lost = "lost"
    ended = "ended"
    earlier_failed = "earlier_failed"


@dataclass(frozen=True)
class Segment:
    """One stored segment (``token``: the run that holds it, or that ended it)."""

    job_id: str
    segment: int
    attempt: int
    kind: str
    start: int
    pts: tuple[int, ...]
    seek_pts: int | None
    last: bool
    carrier: str | None
    status: str
    runs: int
    token: str | None
    worker: str | None
    frames_done: int
    failed: bool
    seconds: float | None
    result: SegmentResult | None
    #: The run's last lease renewal; for an ended segment, when it ended.
    heartbeat_at: str | None = None


def segment_of_row(row: Mapping[str, Any]) -> Segment:
    """The :class:`Segment` of a ``job_segments`` row."""
    return Segment(
        job_id=row["job_id"],
        segment=row["segment"],
        attempt=row["attempt"],
        kind=row["kind"],
        start=row["start_frame"],
        pts=tuple(json.loads(row["pts"])),
        seek_pts=row["seek_pts"],
        last=bool(row["last"]),
        carrier=row["carrier"],
        status=row["status"],
        runs=row["runs"],
        token=row["token"],
        worker=row["worker"],
        frames_done=row["frames_done"],
        failed=bool(row["failed"]),
        seconds=row["seconds"],
        result=decode_result(row["result"]) if row["result"] else None,
        heartbeat_at=row["heartbeat_at"],
    )
