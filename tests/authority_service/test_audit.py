"""authority_service.audit: a hash chain that detects edited, deleted, inserted and cut records,
on SQLite and on PostgreSQL, and stays one chain under writers in several processes."""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from authority_service.audit import (
    GENESIS_HASH,
    AnchorExistsError,
    AuditEntry,
    AuditLog,
    parse_head,
    read_heads,
    record_hash,
)
from tests.authority_service.db_writers import append_at_once
from tests.authority_service.tamper import Raw, rechain


@pytest.fixture
def log(database, tmp_path) -> AuditLog:
    audit = AuditLog(database, tmp_path / "audit-head.json")
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


def _raw(log: AuditLog) -> Raw:
    return Raw(log.db)


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


def test_records_filter_by_outcome_and_time_range(log):
    records = log.records()
    assert [r.seq for r in log.records(outcome="refused")] == [1, 3, 5]
    third = datetime.fromisoformat(records[2].at)
    assert [r.seq for r in log.records(since=third)] == [3, 4, 5]  # at or after
    assert [r.seq for r in log.records(until=third)] == [1, 2]  # before
    naive = third.astimezone(timezone.utc).replace(tzinfo=None)  # naive: taken as UTC
    assert [r.seq for r in log.records(since=naive, outcome="granted")] == [4]
    elsewhere = third.astimezone(timezone(timedelta(hours=-5)))  # the same moment
    assert [r.seq for r in log.records(since=elsewhere, until=elsewhere)] == []


def test_a_nul_is_stored_hashed_and_searched_as_its_standin_on_either_backend(log):
    # PostgreSQL's text cannot hold U+0000 (a DataError before the stand-in); SQLite's can.
    appended = log.append(
        AuditEntry(
            actor="iv\x00y", action="login", outcome="refused", case_id="C-\x00", detail="\x00"
        )
    )
    assert (appended.actor, appended.case_id, appended.detail) == (
        "iv\u2400y",
        "C-\u2400",
        "\u2400",
    )
    assert log.records(case_id="C-\x00") == [appended] == log.records(actor="iv\u2400y")
    assert log.records(actor="ivy", after_seq=5) == []
    assert log.verify().valid


