"""Deliveries, the core's storage of sending: the fan-out and the delivery store.

- `fan_out(session, alert, ...)`: the one way an alert's audience becomes delivery rows, a
  generator writing chunk after chunk (one INSERT … SELECT each, `audience.plan_snapshot`,
  its rows written queued in their batches); it yields a `Chunk` after each, so the
  caller (the RQ job `workers.jobs.fan_out`, and the tests) commits and enqueues those batches
  before the next chunk is written.
- `SqlDeliveryStore`: every state change of deliveries, written in bulk.

A batch of outcomes is a few statements in one transaction, never one round trip per message:
on PostgreSQL the accepted rows are one UPDATE … WHERE id = ANY(array) and their parts one
INSERT … SELECT FROM unnest(arrays); the rarer kinds, and SQLite (in-process), executemany.
Receipts are inserted as they come and matched to `delivery_parts` by (carrier, message_id);
a receipt whose submit response is not stored yet stays unmatched in `receipts` and is
matched by a later call (or by reconcile).

Every method returns the state transitions it made, as a Counter of
(alert_id, carrier_id, from_state, to_state) -> rows, so the live counters in Redis follow the
database without a second query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from broadcast import alerts, audience
from broadcast.alerts import alert_text
from broadcast.db import Database, rowcount
from broadcast.errors import InvalidTransition
from broadcast.models import (
    FAILED_DELIVERY_STATES,
    OPEN_DELIVERY_STATES,
    UNSENT_DELIVERY_STATES,
    Alert,
    AlertStatus,
    Carrier,
    Delivery,
    DeliveryPart,
    DeliveryState,
    Receipt,
)
from broadcast.policy import as_utc
from broadcast.settings import DeliverySettings, Settings
from smpp_gateway.receipts import STAT_WORDS

Transitions = Counter  # Counter[tuple[int, int, str, str]]

# The Core tables (declared as FromClause on the mapped classes; they are Tables).
D = cast(Table, Delivery.__table__)
P = cast(Table, DeliveryPart.__table__)
R = cast(Table, Receipt.__table__)

# Plain strings of the states defined in broadcast.models, for SQL and counter keys.
OPEN_STATES = tuple(s.value for s in UNSENT_DELIVERY_STATES)
NOT_FINAL = tuple(s.value for s in OPEN_DELIVERY_STATES)
# Receipt states (smpp_gateway.ReceiptState values) -> the delivery state they end in.
RECEIPT_FINAL = {
    "delivered": DeliveryState.DELIVERED.value,
    "undeliverable": DeliveryState.UNDELIVERABLE.value,
    "expired": DeliveryState.EXPIRED.value,
    "rejected": DeliveryState.REJECTED.value,
    "deleted": DeliveryState.UNDELIVERABLE.value,
    "unknown": DeliveryState.UNDELIVERABLE.value,
}
# When parts end differently, the delivery takes the worst.
_SEVERITY = {
    DeliveryState.DELIVERED.value: 0,
    **{s.value: n for n, s in enumerate(FAILED_DELIVERY_STATES, 1)},
}
# Receipt states (smpp_gateway.ReceiptState values) -> the `stat:` word a carrier wrote.
_STAT_WORDS = {state.value: word for word, state in STAT_WORDS.items()}
# Why a row expired, by what it had reached when the alert's expiry (its validity) passed.
EXPIRED_UNSENT = "expired: validity passed before it was sent"
EXPIRED_NO_RECEIPT = "expired: validity passed without a receipt"


def receipt_reason(state: str, error_code: str | None) -> str:
    """A failed receipt as a report shows it: "receipt UNDELIV err 001"."""
    word = _STAT_WORDS.get(state, state.upper())
    return f"receipt {word} err {error_code}" if error_code else f"receipt {word}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlertMessage:
    """What a sender needs of an alert: the text as sent, the sender name, the state."""

    id: int
    text: str
    source: str
    category: str
    status: str
    expires_at: datetime | None

    @property
    def priority(self) -> str:
        return "emergency" if self.category == "emergency" else "normal"


@dataclass(frozen=True)
class Claimed:
    id: int
    msisdn: str
    parts: int
    attempts: int
    # Not to be sent before (a transient failure's backoff), or None.
    next_attempt_at: datetime | None = None


@dataclass
class Claim:
    rows: list[Claimed]
    reclaimed: int  # rows whose earlier lease had expired: possibly sent before a crash


@dataclass
class Outcomes:
    """Results of one flush: accepted (id, message ids), retry (id, error), failed (id, error)."""

    accepted: list[tuple[int, Sequence[str]]] = field(default_factory=list)
    retry: list[tuple[int, str, datetime]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.accepted) + len(self.retry) + len(self.failed)


@dataclass(frozen=True)
class ReceiptIn:
    message_id: str
    state: str
    error_code: str | None
    done_at: datetime | None


# -- the fan-out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """One chunk of an alert's audience, written and numbered into queued batches."""

    carrier_id: int
    carrier_code: str
    rows: int  # rows queued by this chunk
    batches: list[int]  # their batch numbers, to enqueue


