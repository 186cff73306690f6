"""Schema version 3: jobs run by remote workers (``jobs.queue: celery``).

``attempts`` counts the starts of a job (one whose worker was lost counts; one requeued at a
clean shutdown does not); ``heartbeat_at`` is when its worker last renewed its lease. A job
written before reads as never started, its lease expired.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TEXT_C = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    """Add the attempt counter and the lease to ``jobs``."""
    op.add_column("jobs", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("heartbeat_at", _TEXT_C))


def downgrade() -> None:
    """Not supported: the authority's schema is never downgraded."""
    raise NotImplementedError("the authority's schema is never downgraded")
