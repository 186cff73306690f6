"""The security probe, part 2: audit tampering followed by legitimate appends."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from authority_service.audit import record_hash  # noqa: E402
from bench.probe_harness import Authority, Secrets  # noqa: E402

log = logging.getLogger("security_probe")


# -- 2. audit tampering -----------------------------------------------------------------------


@contextmanager
def _tamper_db(auth: Authority) -> Iterator[sqlite3.Connection]:
    """The audit database as an attacker with file access sees it: the append-only triggers
    dropped; committed and closed at the end."""
    conn = sqlite3.connect(auth.data_dir / "authority.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        with conn:
            yield conn
    finally:
        conn.close()


def _delete_tail(auth: Authority, count: int) -> None:
    with _tamper_db(auth) as conn:
        conn.execute(
            "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) FROM audit_log) - ?", (count,)
        )


def _edit_and_rechain(auth: Authority) -> dict[int, str]:
    """Edit a middle record and re-compute every hash from it on; return the new hashes."""
    new: dict[int, str] = {}
    with _tamper_db(auth) as conn:
        rows = [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY seq")]
        target = rows[len(rows) // 2]["seq"]
        prev = None
        for row in rows:
            if row["seq"] < target:
                prev = row["hash"]
                continue
            if row["seq"] == target:
                row["detail"] = "nothing happened here (edited by the probe)"
            row["prev_hash"] = prev
            row["hash"] = record_hash(row)
            prev = row["hash"]
            new[row["seq"]] = row["hash"]
            conn.execute(
                "UPDATE audit_log SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (row["detail"], row["prev_hash"], row["hash"], row["seq"]),
            )
    return new


def _rewrite_anchor_files(auth: Authority, new: dict[int, str]) -> None:
    journal = auth.data_dir / "audit-head.journal.jsonl"
    lines = []
    for line in journal.read_text().splitlines():
        head = json.loads(line)
        head["hash"] = new.get(head["seq"], head["hash"])
        lines.append(json.dumps({"seq": head["seq"], "hash": head["hash"]}))
    journal.write_text("\n".join(lines) + "\n")
    (auth.data_dir / "audit-head.json").write_text(lines[-1] + "\n")


def _remove_anchor_files(auth: Authority) -> None:
    for name in ("audit-head.json", "audit-head.journal.jsonl"):
        (auth.data_dir / name).unlink()


TAMPERINGS = {
    "delete_last_record": lambda a: _delete_tail(a, 1),
    "truncate_tail_3": lambda a: _delete_tail(a, 3),
    "edit_and_rechain": _edit_and_rechain,
    "full_rewrite_with_anchor_files": lambda a: _rewrite_anchor_files(a, _edit_and_rechain(a)),
    "truncate_tail_3_and_remove_anchor_files": lambda a: (
        _delete_tail(a, 3),
        _remove_anchor_files(a),
    ),
}


def _legit_appends(auth: Authority, count: int) -> None:
    """``count`` audited admin actions through the real server: a login, then listings."""
    token = auth.login("adam", "127.0.0.1")
    with auth.client("127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(count - 1):
            client.get("/v1/users").raise_for_status()


def probe_tampering(root: Path, keys: Secrets, appends: tuple[int, ...]) -> dict[str, Any]:
    base = Authority(root / "tamper-base", keys)
    base.write_config()
    for name, role in (("adam", "admin"), ("audrey", "auditor"), ("ivy", "investigator")):
        base.add_user(name, role)
    base.start()
    token = base.login("adam", "127.0.0.1")
    with base.client("127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(4):
            client.get("/v1/users").raise_for_status()
    audit_token = base.login("audrey", "127.0.0.1")
    with base.client("127.0.0.1", headers={"Authorization": f"Bearer {audit_token}"}) as client:
        client.get("/v1/audit").raise_for_status()
        client.get("/v1/audit/verify").raise_for_status()
    base.stop()
    off_host = root / "off-host-journal-copy.jsonl"
    shutil.copy(base.data_dir / "audit-head.journal.jsonl", off_host)
    head_seq, head_hash = base.head()
    expect_head = f"{head_seq}:{head_hash}"
    base_check = base.verify()
    log.info("tampering base: %d records, verify %s", head_seq, base_check["summary"])

    results = []
    for case, tamper in TAMPERINGS.items():
        for count in appends:
            auth = Authority(root / f"tamper-{case}-{count}", keys)
            shutil.copytree(base.data_dir, auth.data_dir)
            auth.write_config()
            tamper(auth)
            after_tamper = len(auth.audit_records())
            anchor_error = False
            if count:
                auth.start()
                _legit_appends(auth, count)
                auth.stop()
                anchor_error = "audit anchor kept" in auth.log_path.read_text(errors="replace")
            appended = len(auth.audit_records()) - after_tamper
            checks = {"plain": auth.verify(), "anchor_copy": auth.verify("--anchor", str(off_host))}
            if not checks["plain"]["detected"]:
                checks["expect_head"] = auth.verify("--expect-head", expect_head)
            result = {
                "case": case,
                "appends": count,
                "appended_records": appended,
                "server_logged_anchor_error": anchor_error,
                "detected": {name: check["detected"] for name, check in checks.items()},
                "verify": checks,
            }
            log.info("tampering %s + %d appends: detected %s", case, count, result["detected"])
            results.append(result)
            shutil.rmtree(auth.data_dir)
    return {
        "base_records": head_seq,
        "base_verify_valid": not base_check["detected"],
        "off_host_copy": "audit-head.journal.jsonl copied before tampering (--anchor COPY); "
        f"--expect-head {head_seq}:<hash> the head before tampering",
        "legit_append": "an admin login (1 record), then GET /v1/users (1 record each)",
        "cases": results,
    }