def chunk_ranges(
    plan: audience.CarrierSnapshot, first: int, rows: int
) -> list[tuple[int, int] | None]:
    """Subscriber-position ranges: `first` rows, then twice as many each time up to `rows`
    at a time (None: all at once). The fan-out writes one chunk of each carrier in turn, so
    the ramp gives every carrier's sender its next rows while it still sends the last ones:
    one big chunk per carrier after the first left the last carriers' senders idle for seconds
    (docs/delivery.md "Measured")."""
    if plan.id_min is None or plan.id_max is None:
        return [None]
    lo, hi = plan.id_min, plan.id_max + 1
    size = max(1, first)
    out: list[tuple[int, int] | None] = []
    while lo < hi:
        out.append((lo, min(lo + size, hi)))
        lo += size
        size = min(2 * size, rows)
    return out


def fan_out(
    session: Session,
    alert: Alert,
    *,
    settings: Settings | None = None,
    batch_size: int | None = None,
    first_rows: int | None = None,
    chunk_rows: int | None = None,
    now: datetime | None = None,
) -> Iterator[Chunk]:
    """Write the alert's audience as queued deliveries, chunk by chunk, yielding each chunk.

    Every chunk is one INSERT … SELECT (the carrier's plan from `audience.plan_snapshot`)
    writing its rows `queued`, numbered into batches of `batch_size` (default
    `delivery.batch_size`) after the carrier's highest batch, and returning their batch
    numbers, in the caller's transaction: the caller commits before it enqueues
    the chunk's batches, so sending starts while the rest is still being written. A first
    chunk of `first_rows` for every carrier, then chunks twice as big each round up to
    `chunk_rows`, one chunk of each carrier in turn (defaults: `delivery.fan_out_first_rows`,
    `delivery.fan_out_chunk_rows`).
    Running it again adds nothing already there (a fan-out cut off, by a lost database or a
    killed worker, is resumed by running it again); chunks that add no row are not yielded.
    When every chunk is written it sets the alert's `fanned_out_at`, in the caller's
    transaction: until then reconcile runs the fan-out again and the alert cannot complete.
    """
    delivery = settings.delivery if settings else DeliverySettings()
    batch_size = batch_size or delivery.batch_size
    first_rows = first_rows or delivery.fan_out_first_rows
    chunk_rows = chunk_rows or delivery.fan_out_chunk_rows
    plans = audience.plan_snapshot(session, alert, settings=settings, now=now)
    dialect = session.get_bind().dialect.name
    rounds = [chunk_ranges(plan, first_rows, chunk_rows) for plan in plans]
    work = [(plan, r[0]) for plan, r in zip(plans, rounds, strict=True) if r]
    # Then one chunk of each carrier in turn, growing: a carrier never waits for another's
    # whole list (at 6,000,000 rows, carrier after carrier left the last carrier's sender idle
    # for minutes after its first chunk: docs/delivery.md "A national run"), nor for four
    # big chunks of the others after its first 2,000 rows.
    rest = [[(plan, c) for c in r[1:]] for plan, r in zip(plans, rounds, strict=True)]
    work += [item for turn in zip_longest(*rest) for item in turn if item is not None]
    grouped = audience.recipient_group(alert.category) is not None  # a test or a drill
    # Each carrier's next batch number (after those of an earlier, interrupted run).
    next_batch = {
        plan.carrier_id: next_batch_no(session, alert.id, plan.carrier_id) for plan in plans
    }
    for plan, id_range in work:
        if plan.list_id is None and not grouped:
            continue
        if dialect == "postgresql":
            # The per-row cap probe lifts the cost estimate past jit_above_cost; compiling
            # then costs ~0.2 s a statement and saves nothing. SET LOCAL: this transaction
            # only, and again per chunk because the caller commits between chunks.
            session.execute(text("SET LOCAL jit = off"))
        stmt = plan.insert(
            alert,
            batch_size=batch_size,
            dialect=dialect,
            id_range=id_range,
            batch_start=next_batch[plan.carrier_id],
            queued_at=utcnow(),
        )
        # The batches this chunk filled (rows skipped as already there leave gaps).
        filled = Counter(session.execute(stmt.returning(D.c.batch_no)).scalars())
        if filled:
            next_batch[plan.carrier_id] = max(filled) + 1
            rows = sum(filled.values())
            yield Chunk(plan.carrier_id, plan.carrier_code, rows, sorted(filled))
    session.execute(update(Alert).where(Alert.id == alert.id).values(fanned_out_at=utcnow()))


