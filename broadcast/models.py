"""The storage schema (SQLAlchemy 2). One schema for SQLite and PostgreSQL.

Migrations live in broadcast/migrations (Alembic); tests check that a database migrated from
empty matches these models exactly, so change both together.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT there would need explicit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK-free VARCHAR so new states need no type migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class Role(str, enum.Enum):
    ADMIN = "admin"
    DRAFTER = "drafter"
    APPROVER = "approver"
    CARRIER = "carrier"
    AUDITOR = "auditor"


class ListStatus(str, enum.Enum):
    IMPORTING = "importing"
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    DELETED = "deleted"


class ImportKind(str, enum.Enum):
    LIST = "list"
    COUNTS = "counts"


class ImportStatus(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"  # the file was refused (a reason the uploader can fix)
    FAILED = "failed"  # stopped: time or memory limit, the process died, an internal error


class AlertCategory(str, enum.Enum):
    EMERGENCY = "emergency"
    WARNING = "warning"
    INFORMATION = "information"
    TEST = "test"
    EXERCISE = "exercise"  # a drill: CAP status Exercise, only the drill group receives it


class RecipientGroup(str, enum.Enum):
    """The small groups that non-public alerts go to instead of the lists."""

    TEST = "test"  # test alerts
    DRILL = "drill"  # drills (exercise alerts)


class AlertStatus(str, enum.Enum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class MsgType(str, enum.Enum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class DeliveryState(str, enum.Enum):
    PENDING = "pending"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# The one definition of the groups of delivery states (the store, the live counters, the
# progress API and the reports all use these).
# Not on the wire yet: cancel and expiry take these rows back.
UNSENT_DELIVERY_STATES = (DeliveryState.PENDING, DeliveryState.QUEUED)
# Not final: the alert is not completed while a row is in one of these.
OPEN_DELIVERY_STATES = (*UNSENT_DELIVERY_STATES, DeliveryState.SUBMITTED)
# Failed, least severe first (a multipart delivery takes its worst part's state).
FAILED_DELIVERY_STATES = (
    DeliveryState.EXPIRED,
    DeliveryState.UNDELIVERABLE,
    DeliveryState.REJECTED,
)
FINAL_DELIVERY_STATES = frozenset(
    {DeliveryState.DELIVERED, *FAILED_DELIVERY_STATES, DeliveryState.CANCELLED}
)


def _now() -> Any:
    return func.now()


class Carrier(Base):
    """A carrier; its contract and gateway are configuration, synchronised by `loa init`.
    Its rate is read from the settings only (`Settings.rate_limits`), never copied here."""

    __tablename__ = "carriers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Area(Base):
    """An administrative area of any depth. `path` is "/42/18073/" for subtree queries.

    Areas are retired, never deleted (`retired_at`): old alerts, lists and reports keep
    pointing at them, but a retired area can no longer be targeted or receive subscribers.
    """

    __tablename__ = "areas"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    path: Mapped[str] = mapped_column(String(400), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parent: Mapped[Area | None] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    carrier_id: Mapped[int | None] = mapped_column(ForeignKey("carriers.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    carrier: Mapped[Carrier | None] = relationship()


class ApiToken(Base):
    """Only a SHA-256 of the token is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # None: never expires (its owner asked so); see web.token_expiry_days.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class Brandname(Base):
    """Sender names registered with the authority (Decree 91/2020)."""

    __tablename__ = "brandnames"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(11), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class SubscriberList(Base):
    """One version of a carrier's subscriber list; at most one is active per carrier."""

    __tablename__ = "subscriber_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[ListStatus] = mapped_column(_enum(ListStatus, "list_status"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("carrier_id", "version"),
        Index("ix_subscriber_lists_carrier_status", "carrier_id", "status"),
    )


def _list_position(context: Any) -> int:
    """Default for Subscriber.id on ORM/Core inserts: the next position in that list.

    The importer writes positions itself (COPY/executemany); this serves small inserts."""
    list_id = context.get_current_parameters()["list_id"]
    positions = context.__dict__.setdefault("_loa_list_positions", {})
    if list_id not in positions:
        table = Subscriber.__table__
        positions[list_id] = context.connection.scalar(
            select(func.coalesce(func.max(table.c.id), 0)).where(table.c.list_id == list_id)
        )
    positions[list_id] += 1
    return int(positions[list_id])


