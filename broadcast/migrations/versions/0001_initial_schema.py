"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 15:37:43.408208
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["areas.id"], name=op.f("fk_areas_parent_id_areas")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_areas")),
        sa.UniqueConstraint("code", name=op.f("uq_areas_code")),
    )
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_areas_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_areas_path"), ["path"], unique=False)

    op.create_table(
        "brandnames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=11), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brandnames")),
        sa.UniqueConstraint("name", name=op.f("uq_brandnames_name")),
    )
    op.create_table(
        "carriers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("mps", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
        sa.UniqueConstraint("code", name=op.f("uq_carriers_code")),
    )
    op.create_table(
        "receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_receipts_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_receipts_carrier_message", ["carrier_id", "message_id"], unique=False
        )
        batch_op.create_index("ix_receipts_matched", ["matched"], unique=False)

    op.create_table(
        "test_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msisdn", sa.String(length=15), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_test_recipients_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_recipients")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_test_recipients_msisdn")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "drafter",
                "approver",
                "carrier",
                "auditor",
                name="role",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("carrier_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_users_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fold", sa.Boolean(), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "emergency",
                "warning",
                "information",
                "test",
                name="alert_category",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "pending_approval",
                "approved",
                "scheduled",
                "sending",
                "paused",
                "completed",
                "cancelled",
                name="alert_status",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "msg_type",
            sa.Enum("Alert", "Update", "Cancel", name="msg_type", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("references_id", sa.Integer(), nullable=True),
        sa.Column("brandname", sa.String(length=11), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("certainty", sa.String(length=16), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("web", sa.String(length=500), nullable=False),
        sa.Column("schedule_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waive_quiet_hours", sa.Boolean(), nullable=False),
        sa.Column("waive_daily_cap", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["users.id"], name=op.f("fk_alerts_approved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_alerts_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["references_id"], ["alerts.id"], name=op.f("fk_alerts_references_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("identifier", name=op.f("uq_alerts_identifier")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_status"), ["status"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_log_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "subscriber_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "importing",
                "active",
                "superseded",
                "deleted",
                name="list_status",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_subscriber_lists_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_subscriber_lists_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_lists")),
        sa.UniqueConstraint(
            "carrier_id", "version", name=op.f("uq_subscriber_lists_carrier_id_version")
        ),
    )
    with op.batch_alter_table("subscriber_lists", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscriber_lists_carrier_status", ["carrier_id", "status"], unique=False
        )

    op.create_table(
        "alert_areas",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_areas_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_alert_areas_area_id_areas")
        ),
        sa.PrimaryKeyConstraint("alert_id", "area_id", name=op.f("pk_alert_areas")),
    )
    op.create_table(
        "alert_carriers",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_carriers_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_alert_carriers_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["subscriber_lists.id"],
            name=op.f("fk_alert_carriers_list_id_subscriber_lists"),
        ),
        sa.PrimaryKeyConstraint("alert_id", "carrier_id", name=op.f("pk_alert_carriers")),
    )
    op.create_table(
        "alert_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_versions_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_alert_versions_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_versions")),
        sa.UniqueConstraint("alert_id", "version", name=op.f("uq_alert_versions_alert_id_version")),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("waive_quiet_hours", sa.Boolean(), nullable=False),
        sa.Column("waive_daily_cap", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_approvals_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_approvals_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approvals_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("msisdn", sa.String(length=15), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "queued",
                "submitted",
                "delivered",
                "undeliverable",
                "expired",
                "rejected",
                "cancelled",
                name="delivery_state",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("parts_final", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_deliveries_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_deliveries_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("alert_id", "msisdn", name=op.f("uq_deliveries_alert_id_msisdn")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_alert_carrier_batch",
            ["alert_id", "carrier_id", "batch_no"],
            unique=False,
        )
        batch_op.create_index("ix_deliveries_alert_state", ["alert_id", "state"], unique=False)
        batch_op.create_index(
            "ix_deliveries_msisdn_submitted", ["msisdn", "submitted_at"], unique=False
        )

    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("list", "counts", name="import_kind", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "rejected",
                name="import_status",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("rejects_path", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_imports_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_imports_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["subscriber_lists.id"], name=op.f("fk_imports_list_id_subscriber_lists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imports_carrier_id"), ["carrier_id"], unique=False)

    # subscribers: no foreign keys and no surrogate key (see models.Subscriber). On PostgreSQL
    # it is partitioned by list_id: subscriber_import attaches one partition per list version;
    # the default partition takes rows written by plain INSERTs (small tools, tests). The
    # partitions live in a schema of their own: storage, not part of the compared schema.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE subscribers ("
            " msisdn VARCHAR(15) NOT NULL,"
            " list_id INTEGER NOT NULL,"
            " area_id INTEGER,"
            " id BIGINT NOT NULL,"
            " CONSTRAINT pk_subscribers PRIMARY KEY (msisdn, list_id)"
            ") PARTITION BY LIST (list_id)"
        )
        op.execute("CREATE INDEX ix_subscribers_list_area ON subscribers (list_id, area_id)")
        op.execute(
            "CREATE INDEX ix_subscribers_list_position ON subscribers USING brin (list_id, id)"
        )
        op.execute("CREATE SCHEMA IF NOT EXISTS subscriber_partitions")
        op.execute(
            "CREATE TABLE subscriber_partitions.subscribers_default"
            " PARTITION OF subscribers DEFAULT"
        )
    else:
        op.create_table(
            "subscribers",
            sa.Column("msisdn", sa.String(length=15), nullable=False),
            sa.Column("list_id", sa.Integer(), nullable=False),
            sa.Column("area_id", sa.Integer(), nullable=True),
            sa.Column("id", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("msisdn", "list_id", name=op.f("pk_subscribers")),
        )
        with op.batch_alter_table("subscribers", schema=None) as batch_op:
            batch_op.create_index("ix_subscribers_list_area", ["list_id", "area_id"])
            batch_op.create_index("ix_subscribers_list_position", ["list_id", "id"])

    op.create_table(
        "count_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_count_reports_area_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_count_reports_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(
            ["import_id"], ["imports.id"], name=op.f("fk_count_reports_import_id_imports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_reports")),
    )
    with op.batch_alter_table("count_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_count_reports_carrier_area_asof", ["carrier_id", "area_id", "as_of"], unique=False
        )

    op.create_table(
        "delivery_parts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_delivery_parts_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_parts_delivery_id_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_parts")),
    )
    with op.batch_alter_table("delivery_parts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_parts_carrier_message", ["carrier_id", "message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_parts_delivery_id"), ["delivery_id"], unique=False
        )

    _audit_log_append_only()


AUDIT_GUARD_SQLITE = (
    "CREATE TRIGGER audit_log_no_{op} BEFORE {OP} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)


def _audit_log_append_only() -> None:
    """The audit log refuses UPDATE and DELETE at the database, whoever connects."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse()"
        )
    else:
        for name in ("update", "delete"):
            op.execute(AUDIT_GUARD_SQLITE.format(op=name, OP=name.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_refuse()")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")

    with op.batch_alter_table("delivery_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_parts_delivery_id"))
        batch_op.drop_index("ix_delivery_parts_carrier_message")

    op.drop_table("delivery_parts")
    with op.batch_alter_table("count_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_count_reports_carrier_area_asof")

    op.drop_table("count_reports")
    # Drops the partitions and their indexes with it on PostgreSQL.
    op.drop_table("subscribers")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SCHEMA IF EXISTS subscriber_partitions CASCADE")
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imports_carrier_id"))

    op.drop_table("imports")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_msisdn_submitted")
        batch_op.drop_index("ix_deliveries_alert_state")
        batch_op.drop_index("ix_deliveries_alert_carrier_batch")

    op.drop_table("deliveries")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approvals_alert_id"))

    op.drop_table("approvals")
    op.drop_table("alert_versions")
    op.drop_table("alert_carriers")
    op.drop_table("alert_areas")
    with op.batch_alter_table("subscriber_lists", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriber_lists_carrier_status")

    op.drop_table("subscriber_lists")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_object")

    op.drop_table("audit_log")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_status"))

    op.drop_table("alerts")
    op.drop_table("users")
    op.drop_table("test_recipients")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_matched")
        batch_op.drop_index("ix_receipts_carrier_message")

    op.drop_table("receipts")
    op.drop_table("carriers")
    op.drop_table("brandnames")
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_areas_path"))
        batch_op.drop_index(batch_op.f("ix_areas_parent_id"))

    op.drop_table("areas")
