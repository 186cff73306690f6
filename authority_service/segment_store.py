"""The ``job_segments`` table: the segments of the clip jobs that the job queue's workers reverse
segment by segment (:mod:`authority_service.segment_tasks`). The job's row stays the one truth
of the job (status, attempts, progress, lease); a segment's row says who reverses it and how it
ended.

* **Plan** (:meth:`SegmentStore.plan`): the job's task writes one ``queued`` row per segment,
  tagged with the job's start (``attempt``, the job's ``attempts``), replacing any rows of an
  earlier start.
* **Claim** (:meth:`SegmentStore.claim`): a segment task takes its segment when it is queued, or
  running with a lease older than ``jobs.lease_s`` (its worker lost), and only while the job
  runs that start. Each run has its own token; its part file is named after it, so two runs of
  one segment never write the same file. A segment already started ``jobs.max_attempts`` times
  fails the job instead (``worker_lost``).
* **Beat** (:meth:`SegmentStore.beat`): a running segment renews its lease and the job's,
  writes its progress and the job's (the frames done over all segments), and learns whether it
  must stop: the segment is another run's, the job no longer runs this start, or an earlier
  segment failed (one pass would have stopped there).
* **Finish** (:meth:`SegmentStore.finish`): the run's outcome is written; one transaction that
  holds the table (``BEGIN IMMEDIATE`` on SQLite, a table lock on PostgreSQL) then counts the
  segments still open, so of the runs ending at once exactly one finds none left: that one
  joins the clip. A task that finds its segment already ended while the job still runs (its
  worker died while joining) takes the join over once the job's lease is stale
  (:meth:`SegmentStore.claim_join`).

A segment's ``result`` (JSON, :mod:`authority_service.segment_codec`) is cleared when the job
ends (:meth:`SegmentStore.release`); the rows themselves (which worker, how long) stay until
the job expires.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from authority_service.db import Database
from authority_service.job_store import JobStatus
from authority_service.schema import job_segments, jobs
from authority_service.segment_codec import encode_result
from authority_service.segment_rows import (
    Finish,
    Segment,
    SegmentClaim,
    SegmentKind,
    SegmentStatus,
    Stop,
    segment_of_row,
)
from authority_service.segments import SegmentResult

__all__ = ["SegmentStore", "lost_detail"]

_TABLE = "job_segments"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def lost_detail(segment: int, max_attempts: int) -> str:
    """The ``worker_lost`` detail of a job whose segment ran out of starts."""
    return (
        f"segment {segment} of the job was started {max_attempts} time(s) and each time its "
        "worker was lost before it finished; it is not started again"
    )


class SegmentStore:
    """The ``job_segments`` table (and the progress and lease of their jobs' rows)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _of(self, job_id: str, attempt: int, segment: int | None = None) -> Any:
        where = and_(job_segments.c.job_id == job_id, job_segments.c.attempt == attempt)
        return where if segment is None else and_(where, job_segments.c.segment == segment)

    @staticmethod
    def _job_runs(job_id: str, attempt: int) -> Any:
        return and_(
            jobs.c.id == job_id, jobs.c.status == JobStatus.running, jobs.c.attempts == attempt
        )

    def plan(
        self,
        job_id: str,
        attempt: int,
        plan: Sequence[tuple[int, tuple[int, ...], int | None]],
        *,
        preview: bool = False,
    ) -> None:
        """Store the segments of start ``attempt`` of ``job_id`` (``(first frame, timestamps,
        keyframe)`` each, :func:`~authority_service.segments.plan_segments`), ``queued``,
        replacing the rows of any earlier start; with ``preview``, a row after them for the
        job's public preview (:data:`~authority_service.segment_rows.SegmentKind.preview`)."""
        ranges = [(SegmentKind.frames, start, pts, seek) for start, pts, seek in plan]
        if preview:
            ranges.append((SegmentKind.preview, 0, (), None))
        rows = [
            {
                "job_id": job_id,
                "segment": k,
                "attempt": attempt,
                "kind": kind,
                "start_frame": start,
                "pts": json.dumps(list(pts)),
                "seek_pts": seek,
                "last": int(k == len(plan) - 1),
                "status": SegmentStatus.queued,
            }
            for k, (kind, start, pts, seek) in enumerate(ranges)
        ]
        with self.db.transaction(lock=_TABLE) as conn:
            conn.execute(job_segments.delete().where(job_segments.c.job_id == job_id))
            conn.execute(job_segments.insert(), rows)

    def segments(self, job_id: str, attempt: int | None = None) -> list[Segment]:
        """The segments of ``job_id`` (of start ``attempt``, when given), in clip order."""
        where = job_segments.c.job_id == job_id
        if attempt is not None:
            where = self._of(job_id, attempt)
        query = select(job_segments).where(where).order_by(job_segments.c.segment)
        with self.db.read() as conn:
            return [segment_of_row(r) for r in conn.execute(query).mappings()]

    def claim(
        self,
        job_id: str,
        attempt: int,
        segment: int,
        *,
        lease_s: float,
        max_attempts: int,
        worker: str,
    ) -> tuple[str, Segment | None]:
        """Take ``segment`` for a new run of this worker (module docstring).

        Returns:
            (:class:`SegmentClaim` outcome, the segment as it is after the claim; ``None`` when
            ``gone``).
        """
        now = _now()
        stale = _iso(now - timedelta(seconds=lease_s))
        token = secrets.token_hex(8)
        with self.db.transaction(lock=_TABLE) as conn:
            runs = conn.execute(select(jobs.c.id).where(self._job_runs(job_id, attempt))).first()
            row = conn.execute(
                select(job_segments).where(self._of(job_id, attempt, segment))
            ).first()
            if runs is None or row is None:
                return SegmentClaim.gone, None
            found = segment_of_row(row._mapping)
            if found.status in SegmentStatus.ENDED:
                return SegmentClaim.ended, found
            held = row.heartbeat_at is not None and row.heartbeat_at >= stale
            if found.status == SegmentStatus.running and held:
                return SegmentClaim.busy, found
            if found.runs >= max_attempts:
                conn.execute(
                    jobs.update()
                    .where(self._job_runs(job_id, attempt))
                    .values(
                        status=JobStatus.failed,
                        finished_at=_iso(now),
                        error_code="worker_lost",
                        error_detail=lost_detail(segment, max_attempts),
                    )
                )
                return SegmentClaim.exhausted, found
            conn.execute(
                job_segments.update()
                .where(self._of(job_id, attempt, segment))
                .values(
                    status=SegmentStatus.running,
                    token=token,
                    worker=worker,
                    heartbeat_at=_iso(now),
                    runs=job_segments.c.runs + 1,
                    frames_done=0,
                    failed=0,
                    result=None,
                )
            )
        return SegmentClaim.claimed, self.get(job_id, attempt, segment)

    def get(self, job_id: str, attempt: int, segment: int) -> Segment | None:
        """Segment ``segment`` of start ``attempt`` of ``job_id``, or ``None``."""
        query = select(job_segments).where(self._of(job_id, attempt, segment))
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        return segment_of_row(row) if row is not None else None

    def beat(
        self, job_id: str, attempt: int, segment: int, token: str, frames_done: int
    ) -> str | None:
        """Renew the run's lease and the job's, record its progress (the job's: the frames
        done over its segments); return why the run must stop (:class:`Stop`), ``None``: go on.
        """
        now = _iso(_now())
        total = (
            select(func.coalesce(func.sum(job_segments.c.frames_done), 0))
            .where(self._of(job_id, attempt))
            .scalar_subquery()
        )
        with self.db.transaction() as conn:
            own = conn.execute(
                job_segments.update()
                .where(
                    self._of(job_id, attempt, segment),
                    job_segments.c.token == token,
                    job_segments.c.status == SegmentStatus.running,
                )
                .values(frames_done=frames_done, heartbeat_at=now)
            ).rowcount
            if not own:
                return Stop.lost
            job = conn.execute(
                jobs.update()
                .where(self._job_runs(job_id, attempt))
                .values(frames_done=total, heartbeat_at=now)
            ).rowcount
            if not job:
                return Stop.ended
            failed_before = conn.execute(
                select(func.count())
                .select_from(job_segments)
                .where(
                    self._of(job_id, attempt),
                    job_segments.c.segment < segment,
                    job_segments.c.failed == 1,
                )
            ).scalar_one()
        return Stop.earlier_failed if failed_before else None

    def finish(
        self,
        job_id: str,
        attempt: int,
        segment: int,
        token: str,
        result: SegmentResult | None,
    ) -> str:
        """End the run ``token`` of ``segment``: ``done`` with ``result``, or ``stopped``
        (``None``); return what it found (:class:`Finish`)."""
        now = _iso(_now())
        with self.db.transaction(lock=_TABLE) as conn:
            runs = conn.execute(select(jobs.c.id).where(self._job_runs(job_id, attempt))).first()
            if runs is None:
                return Finish.lost
            ended = conn.execute(
                job_segments.update()
                .where(
                    self._of(job_id, attempt, segment),
                    job_segments.c.token == token,
                    job_segments.c.status == SegmentStatus.running,
                )
                .values(
                    status=SegmentStatus.stopped if result is None else SegmentStatus.done,
                    heartbeat_at=now,
                    failed=int(result is not None and result.failure is not None),
                    frames_done=result.report.frames if result else job_segments.c.frames_done,
                    seconds=result.seconds if result else None,
                    result=encode_result(result) if result else None,
                )
            ).rowcount
            if not ended:
                return Finish.lost
            if self._open(conn, job_id, attempt):
                return Finish.more
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(heartbeat_at=now))
        return Finish.last

    def _open(self, conn: Any, job_id: str, attempt: int) -> int:
        return conn.execute(
            select(func.count())
            .select_from(job_segments)
            .where(self._of(job_id, attempt), job_segments.c.status.not_in(SegmentStatus.ENDED))
        ).scalar_one()

    def claim_join(self, job_id: str, attempt: int, *, lease_s: float) -> str:
        """Take over the join of a job whose segments have all ended and whose lease is older
        than ``lease_s`` (the run that was joining it is lost).

        Returns:
            ``"won"`` (the join is now this worker's, the job's lease renewed), ``"held"`` (its
            segments have ended and its lease is fresh: another worker joins it) or ``"none"``
            (nothing to join: segments still open, or the job no longer runs this start).
        """
        now = _now()
        stale = _iso(now - timedelta(seconds=lease_s))
        with self.db.transaction(lock=_TABLE) as conn:
            if self._open(conn, job_id, attempt):
                return "none"
            won = conn.execute(
                jobs.update()
                .where(
                    self._job_runs(job_id, attempt),
                    or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < stale),
                )
                .values(heartbeat_at=_iso(now))
            ).rowcount
            if won:
                return "won"
            runs = conn.execute(select(jobs.c.id).where(self._job_runs(job_id, attempt))).first()
        return "held" if runs is not None else "none"

    def give_back(self, job_id: str, attempt: int, segment: int, token: str) -> None:
        """Put a segment whose run was interrupted by a clean shutdown back to ``queued``,
        giving its start back."""
        with self.db.transaction(lock=_TABLE) as conn:
            conn.execute(
                job_segments.update()
                .where(self._of(job_id, attempt, segment), job_segments.c.token == token)
                .values(
                    status=SegmentStatus.queued,
                    token=None,
                    heartbeat_at=None,
                    frames_done=0,
                    runs=case((job_segments.c.runs > 0, job_segments.c.runs - 1), else_=0),
                )
            )

    def rerun(self, job_id: str, attempt: int, segment: int, carrier: str | None) -> None:
        """Queue an ended segment again, to be reversed reading ``carrier`` (the clip's)."""
        with self.db.transaction(lock=_TABLE) as conn:
            conn.execute(
                job_segments.update()
                .where(self._of(job_id, attempt, segment))
                .values(
                    status=SegmentStatus.queued,
                    carrier=carrier,
                    token=None,
                    heartbeat_at=None,
                    runs=0,
                    frames_done=0,
                    failed=0,
                    seconds=None,
                    result=None,
                )
            )

    def release(self, job_id: str) -> None:
        """The job has ended: drop its segments' results (their rows, timings, stay)."""
        with self.db.transaction() as conn:
            conn.execute(
                job_segments.update().where(job_segments.c.job_id == job_id).values(result=None)
            )

    def delete(self, job_id: str) -> None:
        """Delete the segments of ``job_id`` (it expired)."""
        with self.db.transaction(lock=_TABLE) as conn:
            conn.execute(job_segments.delete().where(job_segments.c.job_id == job_id))