class Subscriber(Base):
    """One number of one list version; the rows of a version never change.

    On PostgreSQL the table is partitioned by list_id (migration 0001): subscriber_import
    COPYs each version into a table of its own, builds its indexes, then attaches it, and a
    purge drops it. Hence no foreign keys (a partition's RI checks cost more than the load;
    the importer creates the list row and resolves area ids against `areas` itself) and no
    surrogate key: the primary key is (msisdn, list_id), number first, so the same index
    serves "this number in these lists" (conflicts, newer-list checks) and "this number in any
    list". `id` is the position in the list (1..n, unique within a list), kept for chunked
    audience snapshots.
    """

    __tablename__ = "subscribers"
    msisdn: Mapped[str] = mapped_column(String(15), primary_key=True)
    list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int | None] = mapped_column(Integer)
    id: Mapped[int] = mapped_column(BigInteger, default=_list_position)
    __table_args__ = (
        # The audience query: subscribers of these lists in these areas.
        Index("ix_subscribers_list_area", "list_id", "area_id"),
        # Position ranges of one list (chunked snapshots), and its first and last position
        # read from the ends of the b-tree (migration 0009; BRIN had to scan the list).
        Index("ix_subscribers_list_position", "list_id", "id"),
    )


class AudienceAreaCount(Base):
    """How many numbers of an active list each area holds, net of numbers a newer active list
    of another carrier owns (number portability): the preview adds these up instead of
    scanning the subscribers. Written by the import in the transaction that activates a list
    (broadcast.audience.refresh_area_counts); `basis` names the active lists, in upload order,
    the rows were computed for, so rows from another set of lists are never read."""

    __tablename__ = "audience_area_counts"
    id: Mapped[int] = mapped_column(primary_key=True)
    basis: Mapped[str] = mapped_column(String(400))
    list_id: Mapped[int] = mapped_column(Integer)
    area_id: Mapped[int | None] = mapped_column(Integer)
    subscribers: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_audience_area_counts_basis_list", "basis", "list_id"),)


class Import(Base):
    """One upload (list or counts) and its report, accepted or refused."""

    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"), index=True)
    kind: Mapped[ImportKind] = mapped_column(_enum(ImportKind, "import_kind"))
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, "import_status"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    list_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber_lists.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    rejects_path: Mapped[str | None] = mapped_column(String(500))


class CountReport(Base):
    """A carrier's reported subscriber count for an area as of a date; appended, never replaced."""

    __tablename__ = "count_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    as_of: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(BigInteger)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    __table_args__ = (
        Index("ix_count_reports_carrier_area_asof", "carrier_id", "area_id", "as_of"),
    )


class TestRecipient(Base):
    """The test and drill groups (`kind`): test alerts go only to the test group's numbers,
    drills only to the drill group's. A number may be in both."""

    __tablename__ = "test_recipients"
    __test__ = False  # not a pytest test class
    id: Mapped[int] = mapped_column(primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(15))
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[RecipientGroup] = mapped_column(
        _enum(RecipientGroup, "recipient_group"), default=RecipientGroup.TEST, server_default="test"
    )
    __table_args__ = (UniqueConstraint("kind", "msisdn"),)


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)  # CAP identifier
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    fold: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[AlertCategory] = mapped_column(_enum(AlertCategory, "alert_category"))
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus, "alert_status"), index=True)
    msg_type: Mapped[MsgType] = mapped_column(_enum(MsgType, "msg_type"), default=MsgType.ALERT)
    references_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    # A resend: its audience is the numbers this alert did not reach (broadcast/audience.py).
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    brandname: Mapped[str] = mapped_column(String(11))
    # CAP info
    event: Mapped[str] = mapped_column(String(200), default="")
    urgency: Mapped[str] = mapped_column(String(16), default="Unknown")
    severity: Mapped[str] = mapped_column(String(16), default="Unknown")
    certainty: Mapped[str] = mapped_column(String(16), default="Unknown")
    instruction: Mapped[str] = mapped_column(Text, default="")
    web: Mapped[str] = mapped_column(String(500), default="")
    schedule_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    waive_quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    waive_daily_cap: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=func.now()
    )
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the fan-out had written the whole audience (reconcile resumes one cut off before).
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # [{"word", "label", "help"}] (broadcast/replies.py); None: no keywords, every reply "other".
    reply_keywords: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    areas: Mapped[list[Area]] = relationship(secondary="alert_areas")
    carriers: Mapped[list[Carrier]] = relationship(secondary="alert_carriers")


