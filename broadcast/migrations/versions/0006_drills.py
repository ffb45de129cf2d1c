"""drills: the drill group beside the test group (test_recipients.kind)

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("test_recipients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("test", "drill", name="recipient_group", native_enum=False, length=24),
                server_default="test",
                nullable=False,
            )
        )
        batch_op.drop_constraint("uq_test_recipients_msisdn", type_="unique")
        batch_op.create_unique_constraint("uq_test_recipients_kind_msisdn", ["kind", "msisdn"])


def downgrade() -> None:
    op.execute("DELETE FROM test_recipients WHERE kind <> 'test'")
    with op.batch_alter_table("test_recipients", schema=None) as batch_op:
        batch_op.drop_constraint("uq_test_recipients_kind_msisdn", type_="unique")
        batch_op.create_unique_constraint("uq_test_recipients_msisdn", ["msisdn"])
        batch_op.drop_column("kind")