def test_database_triggers_refuse_update_and_delete(log):
    statements = [
        "UPDATE audit_log SET outcome = 'granted' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ]
    if log.db.backend == "postgresql":
        statements.append("TRUNCATE audit_log")  # skips row triggers: a statement one refuses it
    for statement in statements:
        with pytest.raises(IntegrityError, match="append-only"), log.db.transaction() as conn:
            conn.execute(text(statement))
    assert log.verify().valid and len(log.records()) == 5


def test_verify_detects_an_edited_field(log):
    _raw(log).execute("UPDATE audit_log SET justification = 'routine' WHERE seq = 3")
    report = log.verify()
    assert not report.valid
    assert [(p.seq, "edited" in p.problem) for p in report.problems] == [(3, True)]


def test_verify_detects_an_edit_with_recomputed_hash_downstream(log):
    conn = _raw(log)
    [row] = conn.execute("SELECT * FROM audit_log WHERE seq = 3")
    assert row["outcome"] == "refused"
    row["outcome"] = "granted"  # the attacker turns a refusal into a grant, hash recomputed
    conn.execute(
        "UPDATE audit_log SET outcome = :outcome, hash = :hash WHERE seq = 3",
        {"outcome": "granted", "hash": record_hash(row)},
    )
    problems = log.verify().problems
    assert [p.seq for p in problems] == [4, 3] and "prev_hash" in problems[0].problem
    assert "journaled" in problems[1].problem  # the journal holds record 3's original hash


def test_verify_detects_a_deleted_middle_record(log):
    _raw(log).execute("DELETE FROM audit_log WHERE seq = 2")
    problems = log.verify().problems
    assert {p.seq for p in problems} == {2, 3}
    assert any("gap" in p.problem for p in problems)
    assert any("journaled" in p.problem and "missing" in p.problem for p in problems)


def test_verify_detects_a_truncated_tail_through_the_anchor(log):
    _raw(log).execute("DELETE FROM audit_log WHERE seq >= 4")
    report = log.verify()
    assert not report.valid and report.head_seq == 3
    assert "missing" in report.problems[0].problem


def test_verify_detects_a_missing_anchor(log):
    log.anchor_path.unlink()
    assert "anchor file" in log.verify().problems[0].problem


def test_concurrent_appends_from_threads_keep_one_chain(log, database_target):
    # A second AuditLog on the same database and files stands for the CLI next to the server.
    other = AuditLog(database_target.open(), log.anchor_path)

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
    other.db.close()


def test_concurrent_appends_from_processes_keep_one_chain(log, database_target):
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    target = (database_target.url, database_target.password, log.anchor_path)
    writers = [
        spawn.Process(target=append_at_once, args=(*target, w, 25, barrier)) for w in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]
    report = log.verify()
    assert report.valid and report.records == 5 + 4 * 25 and report.anchor_seq == 105
    actors = {r.actor for r in log.records(limit=1000)}
    assert {f"p{w}-{i}" for w in range(4) for i in range(25)} <= actors


def _delete_last(conn: Raw) -> None:
    conn.execute("DELETE FROM audit_log WHERE seq = 5")


def _edit_and_rechain(conn: Raw) -> None:
    conn.execute("UPDATE audit_log SET outcome = 'granted' WHERE seq = 3")  # was refused
    rechain(conn, 3)


def _truncate(conn: Raw) -> None:
    conn.execute("DELETE FROM audit_log WHERE seq >= 3")


def _append(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(AuditEntry(actor=f"later-{i}", action="login", outcome="granted"))


@pytest.mark.parametrize("later", [0, 1, 5])
@pytest.mark.parametrize(
    "tamper", [_delete_last, _edit_and_rechain, _truncate], ids=lambda f: f.__name__[1:]
)
def test_verify_detects_a_rewritten_tail_after_later_appends(
    log, caplog, tamper: Callable[[Raw], None], later: int
):
    anchored = log.read_anchor()
    tamper(_raw(log))
    caplog.set_level(logging.ERROR, logger="authority_service.audit")
    _append(log, later)  # the service goes on writing legitimate records
    report = log.verify()
    assert not report.valid
    # The anchor did not follow the rewritten chain: it still names the original head...
    assert log.read_anchor() == anchored and report.anchor_seq == 5
    assert any(p.seq == 5 and "anchor" in p.problem for p in report.problems)
    # ...and every append that could not move it said so.
    assert len([r for r in caplog.records if "audit anchor kept at #5" in r.message]) == later


def test_verify_detects_a_rewritten_tail_even_without_the_journal(log):
    _edit_and_rechain(_raw(log))
    log.journal_path.unlink()  # the attacker knows of the journal, not of the head file
    _append(log, 5)
    report = log.verify()
    assert not report.valid and report.anchor_seq == 5
    assert [p.problem for p in report.problems] == [
        "anchored record's hash differs from the anchor"
    ]


def test_verify_detects_a_truncation_with_a_rewritten_head_file_through_the_journal(log):
    _truncate(_raw(log))
    head = log.records()[-1]
    log.anchor_path.write_text(json.dumps({"seq": head.seq, "hash": head.hash}))
    _append(log, 5)
    report = log.verify()
    assert not report.valid
    assert "journaled" in report.problems[0].problem and report.problems[0].seq == 3
    assert report.heads_checked == 5 + 5  # journaled: the 5 originals, the 5 later ones


def test_verify_detects_a_full_rewrite_only_with_a_head_kept_off_the_host(log):
    off_host = parse_head(f"{log.read_anchor()[0]}:{log.read_anchor()[1]}")
    copy = log.anchor_path.with_name("copied-off-host.jsonl")
    copy.write_text(log.journal_path.read_text())
    # The attacker rewrites the database and both anchor files consistently.
    _edit_and_rechain(_raw(log))
    log.anchor_path.unlink()
    log.journal_path.unlink()
    assert log.reanchor().valid  # whoever holds the host can anchor the forged chain too
    _append(log, 1)
    assert log.verify().valid  # on the host alone the forgery is undetectable
    report = log.verify(expected_heads=[off_host])
    assert not report.valid and report.heads_checked == len(read_heads(log.journal_path)) + 1
    assert report.problems[0].seq == 5 and "expected (kept off the host)" in (
        report.problems[0].problem
    )
    from_copy = log.verify(expected_heads=read_heads(copy))
    assert "3 of 5 heads expected" in from_copy.problems[0].problem  # records 3, 4 and 5


def test_a_missing_head_file_with_a_journal_is_not_re_anchored(log, caplog):
    log.anchor_path.unlink()
    with caplog.at_level(logging.ERROR, logger="authority_service.audit"):
        _append(log, 2)
    assert log.read_anchor() is None and "is missing" in caplog.records[0].message
    assert not log.verify().valid


def test_anchor_files_hold_every_head(log):
    assert log.read_journal() == [(r.seq, r.hash) for r in log.records()]
    assert read_heads(log.anchor_path) == [log.read_anchor()]
    with pytest.raises(ValueError, match="SEQ:HASH"):
        parse_head("5-abc")
    with pytest.raises(ValueError, match="not an audit head"):
        parse_head("5:" + "g" * 64)


def test_removing_both_anchor_files_leaves_a_truncated_log_unanchored(log, caplog):
    """The probe's case: truncate the tail, delete both files, wait for traffic. Appends do not
    anchor the shortened chain; only an operator's reanchor does, after the files are moved."""
    conn = _raw(log)
    conn.execute("DELETE FROM audit_log WHERE seq > 2")
    conn.close()
    log.anchor_path.unlink()
    log.journal_path.unlink()
    with caplog.at_level(logging.ERROR, logger="authority_service.audit"):
        _append(log, 5)
    assert log.read_anchor() is None and "audit reanchor" in caplog.text
    report = log.verify()
    assert not report.valid and "anchor file" in report.problems[0].problem
    reanchored = log.reanchor()
    assert reanchored.valid and reanchored.anchor_seq == reanchored.head_seq == 7
    with pytest.raises(AnchorExistsError):
        log.reanchor()


def test_reanchor_refuses_a_broken_chain(log):
    conn = _raw(log)
    conn.execute("UPDATE audit_log SET actor = 'eve' WHERE seq = 2")
    conn.close()
    log.anchor_path.unlink()
    log.journal_path.unlink()
    report = log.reanchor()
    assert not report.valid and "edited" in report.problems[0].problem
    assert log.read_anchor() is None
