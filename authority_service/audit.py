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

Removing both files does not reset the anchor: while earlier records exist, appends leave the
log unanchored (ERROR logged, ``verify`` reports it). After a break has been investigated, an
operator moves both files aside and runs ``uunet-authority audit reanchor``, which anchors the
current head if the whole chain, from the first record, checks out (and is itself audited).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from authority_service.audit_anchor import (
    AnchorExistsError,
    HeadAnchor,
    parse_head,
    read_heads,
)
from authority_service.audit_records import (
    FIELDS,
    GENESIS_HASH,
    AuditEntry,
    AuditProblem,
    AuditRecord,
    VerifyReport,
    record_hash,
)
from authority_service.db import Database, storable_text
from authority_service.schema import audit_log

__all__ = [
    "GENESIS_HASH",
    "AnchorExistsError",
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


def _utc_iso(moment: datetime) -> str:
    """``moment`` as the log writes ``at`` (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _row_to_record(row: Mapping[str, Any]) -> AuditRecord:
    return AuditRecord(**row)


class AuditLog:
    """Append and read the chained log in ``db``; keep the head anchor in ``anchor_path`` and
    every anchored head in the journal next to it (``<stem>.journal.jsonl``)."""

    def __init__(self, db: Database, anchor_path: str | Path) -> None:
        self.db = db
        self.anchor = HeadAnchor(anchor_path)
        self.anchor_path = self.anchor.path
        self.journal_path = self.anchor.journal_path

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Write ``entry`` as the next record of the chain and return it.

        Several processes append to one chain: the read of the head and the insert after it are
        one transaction that holds the write lock (SQLite) or the table's lock (PostgreSQL).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database refused the write (the caller must then
                not proceed).
        """
        # Hashed as stored: a NUL (PostgreSQL's text cannot hold it) as db.NUL_STANDIN.
        values: dict[str, object] = {
            name: storable_text(value) if isinstance(value, str) else value
            for name, value in asdict(entry).items()
        }
        with self.db.transaction(lock="audit_log") as conn:
            last = conn.execute(
                select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
            ).first()
            values["seq"] = (last.seq if last else 0) + 1
            values["prev_hash"] = last.hash if last else GENESIS_HASH
            values["at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            values["hash"] = record_hash(values)
            conn.execute(audit_log.insert().values({c: values[c] for c in (*FIELDS, "hash")}))
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
        with self.anchor.locked():
            anchor = self.anchor.read()
            if anchor is None and self.journal_path.exists():
                problem: str | None = f"the head file {self.anchor_path} is missing"
            elif anchor is None and record.seq > 1:
                # Both files gone while the log holds earlier records: whoever removed them may
                # have rewritten those records. Only an operator re-anchors (`audit reanchor`).
                problem = (
                    f"the anchor files ({self.anchor_path.name}, {self.journal_path.name}) are "
                    f"missing while {record.seq - 1} earlier records exist; after investigating, "
                    "re-anchor with `uunet-authority audit reanchor`"
                )
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
            self.anchor.write(record.seq, record.hash)

    def _extension_problem(
        self, anchor: tuple[int, str] | None, seq: int, digest: str
    ) -> str | None:
        """Why the stored records from the anchored head to ``(seq, digest)`` are not an intact
        chain from that head (``None``: they are). No anchor: the chain from the first record."""
        start_seq, start_hash = anchor if anchor is not None else (0, GENESIS_HASH)
        expected, prev_hash = max(start_seq, 1), start_hash
        query = (
            select(audit_log)
            .where(audit_log.c.seq >= expected, audit_log.c.seq <= seq)
            .order_by(audit_log.c.seq)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        for values in rows:
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
        """The anchored ``(seq, hash)`` (see :meth:`HeadAnchor.read`)."""
        return self.anchor.read()

    def read_journal(self) -> list[tuple[int, str]]:
        """Every head anchored so far (see :meth:`HeadAnchor.read_journal`)."""
        return self.anchor.read_journal()

    def reanchor(self) -> VerifyReport:
        """Anchor the current head afresh, after the anchor files were moved aside by an
        operator who investigated a break; returns the chain's report (anchored only if valid).

        Raises:
            AnchorExistsError: an anchor file is still there (move both aside first).
            OSError: the files cannot be written.
        """
        with self.anchor.locked():
            if self.anchor_path.exists() or self.journal_path.exists():
                raise AnchorExistsError(
                    f"{self.anchor_path} or {self.journal_path} exists: move both aside (keep "
                    "them as evidence) before re-anchoring"
                )
            report = self.verify()
            chain_problems = [p for p in report.problems if "anchor file" not in p.problem]
            if chain_problems or report.records == 0:
                return dataclasses.replace(report, valid=False, problems=chain_problems)
            self.anchor.write(report.head_seq, report.head_hash)
        log.warning("audit log re-anchored at #%d (%s)", report.head_seq, report.head_hash)
        return self.verify()

    def records(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        case_id: str | None = None,
        actor: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRecord]:
        """Records with ``seq > after_seq`` (oldest first), optionally filtered: one case,
        actor or outcome, recorded at or after ``since`` and before ``until``."""
        query = select(audit_log).where(audit_log.c.seq > after_seq)
        for column, value in (("case_id", case_id), ("actor", actor), ("outcome", outcome)):
            if value is not None:
                query = query.where(audit_log.c[column] == value)
        # ``at`` is UTC ISO 8601 (microseconds, +00:00): text order is time order.
        if since is not None:
            query = query.where(audit_log.c.at >= _utc_iso(since))
        if until is not None:
            query = query.where(audit_log.c.at < _utc_iso(until))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(audit_log.c.seq).limit(limit)).mappings().all()
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
        with self.db.read() as conn:
            # Streamed in batches: the whole log is never in memory at once.
            rows = conn.execution_options(yield_per=1000).execute(
                select(audit_log).order_by(audit_log.c.seq)
            )
            for values in rows.mappings():
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
