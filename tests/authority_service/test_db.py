"""authority_service.db and .migrate: a SQLite file written by the schema of version 1 or 2
(before Alembic) opens, migrated in place, and its jobs read and run as before; a new database
gets the current schema on SQLite and PostgreSQL, also when several processes open it at once;
a newer schema is refused."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import time

import pytest
from sqlalchemy import inspect, text

from authority_service.api.schemas import JobOut
from authority_service.db import SCHEMA_VERSION, Database, DatabaseError
from authority_service.job_store import JobKind, JobStatus
from authority_service.migrate import current_revision
from authority_service.service import build_services
from authority_service.users import Role
from tests.authority_service.backends import sqlite_database
from tests.authority_service.conftest import SECRETS, settings_for
from tests.authority_service.db_writers import open_at_once

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
#: What version 2 of the schema (the code before Alembic) added to it, verbatim.
V2_MIGRATION = (
    "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'clip'",
    "ALTER TABLE jobs ADD COLUMN approval_required INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN decision TEXT",
    "ALTER TABLE jobs ADD COLUMN decided_by TEXT",
    "ALTER TABLE jobs ADD COLUMN decided_at TEXT",
    "ALTER TABLE jobs ADD COLUMN decision_reason TEXT",
)
V1_AUDIT = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq            INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT,
    action         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    case_id        TEXT,
    justification  TEXT,
    clip_sha256    TEXT,
    model_ids      TEXT,
    frames         INTEGER,
    job_id         TEXT,
    client         TEXT,
    detail         TEXT,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
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


def _v2_database(path, job_id: str) -> None:
    """A version-2 file as the code before Alembic left it: every table, dual control."""
    _v1_database(path, job_id)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V1_AUDIT)
    for statement in V2_MIGRATION:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def _file_state(path) -> tuple[int, str | None, list[str]]:
    """``user_version``, the Alembic revision and the jobs columns of a SQLite file."""
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        revision = (
            conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            if "alembic_version" in tables
            else None
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    finally:
        conn.close()
    return version, revision, columns


def test_version_1_database_is_migrated_and_its_queued_job_runs(
    tmp_path, models_dir, evidence_clip
):
    # An old SQLite file: SQLite whatever $UUNET_TEST_DATABASE says.
    settings = settings_for(tmp_path, models_dir, **sqlite_database(tmp_path / "data"))
    job_id = "ab" * 12
    _v1_database(settings.database_path, job_id)
    services = build_services(settings, camera_keys=SECRETS.camera_keys)
    try:
        assert _file_state(settings.database_path)[:2] == (SCHEMA_VERSION, "0004")
        assert SCHEMA_VERSION == 4
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
    version, revision, columns = _file_state(path)
    assert (version, revision) == (4, "0004")
    assert columns[-8:] == [
        "kind",
        "approval_required",
        "decision",
        "decided_by",
        "decided_at",
        "decision_reason",
        "attempts",
        "heartbeat_at",
    ]
    with again.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM jobs")).scalar_one() == 1
    again.close()


def test_version_2_database_is_adopted_as_it_is_then_upgraded(tmp_path, caplog):
    path = tmp_path / "data" / "authority.sqlite3"
    _v2_database(path, "ef" * 12)
    before = _file_state(path)[2]
    with caplog.at_level("INFO", logger="authority_service.migrate"):
        db = Database(path)
    # Stamped 0002 as it is, then 0003 adds its columns only (0004: a table of its own).
    assert _file_state(path) == (4, "0004", [*before, "attempts", "heartbeat_at"])
    assert "schema version 2 adopted" in caplog.text
    assert "schema migrated from version 2 to 4" in caplog.text
    with db.read() as conn:
        row = conn.execute(text("SELECT kind, attempts, heartbeat_at FROM jobs")).one()
    assert tuple(row) == ("clip", 0, None)  # an old job reads as never started
    db.close()


def test_fresh_database_has_the_current_schema(database):
    with database.read() as conn:
        assert current_revision(conn) == f"{SCHEMA_VERSION:04d}"
        schema = inspect(conn)
        assert {"users", "audit_log", "jobs", "job_segments"} <= set(schema.get_table_names())
        columns = {c["name"] for c in schema.get_columns("jobs")}
        segments = {c["name"] for c in schema.get_columns("job_segments")}
    assert {"kind", "approval_required", "decided_by", "decision_reason", "attempts"} <= columns
    assert {"job_id", "segment", "attempt", "status", "runs", "token", "result"} <= segments


def test_several_processes_opening_a_new_database_at_once_all_succeed(database_target):
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    args = (database_target.url, database_target.password, barrier)
    openers = [spawn.Process(target=open_at_once, args=args) for _ in range(4)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=120)
    assert [o.exitcode for o in openers] == [0, 0, 0, 0]
    db = database_target.open()
    with db.read() as conn:
        assert current_revision(conn) == f"{SCHEMA_VERSION:04d}"
        assert conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar_one() == 1
    db.close()


def test_database_of_an_unknown_newer_revision_is_refused(database, database_target):
    with database.transaction() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    database.close()
    with pytest.raises(DatabaseError, match="schema version 0099 is newer than this code's 4"):
        database_target.open()


def test_database_of_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "data" / "authority.sqlite3"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this code"):
        Database(path)
