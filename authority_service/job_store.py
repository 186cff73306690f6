"""The ``jobs`` table: one row per reversal job (a clip, or a frame awaiting approval).

Lifecycle: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``. With ``jobs.require_approval``
a job starts ``pending_approval`` and a second user (role ``approver``) moves it to ``queued``
or to ``refused`` (terminal; :mod:`authority_service.approvals`). Any job but a running one
becomes ``expired`` ``jobs.ttl_s`` after submission (its row kept). The decision (who, when,
why) is kept in the row whatever happens to the job next.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from authority_service.db import Database
from authority_service.reconstruction import ClipReport

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


def _row_to_job(row: sqlite3.Row) -> Job:
    values = dict(zip(row.keys(), tuple(row), strict=True))
    values["report"] = json.loads(values["report"]) if values["report"] else None
    values["approval_required"] = bool(values["approval_required"])
    return Job(**values)


class JobStore:
    """The ``jobs`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
                "INSERT INTO jobs (id, owner, case_id, justification, clip_sha256, clip_bytes, "
                "status, frames_total, created_at, expires_at, kind, approval_required) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    owner,
                    case_id,
                    justification,
                    clip_sha256,
                    clip_bytes,
                    status,
                    frames_total,
                    _iso(created),
                    _iso(created + timedelta(seconds=ttl_s)),
                    kind,
                    int(approval_required),
                ),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        row = self.db.connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def _set(self, job_id: str, **values: object) -> None:
        columns = ", ".join(f"{k} = ?" for k in values)
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", [*values.values(), job_id])

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
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, decision = ?, decided_by = ?, decided_at = ?, "
                "decision_reason = ?, finished_at = ? WHERE id = ? AND status = ?",
                (
                    JobStatus.queued if approved else JobStatus.refused,
                    decision,
                    by,
                    now,
                    reason,
                    None if approved else now,
                    job_id,
                    JobStatus.pending_approval,
                ),
            )
            return cursor.rowcount == 1

    def requeue(self, job_id: str) -> None:
        self._set(job_id, status=JobStatus.queued, started_at=None, frames_done=0)

    def requeue_interrupted(self) -> int:
        """Put jobs a stopped process left ``running`` back to ``queued``; return how many."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, started_at = NULL, frames_done = 0 WHERE status = ?",
                (JobStatus.queued, JobStatus.running),
            )
            return cursor.rowcount

    def with_status(self, status: str) -> list[Job]:
        """The jobs in ``status``, oldest first."""
        rows = (
            self.db.connection()
            .execute("SELECT * FROM jobs WHERE status = ? ORDER BY created_at", (status,))
            .fetchall()
        )
        return [_row_to_job(r) for r in rows]

    def owned_by(self, owner: str, limit: int = 50) -> list[Job]:
        """The ``limit`` latest jobs ``owner`` requested, newest first."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT * FROM jobs WHERE owner = ? ORDER BY created_at DESC LIMIT ?",
                (owner, limit),
            )
            .fetchall()
        )
        return [_row_to_job(r) for r in rows]

    def queued(self) -> list[Job]:
        return self.with_status(JobStatus.queued)

    def count(self, status: str) -> int:
        """How many jobs are in ``status``."""
        query = "SELECT COUNT(*) FROM jobs WHERE status = ?"
        return self.db.connection().execute(query, (status,)).fetchone()[0]

    def due_for_expiry(self, now: datetime) -> list[Job]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT * FROM jobs WHERE expires_at <= ? AND status NOT IN (?, ?)",
                (_iso(now), JobStatus.expired, JobStatus.running),
            )
            .fetchall()
        )
        return [_row_to_job(r) for r in rows]

    def mark_expired(self, job_id: str) -> None:
        self._set(job_id, status=JobStatus.expired, result_name=None)
