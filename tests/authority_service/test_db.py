"""authority_service.db: a database written by the version-1 schema opens, migrated, and its
jobs read and run as before; a newer schema is refused."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

from authority_service.api.schemas import JobOut
from authority_service.db import SCHEMA_VERSION, Database, DatabaseError
from authority_service.job_store import JobKind, JobStatus
from authority_service.service import build_services
from authority_service.users import Role
from tests.authority_service.conftest import SECRETS, settings_for

#: The jobs table as version 1 of the schema (before dual control) created it, verbatim.
V1_JOBS = """
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    owner           TEXT NOT NULL,
    case_id         TEXT NOT NULL,
    justification   TEXT NOT NULL,
    clip_sha256     TEXT NOT NULL,
    clip_bytes      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    frames_done     INTEGER NOT NULL DEFAULT 0,
    frames_total    INTEGER,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    expires_at      TEXT NOT NULL,
    result_name     TEXT,
    report          TEXT,
    error_code      TEXT,
    error_detail    TEXT
);
CREATE INDEX jobs_status ON jobs (status);
"""
V1_USERS = """
CREATE TABLE users (
    name              TEXT PRIMARY KEY,
    role              TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    disabled          INTEGER NOT NULL DEFAULT 0,
    token_generation  INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
"""


def _v1_database(path, job_id: str) -> None:
    """A version-1 file holding a user and a queued job, as the old code left it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(V1_USERS + V1_JOBS)
    conn.execute(
        "INSERT INTO users VALUES ('ivy', 'investigator', '$argon2id$x', 0, 0, 't0', 't0')"
    )
    conn.execute(
        "INSERT INTO jobs (id, owner, case_id, justification, clip_sha256, clip_bytes, status, "
        "frames_total, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            job_id,
            "ivy",
            "CASE-OLD",
            "Submitted before the upgrade.",
            "00" * 32,
            1,
            "queued",
            12,
            "2020-01-01T00:00:00.000+00:00",
            "2999-01-01T00:00:00.000+00:00",
        ),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_version_1_database_is_migrated_and_its_queued_job_runs(
    tmp_path, models_dir, evidence_clip
):
    settings = settings_for(tmp_path, models_dir)
    job_id = "ab" * 12
    _v1_database(settings.database_path, job_id)
    services = build_services(settings, camera_keys=SECRETS.camera_keys)
    try:
        version = services.db.connection().execute("PRAGMA user_version").fetchone()[0]
        assert version == SCHEMA_VERSION == 2
        assert services.users.get("ivy").role is Role.investigator
        old = services.jobs.store.get(job_id)
        assert (old.kind, old.approval_required, old.decision) == (JobKind.clip, False, None)
        assert JobOut.of(old).approval is None and JobOut.of(old).status == "queued"
        shutil.copy(evidence_clip, services.jobs.upload_path(job_id))
        services.jobs.start()
        deadline = time.monotonic() + 30
        while (job := services.jobs.store.get(job_id)).status in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        services.jobs.stop()
        assert job.status == JobStatus.succeeded and job.report["frames"] == 12
        assert services.audit_log.records()[-1].detail.startswith("12 frames")
    finally:
        services.close()


def test_migration_runs_once_and_a_reopened_file_keeps_its_rows(tmp_path):
    path = tmp_path / "data" / "authority.sqlite3"
    _v1_database(path, "cd" * 12)
    Database(path).close()
    again = Database(path)
    columns = [r["name"] for r in again.connection().execute("PRAGMA table_info(jobs)")]
    assert columns[-6:] == [
        "kind",
        "approval_required",
        "decision",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]
    assert again.connection().execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    again.close()


def test_fresh_database_has_the_current_schema(tmp_path):
    db = Database(tmp_path / "data" / "authority.sqlite3")
    conn = db.connection()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(jobs)")}
    assert {"kind", "approval_required", "decided_by", "decision_reason"} <= columns
    db.close()


def test_database_of_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "data" / "authority.sqlite3"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this code"):
        Database(path)