def write_audience(session: Session, alert: Alert, **kwargs: Any) -> dict[str, int]:
    """The whole fan-out at once, nothing enqueued (a command-line or benchmark run, a test
    that sends nothing): rows written per carrier code; carriers it wrote nothing for are
    absent. Same generator, same arguments as `fan_out`."""
    written: dict[str, int] = {}
    for chunk in fan_out(session, alert, **kwargs):
        written[chunk.carrier_code] = written.get(chunk.carrier_code, 0) + chunk.rows
    return written


def next_batch_no(session: Session, alert_id: int, carrier_id: int) -> int:
    """The carrier's next free batch number for this alert (1 for the first)."""
    top = session.scalar(
        select(func.max(D.c.batch_no)).where(D.c.alert_id == alert_id, D.c.carrier_id == carrier_id)
    )
    return (top or 0) + 1


def queue_pending(
    s: Session, alert_id: int, batch_size: int, carrier_id: int | None = None
) -> tuple[list[tuple[int, int]], int]:
    """Number pending rows into batches per carrier (after the highest batch already
    queued) and mark them queued, one UPDATE … FROM per carrier; returns the new
    (carrier_id, batch_no) to enqueue and the number of rows. The fan-out writes its rows
    queued; `pending` rows are those a version before migration 0009 left (reconcile)."""
    now = utcnow()
    new: list[tuple[int, int]] = []
    total = 0
    carriers = (
        [carrier_id]
        if carrier_id is not None
        else s.scalars(
            select(D.c.carrier_id)
            .where(D.c.alert_id == alert_id, D.c.state == DeliveryState.PENDING.value)
            .distinct()
        ).all()
    )
    for cid in carriers:
        top = s.scalar(
            select(func.max(D.c.batch_no)).where(
                D.c.alert_id == alert_id,
                D.c.carrier_id == cid,
                D.c.state != DeliveryState.PENDING.value,
            )
        )
        base = (top or 0) + 1
        rank = func.row_number().over(order_by=D.c.id) - 1
        sub = (
            select(
                D.c.id.label("sid"),
                (literal(base) + rank.self_group().op("/")(literal(batch_size))).label("b"),
            )
            .where(
                D.c.alert_id == alert_id,
                D.c.carrier_id == cid,
                D.c.state == DeliveryState.PENDING.value,
            )
            .subquery()
        )
        count = rowcount(
            s.execute(
                update(D)
                .where(D.c.id == sub.c.sid)
                .values(batch_no=sub.c.b, state=DeliveryState.QUEUED.value, queued_at=now)
            )
        )
        total += count
        new += [(cid, base + i) for i in range(-(-count // batch_size))]
    return new, total


# -- the store --------------------------------------------------------------------------------


class SqlDeliveryStore:
    def __init__(self, database: Database, settings: DeliverySettings) -> None:
        self.database = database
        self.settings = settings

    # -- reading ------------------------------------------------------------------------------

    def alert_message(self, alert_id: int) -> AlertMessage | None:
        with self.database.session() as s:
            alert = s.get(Alert, alert_id)
            if alert is None:
                return None
            text = alert_text(alert)
            return AlertMessage(
                id=alert.id,
                text=text,
                source=alert.brandname,
                category=alert.category.value,
                status=alert.status.value,
                expires_at=alert.expires_at,
            )

    def carrier_ids(self) -> dict[str, int]:
        with self.database.session() as s:
            return dict(s.execute(select(Carrier.code, Carrier.id)).all())

    def state_counts(self, alert_id: int) -> dict[int, dict[str, int]]:
        """carrier_id -> state -> rows, in one GROUP BY (the database is the truth)."""
        out: dict[int, dict[str, int]] = {}
        with self.database.session() as s:
            rows = s.execute(
                select(D.c.carrier_id, D.c.state, func.count())
                .where(D.c.alert_id == alert_id)
                .group_by(D.c.carrier_id, D.c.state)
            )
            for carrier_id, state, n in rows:
                value = state.value if hasattr(state, "value") else str(state)
                out.setdefault(carrier_id, {})[value] = n
        return out

    def has_open(self, alert_id: int) -> bool:
        with self.database.session() as s:
            return (
                s.execute(
                    select(D.c.id)
                    .where(D.c.alert_id == alert_id, D.c.state.in_(NOT_FINAL))
                    .limit(1)
                ).first()
                is not None
            )

    # -- batching -----------------------------------------------------------------------------

    def queue_pending(
        self, alert_id: int, batch_size: int, carrier_id: int | None = None
    ) -> tuple[list[tuple[int, int]], int]:
        """`queue_pending` in a transaction of its own."""
        with self.database.session() as s:
            return queue_pending(s, alert_id, batch_size, carrier_id)

    def batches_to_queue(self, alert_id: int) -> list[tuple[int, int, bool]]:
        """(carrier_id, batch_no, lease_expired) of queued rows that no live sender holds."""
        now = utcnow()
        with self.database.session() as s:
            rows = s.execute(
                select(
                    D.c.carrier_id,
                    D.c.batch_no,
                    func.max(D.c.lease_until),
                )
                .where(
                    D.c.alert_id == alert_id,
                    D.c.state == DeliveryState.QUEUED.value,
                    or_(D.c.lease_until.is_(None), D.c.lease_until < now),
                )
                .group_by(D.c.carrier_id, D.c.batch_no)
            ).all()
        return [(c, b, lease is not None) for c, b, lease in rows]

    # -- sending ------------------------------------------------------------------------------

    def claim(self, alert_id: int, carrier_id: int, batch_no: int) -> Claim:
        """Take the open rows of one batch with a lease, so no other sender sends them."""
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        where = and_(
            D.c.alert_id == alert_id,
            D.c.carrier_id == carrier_id,
            D.c.batch_no == batch_no,
            D.c.state == DeliveryState.QUEUED.value,
            or_(D.c.lease_until.is_(None), D.c.lease_until < now),
        )
        with self.database.session() as s:
            reclaimed = s.execute(
                select(func.count()).where(where, D.c.lease_until.is_not(None))
            ).scalar_one()
            rows = s.execute(
                update(D)
                .where(where)
                .values(lease_until=lease)
                .returning(D.c.id, D.c.msisdn, D.c.parts, D.c.attempts, D.c.next_attempt_at)
            ).all()
        claimed = sorted((Claimed(*r) for r in rows), key=lambda c: c.id)
        return Claim(claimed, int(reclaimed))

    def renew(self, ids: Iterable[int]) -> None:
        self._set_lease(ids, utcnow() + timedelta(seconds=self.settings.lease_seconds))

    def release(self, ids: Iterable[int]) -> None:
        """Give rows back unsent (pause, yield to an emergency): queued, no lease."""
        self._set_lease(ids, None)

    def _set_lease(self, ids: Iterable[int], lease: datetime | None) -> None:
        """The lease of rows still queued (one executemany)."""
        params = [{"b_id": i} for i in ids]
        if not params:
            return
        with self.database.session() as s:
            s.execute(
                update(D)
                .where(D.c.id == bindparam("b_id"), D.c.state == DeliveryState.QUEUED.value)
                .values(lease_until=lease),
                params,
            )

    def record(self, alert_id: int, carrier_id: int, outcomes: Outcomes) -> Transitions:
        """One flush of submit outcomes: a few statements in one transaction."""
        now = utcnow()
        moved: Transitions = Counter()
        queued, submitted = DeliveryState.QUEUED.value, DeliveryState.SUBMITTED.value
        rejected = DeliveryState.REJECTED.value
        with self.database.session() as s:
            # Retries first: a row retried and then accepted in one flush counts both.
            if outcomes.retry:
                s.execute(
                    update(D)
                    .where(D.c.id == bindparam("b_id"), D.c.state == queued)
                    .values(attempts=D.c.attempts + 1, last_error=bindparam("b_error"),
                            next_attempt_at=bindparam("b_next")),
                    [{"b_id": i, "b_error": e[:200], "b_next": t} for i, e, t in outcomes.retry],
                )  # fmt: skip
            if outcomes.accepted:
                by_parts: dict[int, list[int]] = {}
                for i, ids in outcomes.accepted:
                    by_parts.setdefault(max(1, len(ids)), []).append(i)
                parts_rows = [(i, n, m) for i, ids in outcomes.accepted
                              for n, m in enumerate(ids, 1)]  # fmt: skip
                if s.get_bind().dialect.name == "postgresql":
                    # Arrays: one statement text whatever the count (prepared once by the
                    # driver), and one INSERT of every part instead of one per part.
                    for parts, delivery_ids in by_parts.items():
                        s.execute(
                            update(D)
                            .where(D.c.id == any_(bindparam("b_ids", delivery_ids,
                                                            type_=ARRAY(BigInteger))),
                                   D.c.state == queued)
                            .values(state=submitted, submitted_at=now,
                                    attempts=D.c.attempts + 1, lease_until=None,
                                    last_error=None, parts=parts)
                        )  # fmt: skip
                    d_ids, seqs, m_ids = (
                        zip(*parts_rows, strict=True) if parts_rows else ((), (), ())
                    )
                    new = (
                        func.unnest(
                            bindparam("b_delivery", list(d_ids), type_=ARRAY(BigInteger)),
                            bindparam("b_seq", list(seqs), type_=ARRAY(Integer)),
                            bindparam("b_message", list(m_ids), type_=ARRAY(String)),
                        )
                        .table_valued("delivery_id", "seq", "message_id")
                        .render_derived()
                    )
                    s.execute(
                        insert(P).from_select(
                            ["delivery_id", "seq", "carrier_id", "message_id"],
                            select(new.c.delivery_id, new.c.seq,
                                   literal(carrier_id, Integer), new.c.message_id),
                        )
                    )  # fmt: skip
                else:
                    # One UPDATE … WHERE id IN (…) per parts count (nearly always one).
                    for parts, delivery_ids in by_parts.items():
                        s.execute(
                            update(D)
                            .where(D.c.id.in_(delivery_ids), D.c.state == queued)
                            .values(state=submitted, submitted_at=now,
                                    attempts=D.c.attempts + 1, lease_until=None,
                                    last_error=None, parts=parts)
                        )  # fmt: skip
                    s.execute(
                        insert(P),
                        [{"delivery_id": i, "seq": n, "carrier_id": carrier_id, "message_id": m}
                         for i, n, m in parts_rows],
                    )  # fmt: skip
                moved[(alert_id, carrier_id, queued, submitted)] += len(outcomes.accepted)
            if outcomes.failed:
                by_error: dict[str, list[int]] = {}
                for i, e in outcomes.failed:
                    by_error.setdefault(e[:200], []).append(i)
                for error, delivery_ids in by_error.items():
                    s.execute(
                        update(D)
                        .where(D.c.id.in_(delivery_ids), D.c.state == queued)
                        .values(state=rejected, final_at=now, attempts=D.c.attempts + 1,
                                lease_until=None, last_error=error)
                    )  # fmt: skip
                moved[(alert_id, carrier_id, queued, rejected)] += len(outcomes.failed)
        return moved

    # -- receipts -----------------------------------------------------------------------------

    def store_receipts(self, carrier_id: int, receipts: Sequence[ReceiptIn]) -> None:
        if not receipts:
            return
        now = utcnow()
        with self.database.session() as s:
            s.execute(
                insert(R),
                [
                    {
                        "carrier_id": carrier_id,
                        "message_id": r.message_id,
                        "state": r.state,
                        "error_code": r.error_code,
                        "done_at": r.done_at,
                        "received_at": now,
                        "matched": False,
                    }
                    for r in receipts
                ],
            )

    def match_receipts(self, carrier_id: int | None = None, limit: int = 20_000) -> Transitions:
        """Match stored, unmatched receipts to parts; finish deliveries whose parts are all
        final. Unmatched receipts (submit response not stored yet) wait for the next call."""
        moved: Transitions = Counter()
        now = utcnow()
        with self.database.session() as s:
            q = (
                select(R.c.id, R.c.state, P.c.id, P.c.delivery_id, R.c.error_code)
                .join(P, and_(P.c.carrier_id == R.c.carrier_id, P.c.message_id == R.c.message_id))
                .where(R.c.matched.is_(False))
                .limit(limit)
            )
            if carrier_id is not None:
                q = q.where(R.c.carrier_id == carrier_id)
            rows = s.execute(q).all()
            if not rows:
                return moved
            final = [(pid, RECEIPT_FINAL[st]) for _, st, pid, *_ in rows if st in RECEIPT_FINAL]
            if final:
                s.execute(
                    update(P)
                    .where(P.c.id == bindparam("b_id"), P.c.state.is_(None))
                    .values(state=bindparam("b_state"), final_at=now),
                    [{"b_id": pid, "b_state": st} for pid, st in final],
                )
            s.execute(
                update(R).where(R.c.id == bindparam("b_id")).values(matched=True),
                [{"b_id": rid} for rid, *_ in rows],
            )
            # A failed part says why on its delivery (the worst part decides the state).
            reasons = {
                did: receipt_reason(st, err)
                for _, st, _, did, err in rows
                if RECEIPT_FINAL.get(st, DeliveryState.DELIVERED.value)
                != DeliveryState.DELIVERED.value
            }
            if reasons:
                s.execute(
                    update(D)
                    .where(D.c.id == bindparam("b_id"))
                    .values(last_error=bindparam("b_e")),
                    [{"b_id": did, "b_e": e[:200]} for did, e in reasons.items()],
                )
            touched = sorted({did for _, _, _, did, _ in rows})
            moved = self._finish_deliveries(s, touched, now)
        return moved

    def _finish_deliveries(self, s: Session, ids: list[int], now: datetime) -> Transitions:
        moved: Transitions = Counter()
        updates = []
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            rows = s.execute(
                select(D.c.id, D.c.alert_id, D.c.carrier_id, D.c.parts, D.c.state, P.c.state)
                .join(P, P.c.delivery_id == D.c.id)
                .where(D.c.id.in_(chunk))
            ).all()
            per: dict[int, list] = {}
            for did, alert_id, carrier_id, parts, state, part_state in rows:
                entry = per.setdefault(did, [alert_id, carrier_id, parts, state, []])
                if part_state is not None:
                    entry[4].append(part_state)
            for did, (alert_id, carrier_id, parts, state, states) in per.items():
                state = state.value if hasattr(state, "value") else state
                done = len(states) >= parts
                new_state = state
                if done and state == DeliveryState.SUBMITTED.value:
                    new_state = max(states, key=lambda x: _SEVERITY.get(x, 2))
                    moved[(alert_id, carrier_id, state, new_state)] += 1
                updates.append(
                    {"b_id": did, "b_final": len(states), "b_state": new_state,
                     "b_at": now if new_state != state else None}
                )  # fmt: skip
        if updates:
            s.execute(
                update(D)
                .where(D.c.id == bindparam("b_id"))
                .values(parts_final=bindparam("b_final"), state=bindparam("b_state"),
                        final_at=func.coalesce(bindparam("b_at"), D.c.final_at)),
                updates,
            )  # fmt: skip
        return moved

    # -- alert-wide ---------------------------------------------------------------------------

    def complete_if_done(self, alert_id: int) -> bool:
        """Mark the alert completed when its fan-out is over and every delivery is final
        (cancelled alerts stay so)."""
        if self.has_open(alert_id):
            return False
        with self.database.session() as s:
            alert = s.get(Alert, alert_id)
            if alert is None or alert.status not in (AlertStatus.SENDING, AlertStatus.PAUSED):
                return False
            if alert.fanned_out_at is None:  # the rest of the audience is still to be written
                return False
            try:
                alerts.mark_completed(s, alert_id)
            except InvalidTransition:
                return False
        return True

    def cancel_unsent(self, alert_id: int, ids: Iterable[int] = ()) -> Transitions:
        """Cancel every open row no live sender holds, plus `ids` (the caller's own claim)."""
        now = utcnow()
        moved: Transitions = Counter()
        own = list(ids)
        with self.database.session() as s:
            cond = or_(D.c.lease_until.is_(None), D.c.lease_until < now)
            if own:
                cond = or_(cond, D.c.id.in_(own))
            # One UPDATE per open state: RETURNING gives the new state only, and the live
            # counters must lose the row from the column it was really in.
            for before in OPEN_STATES:
                rows = s.execute(
                    update(D)
                    .where(D.c.alert_id == alert_id, D.c.state == before, cond)
                    .values(state=DeliveryState.CANCELLED.value, final_at=now, lease_until=None)
                    .returning(D.c.carrier_id)
                ).all()
                for (carrier_id,) in rows:
                    moved[(alert_id, carrier_id, before, DeliveryState.CANCELLED.value)] += 1
        return moved

    def expire_overdue(self) -> list[int]:
        """Rows of alerts past their expiry that are not final become expired."""
        now = utcnow()
        with self.database.session() as s:
            alert_ids = s.scalars(
                select(Alert.id).where(
                    Alert.expires_at.is_not(None),
                    Alert.expires_at < now,
                    Alert.status.in_(
                        [AlertStatus.SENDING, AlertStatus.PAUSED, AlertStatus.CANCELLED]
                    ),
                )
            ).all()
            touched = []
            for alert_id in alert_ids:
                count = 0
                for states, reason in (
                    (OPEN_STATES, EXPIRED_UNSENT),
                    ((DeliveryState.SUBMITTED.value,), EXPIRED_NO_RECEIPT),
                ):
                    count += rowcount(s.execute(
                        update(D)
                        .where(D.c.alert_id == alert_id, D.c.state.in_(states))
                        .values(state=DeliveryState.EXPIRED.value, final_at=now,
                                lease_until=None, last_error=reason)
                    ))  # fmt: skip
                if count:
                    touched.append(alert_id)
        return touched

    def active_alerts(self) -> list[tuple[int, str, bool]]:
        """(id, status, fanned out) of alerts a worker may still have to act on."""
        with self.database.session() as s:
            rows = s.execute(
                select(Alert.id, Alert.status, Alert.fanned_out_at.is_not(None)).where(
                    Alert.status.in_(
                        [AlertStatus.SENDING, AlertStatus.PAUSED, AlertStatus.CANCELLED,
                         AlertStatus.APPROVED]
                    )
                )
            ).all()  # fmt: skip
        return [(i, st.value, bool(done)) for i, st, done in rows]

    def scheduled_alerts(self) -> list[tuple[int, datetime]]:
        """(id, schedule_at in UTC) of alerts approved to be sent later, still waiting."""
        with self.database.session() as s:
            rows = s.execute(
                select(Alert.id, Alert.schedule_at).where(
                    Alert.status == AlertStatus.SCHEDULED, Alert.schedule_at.is_not(None)
                )
            ).all()
        return [(i, as_utc(at)) for i, at in rows if at is not None]
