"""authority_service.audit: a hash chain that detects edited, deleted, inserted and cut records."""

from __future__ import annotations

import itertools
import sqlite3
import threading

import pytest

from authority_service.audit import GENESIS_HASH, AuditEntry, AuditLog, record_hash
from authority_service.db import Database


@pytest.fixture
def log(tmp_path) -> AuditLog:
    audit = AuditLog(Database(tmp_path / "db.sqlite3"), tmp_path / "audit-head.json")
    for i in range(5):
        audit.append(
            AuditEntry(
                actor="ivy",
                role="investigator",
                action="reconstruct_frame",
                outcome="granted" if i % 2 else "refused",
                case_id=f"CASE-{i}",
                justification="Needed for the investigation of case 42.",
                clip_sha256="ab" * 32,
                frames=1,
            )
        )
    return audit


def _raw(log: AuditLog) -> sqlite3.Connection:
    """What an attacker with the file does: drop the guards, then edit."""
    conn = sqlite3.connect(log.db.path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    return conn


def test_append_links_each_record_to_the_previous(log):
    records = log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    for prev, record in itertools.pairwise(records):
        assert record.prev_hash == prev.hash
    fields = {k: v for k, v in records[2].__dict__.items() if k != "hash"}
    assert record_hash(fields) == records[2].hash
    report = log.verify()
    assert report.valid and report.records == 5 and report.anchor_seq == 5


def test_database_triggers_refuse_update_and_delete(log):
    conn = log.db.connection()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET outcome = 'granted' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 1")


def test_verify_detects_an_edited_field(log):
    _raw(log).execute("UPDATE audit_log SET justification = 'routine' WHERE seq = 3")
    report = log.verify()
    assert not report.valid
    assert [(p.seq, "edited" in p.problem) for p in report.problems] == [(3, True)]


def test_verify_detects_an_edit_with_recomputed_hash_downstream(log):
    conn = _raw(log)
    row = dict(
        zip(
            [d[0] for d in conn.execute("SELECT * FROM audit_log WHERE seq = 3").description],
            conn.execute("SELECT * FROM audit_log WHERE seq = 3").fetchone(),
            strict=True,
        )
    )
    assert row["outcome"] == "refused"
    row["outcome"] = "granted"  # the attacker turns a refusal into a grant, hash recomputed
    conn.execute(
        "UPDATE audit_log SET outcome = ?, hash = ? WHERE seq = 3", ("granted", record_hash(row))
    )
    problems = log.verify().problems
    assert [p.seq for p in problems] == [4] and "prev_hash" in problems[0].problem


def test_verify_detects_a_deleted_middle_record(log):
    _raw(log).execute("DELETE FROM audit_log WHERE seq = 2")
    problems = log.verify().problems
    assert {p.seq for p in problems} == {3}
    assert any("gap" in p.problem for p in problems)


def test_verify_detects_a_truncated_tail_through_the_anchor(log):
    _raw(log).execute("DELETE FROM audit_log WHERE seq >= 4")
    report = log.verify()
    assert not report.valid and report.head_seq == 3
    assert "missing" in report.problems[0].problem


def test_verify_detects_a_missing_anchor(log):
    log.anchor_path.unlink()
    assert "anchor file" in log.verify().problems[0].problem


def test_concurrent_appends_from_threads_and_processes_keep_one_chain(log, tmp_path):
    # A second AuditLog on the same files stands for the CLI appending next to the server.
    other = AuditLog(Database(log.db.path), log.anchor_path)

    def append(target: AuditLog, n: int) -> None:
        for i in range(n):
            target.append(AuditEntry(actor=f"t{i}", action="login", outcome="granted"))

    threads = [threading.Thread(target=append, args=(t, 20)) for t in (log, other, log)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = log.verify()
    assert report.valid and report.records == 65 and report.anchor_seq == 65
