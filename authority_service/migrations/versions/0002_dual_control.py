"""Schema version 2: dual control (what a job reverses, and an approver's decision on it).

Columns are added with defaults, so a job written before reads as it did (a clip job that
needs no approval).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TEXT_C = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    """Add the dual-control columns to ``jobs``."""
    op.add_column("jobs", sa.Column("kind", sa.Text, nullable=False, server_default="clip"))
    op.add_column(
        "jobs", sa.Column("approval_required", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("jobs", sa.Column("decision", sa.Text))
    op.add_column("jobs", sa.Column("decided_by", sa.Text))
    op.add_column("jobs", sa.Column("decided_at", _TEXT_C))
    op.add_column("jobs", sa.Column("decision_reason", sa.Text))


def downgrade() -> None:
    """Not supported: the authority's schema is never downgraded."""
    raise NotImplementedError("the authority's schema is never downgraded")