class DrillSchedule(Base):
    """A recurring drill: every month on `day_of_month` at `at_time` (local time). `lead_days`
    before each one, a drill draft is made and submitted in the name of the admin who set the
    schedule; an approver still approves each one (broadcast/drills.py)."""

    __tablename__ = "drill_schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    fold: Mapped[bool] = mapped_column(Boolean, default=False)
    brandname: Mapped[str] = mapped_column(String(11))
    area_codes: Mapped[list[str]] = mapped_column(JSON)
    carrier_codes: Mapped[list[str]] = mapped_column(JSON)
    day_of_month: Mapped[int] = mapped_column(Integer)  # 1..28: every month has it
    at_time: Mapped[str] = mapped_column(String(5))  # "HH:MM", settings.timezone
    lead_days: Mapped[int] = mapped_column(Integer, default=7)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the next drill
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))


class AlertArea(Base):
    __tablename__ = "alert_areas"
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)


class AlertCarrier(Base):
    __tablename__ = "alert_carriers"
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"), primary_key=True)
    # The list version the audience was snapshotted from (kept while the alert sends).
    list_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber_lists.id"))


class NetworkState(str, enum.Enum):
    NORMAL = "normal"
    DEGRADED = "degraded"
    DOWN = "down"


class NetworkStatus(Base):
    """A carrier's report on its network in one area; appended, the latest row is current."""

    __tablename__ = "network_status"
    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    state: Mapped[NetworkState] = mapped_column(_enum(NetworkState, "network_state"))
    note: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    __table_args__ = (Index("ix_network_status_carrier_area", "carrier_id", "area_id", "id"),)


class AlertVersion(Base):
    """Every saved content of an alert, so no edit is silent."""

    __tablename__ = "alert_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    __table_args__ = (UniqueConstraint("alert_id", "version"),)


class Approval(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    alert_version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected
    reason: Mapped[str] = mapped_column(Text, default="")
    waive_quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    waive_daily_cap: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Delivery(Base):
    """One recipient of one alert. Written in bulk (INSERT … SELECT), updated in bulk."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    msisdn: Mapped[str] = mapped_column(String(15))
    # The subscriber's area when snapshotted (lists get purged; reach by commune stays).
    area_id: Mapped[int | None] = mapped_column(Integer)
    batch_no: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState, "delivery_state"))
    parts: Mapped[int] = mapped_column(Integer, default=1)
    parts_final: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        # The same alert never goes twice to one number.
        UniqueConstraint("alert_id", "msisdn"),
        Index("ix_deliveries_alert_state", "alert_id", "state"),
        Index("ix_deliveries_alert_carrier_batch", "alert_id", "carrier_id", "batch_no"),
        # Per-subscriber daily cap.
        Index("ix_deliveries_msisdn_submitted", "msisdn", "submitted_at"),
    )


class DeliveryPart(Base):
    """One SMSC message id per part; receipts are matched here."""

    __tablename__ = "delivery_parts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    message_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(24))
    final_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_delivery_parts_carrier_message", "carrier_id", "message_id"),)


class Receipt(Base):
    """Every delivery receipt as received; matched to parts, possibly later than it arrived."""

    __tablename__ = "receipts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    message_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(16))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        Index("ix_receipts_carrier_message", "carrier_id", "message_id"),
        Index("ix_receipts_matched", "matched"),
    )


class Reply(Base):
    """A message a subscriber sent back (mobile-originated), attributed to the latest alert
    that reached the number within replies.window_hours (alert_id NULL when none did), with
    the area of that number in the alert's audience and the keyword it matched."""

    __tablename__ = "replies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    msisdn: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    # A keyword's word, or "other"; NULL when the reply is attributed to no alert.
    keyword: Mapped[str | None] = mapped_column(String(20))
    __table_args__ = (
        Index("ix_replies_alert_keyword", "alert_id", "keyword"),
        Index("ix_replies_received_at", "received_at"),
    )


class AuditEntry(Base):
    """Append-only: database triggers refuse UPDATE and DELETE (see the initial migration)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)
