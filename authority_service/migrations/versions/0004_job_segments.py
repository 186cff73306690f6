"""Schema version 4: the segments of clip jobs split across the job queue's workers.

One row per segment of a clip job that ``jobs.queue: celery`` split into segment tasks
(:mod:`authority_service.segment_tasks`), and one for the job's public preview made beside them
(``kind``): its frames (first index, presentation timestamps, the keyframe to seek to), its
state (``queued``, ``running``, ``done``, ``stopped``), the run that holds it (a token, the
worker, a lease), its progress, and its outcome until the job ends. ``attempt`` is the start of
the job (``jobs.attempts``) that planned it. Nothing else changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TEXT_C = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``job_segments``."""
    op.create_table(
        "job_segments",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("segment", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default="frames"),
        sa.Column("start_frame", sa.Integer, nullable=False),
        sa.Column("pts", sa.Text, nullable=False),
        sa.Column("seek_pts", _BIG),
        sa.Column("last", sa.Integer, nullable=False),
        sa.Column("carrier", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("token", sa.Text),
        sa.Column("worker", sa.Text),
        sa.Column("heartbeat_at", _TEXT_C),
        sa.Column("frames_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("seconds", sa.Float),
        sa.Column("result", sa.Text),
    )


def downgrade() -> None:
    """Not supported: the authority's schema is never downgraded."""
    raise NotImplementedError("the authority's schema is never downgraded")
