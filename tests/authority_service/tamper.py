"""What an attacker with write access to the database does to the audit log (on SQLite or
PostgreSQL): drop the append-only triggers, edit, re-chain."""

from __future__ import annotations

from sqlalchemy import text

from authority_service.audit import GENESIS_HASH, record_hash
from authority_service.db import Database


class Raw:
    """What an attacker with write access to the database does: drop the guards, then edit
    (each statement committed on its own)."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine
        on_table = " ON audit_log" if db.backend == "postgresql" else ""
        for trigger in ("audit_log_no_update", "audit_log_no_delete"):
            self.execute(f"DROP TRIGGER {trigger}{on_table}")

    def execute(self, statement: str, params: dict | None = None) -> list[dict]:
        with self.engine.begin() as conn:
            result = conn.execute(text(statement), params or {})
            return [dict(row) for row in result.mappings()] if result.returns_rows else []

    def close(self) -> None:
        self.engine.dispose()


def rechain(conn: Raw, first_seq: int) -> None:
    """What a careful attacker does after an edit: recompute every hash from ``first_seq`` on."""
    prev = GENESIS_HASH
    for row in conn.execute("SELECT * FROM audit_log ORDER BY seq"):
        if row["seq"] >= first_seq:
            row["prev_hash"] = prev
            row["hash"] = record_hash(row)
            conn.execute(
                "UPDATE audit_log SET outcome = :outcome, prev_hash = :prev_hash, hash = :hash "
                "WHERE seq = :seq",
                row,
            )
        prev = row["hash"]
