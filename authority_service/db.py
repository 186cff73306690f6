"""The embedded SQLite database: one file holding users, the audit log and the job table.

One connection per thread (SQLite connections must not be shared while in use), WAL journal so
readers never block the writer, a busy timeout so the CLI and the server can write the same file,
and ``BEGIN IMMEDIATE`` transactions for read-modify-write sequences (the audit chain's append).

Schema changes are versioned (``PRAGMA user_version``): :data:`_SCHEMA` is version 1, and each
later version is a list of statements in :data:`_MIGRATIONS` (columns added with defaults, so a
row written before reads as it did). Opening a database runs the missing ones, in order, in one
transaction; a database of a newer version than this code is refused.

The audit table is append-only at the database level: triggers abort any ``UPDATE`` or
``DELETE``. Someone with write access to the file can drop them; the hash chain
(:mod:`authority_service.audit`) is what detects that.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.private_files import create_private_file, private_dir

__all__ = ["SCHEMA_VERSION", "Database", "DatabaseError"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

#: Version 1 of the schema; later versions are :data:`_MIGRATIONS` of it.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name              TEXT PRIMARY KEY,
    role              TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    disabled          INTEGER NOT NULL DEFAULT 0,
    token_generation  INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
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
CREATE TABLE IF NOT EXISTS jobs (
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
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
"""

#: The statements that bring a database of the version before to each version.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Dual control: what a job reverses, and an approver's decision on it.
    2: (
        "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'clip'",
        "ALTER TABLE jobs ADD COLUMN approval_required INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN decision TEXT",
        "ALTER TABLE jobs ADD COLUMN decided_by TEXT",
        "ALTER TABLE jobs ADD COLUMN decided_at TEXT",
        "ALTER TABLE jobs ADD COLUMN decision_reason TEXT",
    ),
}


class DatabaseError(RuntimeError):
    """The database file cannot be opened, or has a schema this code does not know."""


class Database:
    """A SQLite file with per-thread connections and the authority's schema.

    Raises:
        DatabaseError: the file cannot be opened or created, or its schema is newer.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            # Password hashes live here: 0600 in a 0700 directory (SQLite gives its -wal and
            # -shm files the database file's mode).
            private_dir(self.path.parent)
            create_private_file(self.path)
            conn = self.connection()
            version = self._version(conn)
            conn.executescript(_SCHEMA)
            self._migrate(announce=version > 0)
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseError(f"cannot open database {self.path}: {exc}") from exc

    def _version(self, conn: sqlite3.Connection) -> int:
        """The file's schema version.

        Raises:
            DatabaseError: it is newer than this code's.
        """
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path}: schema version {version} is newer than this code's "
                f"{SCHEMA_VERSION}; upgrade uunet"
            )
        return version

    def _migrate(self, announce: bool) -> None:
        """Run the migrations this file lacks, in one transaction (another process opening the
        same file at once waits for it, then finds nothing left to do); ``announce`` logs each
        (not for a file created just now)."""
        with self.transaction() as conn:
            version = max(self._version(conn), 1)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
                if announce:
                    log.info("%s: schema migrated to version %d", self.path, target)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction on this thread's connection; committed on success, rolled back on error.

        ``immediate`` takes the write lock at the start, so a read-then-write sequence cannot
        interleave with another writer (another thread or process).
        """
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def ping(self) -> bool:
        """Whether a trivial query succeeds (for ``/healthz``)."""
        try:
            self.connection().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            log.warning("database ping failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Close every connection this object opened (any thread)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
