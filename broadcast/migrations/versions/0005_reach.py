"""reach by commune, carriers' network status, resend to the unreached

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # In place: SQLite adds a column with its REFERENCES clause, while batch mode would
        # recreate `alerts`, whose DROP the deliveries, versions and replies referencing it
        # refuse once there is data.
        op.execute(
            "ALTER TABLE alerts ADD COLUMN resend_of_id INTEGER"
            " CONSTRAINT fk_alerts_resend_of_id_alerts REFERENCES alerts (id)"
        )
    else:
        op.add_column("alerts", sa.Column("resend_of_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_alerts_resend_of_id_alerts"), "alerts", "alerts", ["resend_of_id"], ["id"]
        )
    op.create_table(
        "network_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Integer(), nullable=True),
        sa.Column(
            "set_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_network_status_area_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_network_status_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(
            ["set_by"], ["users.id"], name=op.f("fk_network_status_set_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_status")),
    )
    op.create_index(
        "ix_network_status_carrier_area", "network_status", ["carrier_id", "area_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_network_status_carrier_area", table_name="network_status")
    op.drop_table("network_status")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        if op.get_bind().dialect.name != "sqlite":  # SQLite: the recreated table drops it
            batch_op.drop_constraint(
                batch_op.f("fk_alerts_resend_of_id_alerts"), type_="foreignkey"
            )
        batch_op.drop_column("resend_of_id")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("area_id")
