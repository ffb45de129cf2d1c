"""a carrier's rate comes from the settings only: drop the carriers.mps copy

Revision ID: 0008
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("carriers", schema=None) as batch_op:
        batch_op.drop_column("mps")


def downgrade() -> None:
    with op.batch_alter_table("carriers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mps", sa.Integer(), nullable=False, server_default="0"))
