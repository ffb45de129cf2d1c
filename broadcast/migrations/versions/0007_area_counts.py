"""per-list, per-area audience counts kept by the import (the preview no longer scans)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audience_area_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=400), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("subscribers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audience_area_counts")),
    )
    op.create_index(
        "ix_audience_area_counts_basis_list",
        "audience_area_counts",
        ["basis", "list_id"],
        unique=False,
    )
    # Backfill for the lists active now, with the code the import uses from here on.
    from sqlalchemy.orm import Session

    from broadcast.audience import refresh_area_counts

    refresh_area_counts(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_audience_area_counts_basis_list", table_name="audience_area_counts")
    op.drop_table("audience_area_counts")
