"""The ``jobs`` table: one row per reversal job (a clip, or a frame awaiting approval).

Lifecycle: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``. With ``jobs.require_approval``
a job starts ``pending_approval`` and a second user (role ``approver``) moves it to ``queued``
or to ``refused`` (terminal; :mod:`authority_service.approvals`). Any job but a running one
becomes ``expired`` ``jobs.ttl_s`` after submission (its row kept). The decision (who, when,
why) is kept in the row whatever happens to the job next.

A worker starts a job by claiming it (:meth:`JobStore.claim`): one atomic update, so of the
workers (threads, processes, hosts) that got the job one wins. While it runs, its worker
renews the job's lease (``heartbeat_at``); a running job whose lease is older than
``jobs.lease_s`` is taken to be lost and may be claimed again, each start counted in
``attempts``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select

from authority_service.db import Database
from authority_service.reconstruction import ClipReport
from authority_service.schema import job_segments, jobs

__all__ = ["Claim", "Decision", "Job", "JobKind", "JobStatus", "JobStore"]


class JobStatus:
    """The states of a job (plain strings in the database and the API)."""

    pending_approval = "pending_approval"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    refused = "refused"
    expired = "expired"
    ALL = (pending_approval, queued, running, succeeded, failed, refused, expired)


class JobKind:
    """What a job reverses: a clip, or one frame (a frame is a job only when it needs approval)."""

    clip = "clip"
    frame = "frame"
    ALL = (clip, frame)


class Claim:
    """What :meth:`JobStore.claim` found."""

    #: The job was queued (or running with its lease expired): it is now this worker's.
    claimed = "claimed"
    #: The job was claimable but had been started ``max_attempts`` times: it is now failed.
    exhausted = "exhausted"
    #: Another worker runs the job and renews its lease.
    busy = "busy"
    #: Nothing to run: no such job, or it is finished, pending approval or expired.
    gone = "gone"


class Decision:
    """An approver's decision on a job."""

    approved = "approved"
    refused = "refused"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Job:
    """One stored job."""

    id: str
    owner: str
    case_id: str
    justification: str
    clip_sha256: str
    clip_bytes: int
    status: str
    frames_done: int
    frames_total: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str
    result_name: str | None
    report: dict[str, Any] | None
    error_code: str | None
    error_detail: str | None
    kind: str = JobKind.clip
    #: Whether the job waited (or waits) for a second user's decision.
    approval_required: bool = False
    decision: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    #: Starts of the job (:meth:`JobStore.claim`); a clean requeue gives its start back.
    attempts: int = 0
    heartbeat_at: str | None = None


def _row_to_job(row: Mapping[str, Any]) -> Job:
    values = dict(row)
    values["report"] = json.loads(values["report"]) if values["report"] else None
    values["approval_required"] = bool(values["approval_required"])
    return Job(**values)


