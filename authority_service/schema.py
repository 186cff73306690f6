"""The tables of the authority's database, as the latest migration leaves them (SQLAlchemy Core).

The stores (:mod:`.users`, :mod:`.audit`, :mod:`.job_store`) build their statements from these;
the schema itself is made and changed only by the Alembic migrations
(:mod:`authority_service.migrations`), which define their own copies of the tables as each
version had them.

Timestamps are UTC ISO 8601 text of one fixed format, so their text order is their time order;
on PostgreSQL those columns use the ``C`` collation, which compares them byte by byte whatever
the database's locale.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, Table, Text

__all__ = ["audit_log", "job_segments", "jobs", "metadata", "sortable_text", "users"]


def sortable_text() -> Text:
    """A text column compared byte by byte (timestamps): ``COLLATE "C"`` on PostgreSQL."""
    return Text().with_variant(Text(collation="C"), "postgresql")


#: 64-bit on PostgreSQL; on SQLite ``INTEGER`` (the only integer type, and a rowid alias).
BIG = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Integer, nullable=False, server_default="0"),
    Column("token_generation", Integer, nullable=False, server_default="0"),
    Column("created_at", sortable_text(), nullable=False),
    Column("updated_at", sortable_text(), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BIG, primary_key=True, autoincrement=False),
    Column("at", sortable_text(), nullable=False),
    Column("actor", Text, nullable=False),
    Column("role", Text),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("case_id", Text),
    Column("justification", Text),
    Column("clip_sha256", Text),
    Column("model_ids", Text),
    Column("frames", Integer),
    Column("job_id", Text),
    Column("client", Text),
    Column("detail", Text),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("justification", Text, nullable=False),
    Column("clip_sha256", Text, nullable=False),
    Column("clip_bytes", BIG, nullable=False),
    Column("status", Text, nullable=False),
    Column("frames_done", Integer, nullable=False, server_default="0"),
    Column("frames_total", Integer),
    Column("created_at", sortable_text(), nullable=False),
    Column("started_at", sortable_text()),
    Column("finished_at", sortable_text()),
    Column("expires_at", sortable_text(), nullable=False),
    Column("result_name", Text),
    Column("report", Text),
    Column("error_code", Text),
    Column("error_detail", Text),
    # Version 2: dual control.
    Column("kind", Text, nullable=False, server_default="clip"),
    Column("approval_required", Integer, nullable=False, server_default="0"),
    Column("decision", Text),
    Column("decided_by", Text),
    Column("decided_at", sortable_text()),
    Column("decision_reason", Text),
    # Version 3: jobs run by remote workers (authority_service.task_queue).
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("heartbeat_at", sortable_text()),
    Index("jobs_status", "status"),
)

#: Version 4: the segments of a clip job split across the job queue's workers
#: (:mod:`authority_service.segment_store`).
job_segments = Table(
    "job_segments",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("segment", Integer, primary_key=True, autoincrement=False),
    Column("attempt", Integer, nullable=False),
    Column("kind", Text, nullable=False, server_default="frames"),
    Column("start_frame", Integer, nullable=False),
    Column("pts", Text, nullable=False),
    Column("seek_pts", BIG),
    Column("last", Integer, nullable=False),
    Column("carrier", Text),
    Column("status", Text, nullable=False),
    Column("runs", Integer, nullable=False, server_default="0"),
    Column("token", Text),
    Column("worker", Text),
    Column("heartbeat_at", sortable_text()),
    Column("frames_done", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("seconds", Float),
    Column("result", Text),
)
