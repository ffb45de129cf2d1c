"""drills: the drill group beside the test group (test_recipients.kind), recurring drills

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drill_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fold", sa.Boolean(), nullable=False),
        sa.Column("brandname", sa.String(length=11), nullable=False),
        sa.Column("area_codes", sa.JSON(), nullable=False),
        sa.Column("carrier_codes", sa.JSON(), nullable=False),
        sa.Column("day_of_month", sa.Integer(), nullable=False),
        sa.Column("at_time", sa.String(length=5), nullable=False),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_alert_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_drill_schedules_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["last_alert_id"], ["alerts.id"], name=op.f("fk_drill_schedules_last_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_schedules")),
    )
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
    op.drop_table("drill_schedules")
    op.execute("DELETE FROM test_recipients WHERE kind <> 'test'")
    with op.batch_alter_table("test_recipients", schema=None) as batch_op:
        batch_op.drop_constraint("uq_test_recipients_kind_msisdn", type_="unique")
        batch_op.create_unique_constraint("uq_test_recipients_msisdn", ["msisdn"])
        batch_op.drop_column("kind")
