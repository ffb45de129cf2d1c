"""a carrier's rate comes from the settings only: drop the carriers.mps copy

Revision ID: 0008
Revises: 0007
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
    # ALTER TABLE … DROP COLUMN in place (SQLite has it since 3.35): recreating the table, as
    # batch mode would, drops `carriers` under the lists, alerts and deliveries that reference
    # it, which SQLite's foreign keys refuse once there is data.
    with op.batch_alter_table("carriers", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("mps")


def downgrade() -> None:
    with op.batch_alter_table("carriers", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("mps", sa.Integer(), nullable=False, server_default="0"))
