"""Schema version 1: users, the append-only audit log, jobs.

Each table is created only when missing: a SQLite file made before Alembic (``PRAGMA
user_version`` 1 or 2) is adopted by running this revision on it, which adds what an older
version had not created yet (the audit table of a file that never recorded anything).

The audit table refuses ``UPDATE`` and ``DELETE`` (and, on PostgreSQL, ``TRUNCATE``) with a
trigger; whoever owns the table can drop it, and the hash chain is what detects that.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TEXT_C = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
_POSTGRESQL_TRIGGERS = (
    # SQLSTATE 23000 (integrity_constraint_violation), as SQLite's RAISE(ABORT) in a trigger.
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only' "
    "USING ERRCODE = 'integrity_constraint_violation'; END $$",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def upgrade() -> None:
    """Create the version-1 tables that do not exist yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "users" not in existing:
        op.create_table(
            "users",
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("role", sa.Text, nullable=False),
            sa.Column("password_hash", sa.Text, nullable=False),
            sa.Column("disabled", sa.Integer, nullable=False, server_default="0"),
            sa.Column("token_generation", sa.Integer, nullable=False, server_default="0"),
            sa.Column("created_at", _TEXT_C, nullable=False),
            sa.Column("updated_at", _TEXT_C, nullable=False),
        )
    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("seq", _BIG, primary_key=True, autoincrement=False),
            sa.Column("at", _TEXT_C, nullable=False),
            sa.Column("actor", sa.Text, nullable=False),
            sa.Column("role", sa.Text),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),
            sa.Column("case_id", sa.Text),
            sa.Column("justification", sa.Text),
            sa.Column("clip_sha256", sa.Text),
            sa.Column("model_ids", sa.Text),
            sa.Column("frames", sa.Integer),
            sa.Column("job_id", sa.Text),
            sa.Column("client", sa.Text),
            sa.Column("detail", sa.Text),
            sa.Column("prev_hash", sa.Text, nullable=False),
            sa.Column("hash", sa.Text, nullable=False),
        )
        if op.get_bind().dialect.name == "postgresql":
            for statement in _POSTGRESQL_TRIGGERS:
                op.execute(statement)
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_TRIGGERS:  # a file made before Alembic has them already
            op.execute(statement)
    if "jobs" not in existing:
        op.create_table(
            "jobs",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("owner", sa.Text, nullable=False),
            sa.Column("case_id", sa.Text, nullable=False),
            sa.Column("justification", sa.Text, nullable=False),
            sa.Column("clip_sha256", sa.Text, nullable=False),
            sa.Column("clip_bytes", _BIG, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("frames_done", sa.Integer, nullable=False, server_default="0"),
            sa.Column("frames_total", sa.Integer),
            sa.Column("created_at", _TEXT_C, nullable=False),
            sa.Column("started_at", _TEXT_C),
            sa.Column("finished_at", _TEXT_C),
            sa.Column("expires_at", _TEXT_C, nullable=False),
            sa.Column("result_name", sa.Text),
            sa.Column("report", sa.Text),
            sa.Column("error_code", sa.Text),
            sa.Column("error_detail", sa.Text),
        )
        op.create_index("jobs_status", "jobs", ["status"])


def downgrade() -> None:
    """Not supported: the audit log is never dropped."""
    raise NotImplementedError("the authority's schema is never downgraded")
