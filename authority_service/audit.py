"""The append-only, hash-chained audit log, and the anchor of its head.

Every record holds the SHA-256 of the previous record (``prev_hash``; 64 zeros for the first)
and its own ``hash``: SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of all its
fields except ``hash``, ``prev_hash`` included. So editing any field of a record, deleting or
inserting a record, or reordering records breaks the chain from that point on.

Deleting the *last* records, or editing one and re-computing every hash after it, leaves a
chain that is valid on its own; the anchor catches both. Two files next to the database hold it:

* ``audit-head.json``: the anchored head, ``{"seq": N, "hash": "<sha256>"}``;
* ``audit-head.journal.jsonl``: every head ever anchored, one such object per line, append-only.

An append moves the anchor only when the stored chain *extends* the anchored head: the record
at the anchored ``seq`` still hashes to the anchored hash, and every record from there to the
new one is intact and linked. Otherwise it keeps the old anchor and logs an ERROR, so a
truncated or re-chained log stays reported by :meth:`AuditLog.verify` however many legitimate
records follow. :meth:`~AuditLog.verify` checks the head file and every journaled head against
the chain.

Someone able to rewrite the database *and* these files can still forge history: the chain makes
tampering evident, not impossible. Keep a copy of the head off the host, where the authority's
administrators cannot edit it: ship ``audit-head.journal.jsonl`` (or ``audit-head.json``) on a
schedule, or the journal of the service (each append logs ``audit #N ... (head <sha256>)`` at
INFO), or note ``head_seq``/``head_hash`` of ``GET /v1/audit/verify``. Then check the log
against the copy: ``uunet-authority audit verify --anchor COPY`` (a copy of either file) or
``--expect-head SEQ:HASH``; every such head must still be in the chain with that hash.

After a break has been investigated, the anchor is re-established by moving both files aside:
the next append then anchors afresh once the whole chain, from the first record, checks out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from authority_service.db import Database
from shared.private_files import open_private, private_dir

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "VerifyReport",
    "parse_head",
    "read_heads",
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
_HEX64 = frozenset("0123456789abcdef")


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
    #: Heads checked beyond the head file: journaled ones, then those given to ``verify``.
    heads_checked: int = 0


def record_hash(values: dict[str, object]) -> str:
    """SHA-256 (hex) of the canonical JSON of a record's fields (all but ``hash``)."""
    canonical = {name: values.get(name) for name in _FIELDS}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _head(seq: object, digest: object) -> tuple[int, str]:
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 1
        or not isinstance(digest, str)
        or len(digest) != 64
        or not set(digest) <= _HEX64
    ):
        raise ValueError(f"not an audit head: seq {seq!r}, hash {digest!r}")
    return seq, digest


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` (a record number and its lower-case hex SHA-256) as ``(seq, hash)``.

    Raises:
        ValueError: not of that form.
    """
    seq, sep, digest = text.strip().partition(":")
    if not sep or not seq.isdigit():
        raise ValueError(f"{text!r} is not SEQ:HASH (e.g. 42:{'0' * 8}...)")
    return _head(int(seq), digest.lower())


def read_heads(path: str | Path) -> list[tuple[int, str]]:
    """The heads in ``path``: a copy of the head file (one JSON object) or of the journal (one
    per line), each ``{"seq": N, "hash": "<sha256>"}``.

    Raises:
        OSError: the file cannot be read.
        ValueError: a line is not such an object (its number is in the message).
    """
    heads = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            heads.append(_head(data["seq"], data["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not an audit head ({exc})") from exc
    return heads


def _row_to_record(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (sqlite3.Row)


class AuditLog:
    """Append and read the chained log in ``db``; keep the head anchor in ``anchor_path`` and
    every anchored head in the journal next to it (``<stem>.journal.jsonl``)."""

    def __init__(self, db: Database, anchor_path: str | Path) -> None:
        self.db = db
        self.anchor_path = Path(anchor_path)
        self.journal_path = self.anchor_path.with_name(f"{self.anchor_path.stem}.journal.jsonl")

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
        self._advance_anchor(record)
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

    def _advance_anchor(self, record: AuditRecord) -> None:
        """Anchor ``record`` as the head if the stored chain extends the anchored head.

        Several processes (server, CLI) append to one database: the anchor only moves forward.
        A chain that does not extend the anchored head (a record deleted, or edited and the rest
        re-chained) leaves the anchor where it is and logs an ERROR; ``verify`` reports it.

        Raises:
            OSError: the journal or the head file cannot be written.
        """
        private_dir(self.anchor_path.parent)  # 0700, and the files below 0600
        with open_private(self.anchor_path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            anchor = self.read_anchor()
            if anchor is None and self.journal_path.exists():
                problem: str | None = f"the head file {self.anchor_path} is missing"
            elif anchor is not None and anchor[0] < 0:
                problem = f"the head file {self.anchor_path} is unreadable"
            elif anchor is not None and anchor[0] >= record.seq:
                # Another process anchored a later record: nothing to move, but say so if the
                # anchored record is gone or changed (a truncated log).
                problem = self._extension_problem(anchor, anchor[0], anchor[1])
                if problem is None:
                    return
            else:
                problem = self._extension_problem(anchor, record.seq, record.hash)
            if problem is not None:
                log.error(
                    "audit anchor kept at %s, not moved to #%d: %s; the audit log was altered "
                    "(`uunet-authority audit verify` reports it)",
                    f"#{anchor[0]}" if anchor and anchor[0] >= 0 else "nothing",
                    record.seq,
                    problem,
                )
                return
            line = json.dumps({"seq": record.seq, "hash": record.hash}) + "\n"
            with open_private(self.journal_path, "a", encoding="utf-8") as journal:
                journal.write(line)
                journal.flush()
                os.fsync(journal.fileno())
            tmp = self.anchor_path.with_suffix(".tmp")
            with open_private(tmp, "w", encoding="utf-8") as head:
                head.write(line)
                head.flush()
                os.fsync(head.fileno())
            os.replace(tmp, self.anchor_path)

    def _extension_problem(
        self, anchor: tuple[int, str] | None, seq: int, digest: str
    ) -> str | None:
        """Why the stored records from the anchored head to ``(seq, digest)`` are not an intact
        chain from that head (``None``: they are). No anchor: the chain from the first record."""
        start_seq, start_hash = anchor if anchor is not None else (0, GENESIS_HASH)
        expected, prev_hash = max(start_seq, 1), start_hash
        rows = self.db.connection().execute(
            "SELECT * FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq", (expected, seq)
        )
        for row in rows:
            values = dict(zip(row.keys(), tuple(row), strict=True))
            if values["seq"] != expected:
                return f"record {expected} is missing"
            if record_hash(values) != values["hash"]:
                return f"record {expected} does not match its hash"
            if expected == start_seq:
                if values["hash"] != start_hash:
                    return f"the anchored record {start_seq} was replaced (its hash differs)"
            elif values["prev_hash"] != prev_hash:
                return f"record {expected} does not chain from record {expected - 1}"
            prev_hash, expected = str(values["hash"]), expected + 1
        if expected != seq + 1:
            return f"record {expected} is missing"
        if prev_hash != digest:
            return f"record {seq} is not the one expected (its hash differs)"
        return None

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

    def read_journal(self) -> list[tuple[int, str]]:
        """Every head anchored so far, oldest first (empty before the first append).

        Raises:
            OSError: the journal exists but cannot be read.
            ValueError: a line of it is not a head.
        """
        try:
            return read_heads(self.journal_path)
        except FileNotFoundError:
            return []

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

    def verify(
        self, max_problems: int = 100, expected_heads: Sequence[tuple[int, str]] = ()
    ) -> VerifyReport:
        """Walk the whole chain and report every break (up to ``max_problems``).

        Detects: an edited field (hash mismatch), a deleted, inserted or reordered record
        (``prev_hash`` mismatch, a gap in ``seq``), and a truncated or re-chained tail (the head
        file, a journaled head or one of ``expected_heads``, heads kept off the host, names a
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
        try:
            journaled = self.read_journal()
        except (OSError, ValueError) as exc:
            report(head_seq, f"the anchor journal is unreadable: {exc}")
            journaled = []
        checked = 0
        for source, heads in (
            (f"journaled in {self.journal_path.name}", journaled),
            ("expected (kept off the host)", expected_heads),
        ):
            differ = [(seq, digest) for seq, digest in heads if hashes.get(seq) != digest]
            checked += len(heads)
            if differ:
                seq, _ = differ[0]
                state = "missing" if seq not in hashes else "different"
                report(
                    seq,
                    f"{len(differ)} of {len(heads)} heads {source} do not match the chain; "
                    f"the first, record {seq}, is {state}",
                )
        return VerifyReport(
            valid=not problems,
            records=count,
            head_seq=head_seq,
            head_hash=head_hash,
            anchor_seq=anchor_seq,
            problems=problems,
            heads_checked=checked,
        )
