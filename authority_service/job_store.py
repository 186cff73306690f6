"""The ``jobs`` table: one row per reversal job (a clip, or a frame awaiting approval).

Lifecycle: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``. With ``jobs.require_approval``
a job starts ``pending_approval`` and a second user (role ``approver``) moves it to ``queued``
or to ``refused`` (terminal; :mod:`authority_service.approvals`). Any job but a running one
becomes ``expired`` ``jobs.ttl_s`` after submission (its row kept). The decision (who, when,
why) is kept in the row whatever happens to the job next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Select, func, select

from authority_service.db import Database
from authority_service.reconstruction import ClipReport
from authority_service.schema import jobs

__all__ = ["Decision", "Job", "JobKind", "JobStatus", "JobStore"]


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
        self._set(job_id, status=JobStatus.running, started_at=_iso(_now()), frames_done=0)

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

    def requeue(self, job_id: str) -> None:
        self._set(job_id, status=JobStatus.queued, started_at=None, frames_done=0)

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
        self._set(job_id, status=JobStatus.expired, result_name=None)
