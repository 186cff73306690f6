"""The append-only, hash-chained audit log.

Every record holds the SHA-256 of the previous record (``prev_hash``; 64 zeros for the first)
and its own ``hash``: SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of all its
fields except ``hash``, ``prev_hash`` included. So editing any field of a record, deleting or
inserting a record, or reordering records breaks the chain from that point on.

Deleting the *last* records leaves a shorter valid chain; to catch that the log keeps an anchor
outside the database (``audit-head.json`` in the data directory: the newest sequence number and
hash), updated after every append, and logs each new head at INFO (ship the journal off the host
to make the anchor independent of the machine). Someone able to rewrite the database *and*
every copy of the anchor can still forge history: the chain makes tampering evident, not
impossible.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from authority_service.db import Database

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "VerifyReport",
    "record_hash",
]

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
_FIELDS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "case_id",
    "justification",
    "clip_sha256",
    "model_ids",
    "frames",
    "job_id",
    "client",
    "detail",
    "prev_hash",
)


@dataclass(frozen=True)
class AuditEntry:
    """What a caller records: who did what, why, on which clip, and how it ended."""

    actor: str
    action: str
    outcome: str
    role: str | None = None
    case_id: str | None = None
    justification: str | None = None
    clip_sha256: str | None = None
    model_ids: str | None = None
    frames: int | None = None
    job_id: str | None = None
    client: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class AuditRecord(AuditEntry):
    """A stored entry with its place in the chain."""

    seq: int = 0
    at: str = ""
    prev_hash: str = GENESIS_HASH
    hash: str = ""


@dataclass(frozen=True)
class AuditProblem:
    """One place where the chain is broken."""

    seq: int
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """Result of :meth:`AuditLog.verify`."""

    valid: bool
    records: int
    head_seq: int
    head_hash: str
    anchor_seq: int | None
    problems: list[AuditProblem] = field(default_factory=list)


def record_hash(values: dict[str, object]) -> str:
    """SHA-256 (hex) of the canonical JSON of a record's fields (all but ``hash``)."""
    canonical = {name: values.get(name) for name in _FIELDS}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_to_record(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (sqlite3.Row)


class AuditLog:
    """Append and read the chained log in ``db``; keep the head anchor in ``anchor_path``."""

    def __init__(self, db: Database, anchor_path: str | Path) -> None:
        self.db = db
        self.anchor_path = Path(anchor_path)

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Write ``entry`` as the next record of the chain and return it.

        Raises:
            sqlite3.Error: the database refused the write (the caller must then not proceed).
        """
        values: dict[str, object] = asdict(entry)
        with self.db.transaction() as conn:
            last = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            values["seq"] = (last["seq"] if last else 0) + 1
            values["prev_hash"] = last["hash"] if last else GENESIS_HASH
            values["at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            values["hash"] = record_hash(values)
            columns = [*_FIELDS, "hash"]
            conn.execute(
                f"INSERT INTO audit_log ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [values[c] for c in columns],
            )
        record = AuditRecord(**values)  # type: ignore[arg-type]
        self._write_anchor(record.seq, record.hash)
        log.info(
            "audit #%d %s %s by %s: %s (head %s)",
            record.seq,
            record.action,
            record.outcome,
            record.actor,
            record.detail or "-",
            record.hash,
        )
        return record

    def _write_anchor(self, seq: int, digest: str) -> None:
        # Several processes (server, CLI) append to one database: keep the highest head.
        self.anchor_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.anchor_path.with_suffix(".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_anchor()
            if current is not None and current[0] >= seq:
                return
            tmp = self.anchor_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"seq": seq, "hash": digest}))
            os.replace(tmp, self.anchor_path)

    def read_anchor(self) -> tuple[int, str] | None:
        """The anchored ``(seq, hash)``, or ``None`` when no record was ever written."""
        try:
            data = json.loads(self.anchor_path.read_text())
            return int(data["seq"]), str(data["hash"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # An unreadable anchor is itself a finding; verify() reports it.
            return (-1, "")

    def records(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        case_id: str | None = None,
        actor: str | None = None,
    ) -> list[AuditRecord]:
        """Records with ``seq > after_seq`` (oldest first), optionally filtered."""
        query = "SELECT * FROM audit_log WHERE seq > ?"
        params: list[object] = [after_seq]
        if case_id is not None:
            query += " AND case_id = ?"
            params.append(case_id)
        if actor is not None:
            query += " AND actor = ?"
            params.append(actor)
        query += " ORDER BY seq LIMIT ?"
        params.append(limit)
        rows = self.db.connection().execute(query, params).fetchall()
        return [_row_to_record(r) for r in rows]

    def verify(self, max_problems: int = 100) -> VerifyReport:
        """Walk the whole chain and report every break (up to ``max_problems``).

        Detects: an edited field (hash mismatch), a deleted, inserted or reordered record
        (``prev_hash`` mismatch, a gap in ``seq``), and a truncated tail (the anchor names a
        record that is missing or different).
        """
        problems: list[AuditProblem] = []

        def report(seq: int, problem: str) -> None:
            if len(problems) < max_problems:
                problems.append(AuditProblem(seq, problem))

        prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
        head_seq, head_hash = 0, GENESIS_HASH
        hashes: dict[int, str] = {}
        cursor = self.db.connection().execute("SELECT * FROM audit_log ORDER BY seq")
        for row in cursor:
            values = dict(zip(row.keys(), tuple(row), strict=True))
            seq = int(values["seq"])
            count += 1
            if seq != expected_seq:
                report(seq, f"sequence gap: expected record {expected_seq}, found {seq}")
            if values["prev_hash"] != prev_hash:
                report(seq, "prev_hash does not match the previous record's hash")
            if record_hash(values) != values["hash"]:
                report(seq, "record content does not match its hash (edited)")
            prev_hash, expected_seq = str(values["hash"]), seq + 1
            head_seq, head_hash = seq, str(values["hash"])
            hashes[seq] = head_hash
        anchor = self.read_anchor()
        anchor_seq = None
        if anchor is not None:
            anchor_seq, anchor_hash = anchor
            if anchor_seq < 0:
                report(head_seq, f"anchor file {self.anchor_path} is unreadable")
            elif anchor_seq not in hashes:
                report(
                    anchor_seq,
                    f"anchored record {anchor_seq} is missing (log truncated to {head_seq})",
                )
            elif hashes[anchor_seq] != anchor_hash:
                report(anchor_seq, "anchored record's hash differs from the anchor")
        elif count:
            report(head_seq, f"records exist but the anchor file {self.anchor_path} is missing")
        return VerifyReport(
            valid=not problems,
            records=count,
            head_seq=head_seq,
            head_hash=head_hash,
            anchor_seq=anchor_seq,
            problems=problems,
        )