class JobStore:
    """The ``jobs`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _jobs(self, query: Select[Any]) -> list[Job]:
        with self.db.read() as conn:
            return [_row_to_job(r) for r in conn.execute(query).mappings()]

    def create(
        self,
        *,
        job_id: str,
        owner: str,
        case_id: str,
        justification: str,
        clip_sha256: str,
        clip_bytes: int,
        frames_total: int | None,
        ttl_s: int,
        kind: str = JobKind.clip,
        approval_required: bool = False,
    ) -> Job:
        """Store a job: ``pending_approval`` when ``approval_required``, else ``queued``."""
        created = _now()
        status = JobStatus.pending_approval if approval_required else JobStatus.queued
        with self.db.transaction() as conn:
            conn.execute(
                jobs.insert().values(
                    id=job_id,
                    owner=owner,
                    case_id=case_id,
                    justification=justification,
                    clip_sha256=clip_sha256,
                    clip_bytes=clip_bytes,
                    status=status,
                    frames_total=frames_total,
                    created_at=_iso(created),
                    expires_at=_iso(created + timedelta(seconds=ttl_s)),
                    kind=kind,
                    approval_required=int(approval_required),
                )
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        found = self._jobs(select(jobs).where(jobs.c.id == job_id))
        return found[0] if found else None

    def _set(self, job_id: str, **values: object) -> None:
        with self.db.transaction() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    def mark_running(self, job_id: str) -> None:
        now = _iso(_now())
        self._set(job_id, status=JobStatus.running, started_at=now, heartbeat_at=now, frames_done=0)

    def set_progress(self, job_id: str, done: int, total: int | None) -> None:
        self._set(job_id, frames_done=done, frames_total=total)

    def mark_succeeded(self, job_id: str, result_name: str, report: ClipReport) -> None:
        self._set(
            job_id,
            status=JobStatus.succeeded,
            finished_at=_iso(_now()),
            result_name=result_name,
            report=json.dumps(asdict(report)),
            frames_done=report.frames,
            frames_total=report.frames,
        )

    def mark_failed(self, job_id: str, code: str, detail: str) -> None:
        self._set(
            job_id,
            status=JobStatus.failed,
            finished_at=_iso(_now()),
            error_code=code,
            error_detail=detail,
        )

    def decide(self, job_id: str, decision: str, by: str, reason: str) -> bool:
        """Record ``by``'s decision on a ``pending_approval`` job: ``approved`` queues it,
        ``refused`` ends it. Return whether the job was still pending (else nothing changed:
        another decision, or the expiry, came first)."""
        now = _iso(_now())
        approved = decision == Decision.approved
        with self.db.transaction() as conn:
            result = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.pending_approval)
                .values(
                    status=JobStatus.queued if approved else JobStatus.refused,
                    decision=decision,
                    decided_by=by,
                    decided_at=now,
                    decision_reason=reason,
                    finished_at=None if approved else now,
                )
            )
            return result.rowcount == 1

    def claim(
        self, job_id: str, *, lease_s: float, max_attempts: int, now: datetime | None = None
    ) -> tuple[str, Job | None]:
        """Take ``job_id`` for this worker if it is queued, or running with a lease older than
        ``lease_s`` (its worker lost): ``running``, its lease fresh, ``attempts`` + 1. One of
        the workers claiming a job at once wins. A claimable job already started
        ``max_attempts`` times is failed instead (``worker_lost``; the caller audits it).

        Returns:
            (:class:`Claim` outcome, the job as it is after the claim, or ``None`` if unknown).
        """
        moment = now or _now()
        stale = _iso(moment - timedelta(seconds=lease_s))
        claimable = and_(
            jobs.c.id == job_id,
            or_(
                jobs.c.status == JobStatus.queued,
                and_(
                    jobs.c.status == JobStatus.running,
                    or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < stale),
                ),
            ),
        )
        with self.db.transaction() as conn:
            claimed = conn.execute(
                jobs.update()
                .where(claimable, jobs.c.attempts < max_attempts)
                .values(
                    status=JobStatus.running,
                    started_at=_iso(moment),
                    heartbeat_at=_iso(moment),
                    frames_done=0,
                    attempts=jobs.c.attempts + 1,
                )
            ).rowcount
            exhausted = 0
            if not claimed:
                exhausted = conn.execute(
                    jobs.update()
                    .where(claimable)
                    .values(
                        status=JobStatus.failed,
                        finished_at=_iso(moment),
                        error_code="worker_lost",
                        error_detail=(
                            f"the job was started {max_attempts} time(s) and each time its "
                            "worker was lost before it finished; it is not started again"
                        ),
                    )
                ).rowcount
        job = self.get(job_id)
        if claimed:
            return Claim.claimed, job
        if exhausted:
            return Claim.exhausted, job
        busy = job is not None and job.status == JobStatus.running
        return (Claim.busy if busy else Claim.gone), job

    def renew_lease(self, job_id: str) -> None:
        """Renew the lease of a job this worker runs."""
        self._set(job_id, heartbeat_at=_iso(_now()))

    def requeue(self, job_id: str) -> None:
        """Put a job interrupted by a clean shutdown back to ``queued``, giving its start back."""
        self._set(
            job_id,
            status=JobStatus.queued,
            started_at=None,
            frames_done=0,
            heartbeat_at=None,
            attempts=case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
        )

    def requeue_interrupted(self) -> int:
        """Put jobs a stopped process left ``running`` back to ``queued``; return how many."""
        with self.db.transaction() as conn:
            result = conn.execute(
                jobs.update()
                .where(jobs.c.status == JobStatus.running)
                .values(status=JobStatus.queued, started_at=None, frames_done=0)
            )
            return result.rowcount

    def with_status(self, status: str) -> list[Job]:
        """The jobs in ``status``, oldest first."""
        return self._jobs(select(jobs).where(jobs.c.status == status).order_by(jobs.c.created_at))

    def owned_by(self, owner: str, limit: int = 50) -> list[Job]:
        """The ``limit`` latest jobs ``owner`` requested, newest first."""
        return self._jobs(
            select(jobs)
            .where(jobs.c.owner == owner)
            .order_by(jobs.c.created_at.desc())
            .limit(limit)
        )

    def queued(self) -> list[Job]:
        return self.with_status(JobStatus.queued)

    def count(self, status: str) -> int:
        """How many jobs are in ``status``."""
        query = select(func.count()).select_from(jobs).where(jobs.c.status == status)
        with self.db.read() as conn:
            return conn.execute(query).scalar_one()

    def due_for_expiry(self, now: datetime) -> list[Job]:
        return self._jobs(
            select(jobs).where(
                jobs.c.expires_at <= _iso(now),
                jobs.c.status.not_in((JobStatus.expired, JobStatus.running)),
            )
        )

    def mark_expired(self, job_id: str) -> None:
        """Expire the job; the rows of its segments (a split clip job's) are deleted."""
        with self.db.transaction() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(status=JobStatus.expired, result_name=None)
            )
            conn.execute(job_segments.delete().where(job_segments.c.job_id == job_id))
