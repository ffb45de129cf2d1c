"""Who receives an alert: live counts for the console, and the snapshot into delivery rows.

The audience of a carrier is its ACTIVE subscriber list, restricted to the chosen areas and
their subtrees (Area.path prefixes). A subscriber without an area is reached only when a
top-level area (the whole province) is chosen. Test alerts go to the carriers' test recipients
instead, whatever the areas.

Number portability (DOMAIN.md): the prefix is not the carrier. A number present in the active
lists of two carriers belongs to the list activated most recently (ties: the higher list id),
even when that carrier is not chosen for the alert; the older list's row is skipped.

The snapshot is one INSERT … SELECT per carrier (or per carrier and subscriber-id chunk, so
sending can start while a big audience is still being written), never a row per round trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    and_,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from broadcast.errors import ValidationFailed
from broadcast.models import (
    Alert,
    AlertCarrier,
    AlertCategory,
    Area,
    Carrier,
    CountReport,
    Delivery,
    DeliveryState,
    ListStatus,
    Subscriber,
    SubscriberList,
    TestRecipient,
)
from broadcast.policy import Policy, as_utc, daily_cap_applies, under_cap

if TYPE_CHECKING:
    from broadcast.settings import Settings

DELIVERY_COLUMNS = ("alert_id", "carrier_id", "msisdn", "batch_no", "state", "parts")
# Dialects where numbers already in deliveries are skipped by ON CONFLICT DO NOTHING on the
# (alert_id, msisdn) unique index. A NOT EXISTS would do the same, but while a chunked snapshot
# fills `deliveries` the planner (statistics say "empty") picks a nested loop over a table
# that keeps growing; the arbiter index probe costs the same for every row.
UPSERT_DIALECTS = ("postgresql", "sqlite")


# --- areas and lists -------------------------------------------------------------------------


def area_paths(session: Session, area_codes: Iterable[str]) -> list[str]:
    """The chosen areas' paths, without those already inside another chosen area."""
    codes = list(dict.fromkeys(area_codes))
    rows = dict(session.execute(select(Area.code, Area.path).where(Area.code.in_(codes))).all())
    unknown = [c for c in codes if c not in rows]
    if unknown:
        raise ValidationFailed(
            f"unknown area code(s): {', '.join(unknown)}", {"area_codes": unknown}
        )
    paths = sorted(set(rows.values()))
    return [p for p in paths if not any(p != q and p.startswith(q) for q in paths)]


def _is_root(path: str) -> bool:
    return path.strip("/").count("/") == 0


def area_clause(area_id: Any, paths: Sequence[str]) -> ColumnElement[bool]:
    """`area_id` lies in one of the subtrees (the areas table is small; the planner hashes it)."""
    if not paths:
        return false()
    subtree = select(Area.id).where(or_(*(Area.path.startswith(p, autoescape=True) for p in paths)))
    clause: ColumnElement[bool] = area_id.in_(subtree)
    if any(_is_root(p) for p in paths):
        clause = or_(clause, area_id.is_(None))
    return clause


def _upload_order(row: SubscriberList) -> tuple[datetime, int]:
    stamp = row.activated_at or row.created_at or datetime.min.replace(tzinfo=UTC)
    return (as_utc(stamp), row.id)


def active_lists(session: Session) -> list[SubscriberList]:
    """Every carrier's active list, oldest upload first (the portability order)."""
    rows = session.scalars(select(SubscriberList).where(SubscriberList.status == ListStatus.ACTIVE))
    return sorted(rows, key=_upload_order)


def newer_lists(lists: Sequence[SubscriberList], list_id: int) -> tuple[int, ...]:
    """Active lists of other carriers uploaded after `list_id`: their numbers win over ours."""
    ids = [row.id for row in lists]
    mine = next(row for row in lists if row.id == list_id)
    after = lists[ids.index(list_id) + 1 :]
    return tuple(row.id for row in after if row.carrier_id != mine.carrier_id)


def _carriers(session: Session, carrier_codes: Iterable[str]) -> list[Carrier]:
    codes = list(dict.fromkeys(carrier_codes))
    rows = {c.code: c for c in session.scalars(select(Carrier).where(Carrier.code.in_(codes)))}
    unknown = [c for c in codes if c not in rows]
    if unknown:
        raise ValidationFailed(
            f"unknown carrier(s): {', '.join(unknown)}", {"carrier_codes": unknown}
        )
    return [rows[c] for c in codes]


# --- the audience query ----------------------------------------------------------------------


def _list_audience(
    *,
    list_id: int,
    area_paths: Sequence[str],
    newer_list_ids: Sequence[int],
    id_range: tuple[int, int] | None = None,
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The subscriber table alias and the conditions that pick one list's audience."""
    s = Subscriber.__table__.alias("s")
    conds: list[ColumnElement[bool]] = [
        s.c.list_id == list_id,
        area_clause(s.c.area_id, area_paths),
    ]
    if newer_list_ids:
        other = Subscriber.__table__.alias("o")
        conds.append(
            ~exists().where(other.c.list_id.in_(list(newer_list_ids)), other.c.msisdn == s.c.msisdn)
        )
    if id_range is not None:
        conds.extend([s.c.id >= id_range[0], s.c.id < id_range[1]])
    return s, conds


def audience_counts(
    session: Session, *, area_codes: Iterable[str], carrier_codes: Iterable[str], test: bool
) -> dict[str, int]:
    """Distinct numbers per carrier code that an alert with these choices would reach now."""
    carriers = _carriers(session, carrier_codes)
    if test:
        rows = dict(
            session.execute(
                select(TestRecipient.carrier_id, func.count())
                .where(TestRecipient.carrier_id.in_([c.id for c in carriers]))
                .group_by(TestRecipient.carrier_id)
            ).all()
        )
        return {c.code: int(rows.get(c.id, 0)) for c in carriers}
    paths = area_paths(session, area_codes)
    lists = active_lists(session)
    by_carrier = {row.carrier_id: row for row in lists}
    counts: dict[str, int] = {}
    for carrier in carriers:
        current = by_carrier.get(carrier.id)
        if current is None:
            counts[carrier.code] = 0
            continue
        s, conds = _list_audience(
            list_id=current.id, area_paths=paths, newer_list_ids=newer_lists(lists, current.id)
        )
        counts[carrier.code] = int(
            session.scalar(select(func.count()).select_from(s).where(*conds)) or 0
        )
    return counts


# A list under this share of what its carrier reported for the same areas misses most of that
# carrier's people: the drafter's preview warns, the coverage page flags the area.
SHORT_OF_REPORTED = 0.5


def short_of_reported(listed: int, reported: int | None) -> bool:
    """Whether a list of `listed` numbers is far below the `reported` count (see above)."""
    return reported is not None and reported > 0 and listed < reported * SHORT_OF_REPORTED


def reported_counts(
    session: Session, *, area_codes: Iterable[str], carrier_codes: Iterable[str]
) -> dict[str, int | None]:
    """What carriers reported for these areas: per carrier code, or None if nothing covers them.

    Rule (no double counting): a chosen area inside another chosen area is dropped; an area's
    own latest report stands for its whole subtree; an area without one counts the sum of its
    children, recursively. "Latest" is the newest as_of date (then the newest row).
    """
    carriers = _carriers(session, carrier_codes)
    top = area_paths(session, area_codes)
    areas = session.execute(select(Area.id, Area.parent_id, Area.path)).all()
    children: dict[int | None, list[int]] = {}
    by_path = {}
    for area_id, parent_id, path in areas:
        children.setdefault(parent_id, []).append(area_id)
        by_path[path] = area_id
    ranked = select(
        CountReport.carrier_id,
        CountReport.area_id,
        CountReport.count,
        func.row_number()
        .over(
            partition_by=(CountReport.carrier_id, CountReport.area_id),
            order_by=(CountReport.as_of.desc(), CountReport.id.desc()),
        )
        .label("rn"),
    ).where(CountReport.carrier_id.in_([c.id for c in carriers]))
    sub = ranked.subquery()
    latest: dict[tuple[int, int], int] = {
        (carrier_id, area_id): int(count)
        for carrier_id, area_id, count in session.execute(
            select(sub.c.carrier_id, sub.c.area_id, sub.c.count).where(sub.c.rn == 1)
        )
    }

    def subtree(carrier_id: int, area_id: int) -> int | None:
        own = latest.get((carrier_id, area_id))
        if own is not None:
            return own
        parts = [subtree(carrier_id, child) for child in children.get(area_id, [])]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None

    result: dict[str, int | None] = {}
    for carrier in carriers:
        values = [subtree(carrier.id, by_path[p]) for p in top]
        known = [v for v in values if v is not None]
        result[carrier.code] = sum(known) if known else None
    return result


def eta_seconds(counts: dict[str, int], parts: int, mps: dict[str, int]) -> float:
    """Carriers send in parallel, each at its contracted segments per second: the slowest wins.

    A carrier with recipients but no rate (0 or missing) makes the ETA infinite.
    """
    worst = 0.0
    for code, count in counts.items():
        if count <= 0:
            continue
        rate = mps.get(code, 0)
        if rate <= 0:
            return math.inf
        worst = max(worst, count * max(parts, 1) / rate)
    return worst


# --- the snapshot ----------------------------------------------------------------------------


def _insert_for(dialect: str) -> Callable[..., Insert]:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    return insert


def snapshot_insert_select(
    alert: Alert,
    *,
    carrier_id: int,
    list_id: int | None,
    area_paths: Sequence[str],
    batch_size: int,
    dialect: str,
    newer_list_ids: Sequence[int] = (),
    batch_start: int = 0,
    id_range: tuple[int, int] | None = None,
    cap: int = 0,
    cap_now: datetime | None = None,
) -> Insert:
    """One INSERT … SELECT writing pending Delivery rows for one carrier (or one id chunk of it).

    batch_no = batch_start + (row number - 1) // batch_size; call with batch_start =
    next_batch_no(...) for the next chunk. Numbers already in deliveries for this alert are
    skipped (ON CONFLICT DO NOTHING; NOT EXISTS on other dialects), so a re-run only fills
    gaps, and its batches may hold fewer than batch_size rows.
    `cap` > 0 excludes numbers that were sent `cap` alerts in the 24 h before `cap_now`.
    Test alerts read the carrier's test recipients and ignore list, areas and cap.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    d = Delivery.__table__.alias("d")
    if AlertCategory(alert.category) == AlertCategory.TEST:
        t = TestRecipient.__table__.alias("t")
        msisdn, order = t.c.msisdn, t.c.id
        source: Any = t
        conds: list[ColumnElement[bool]] = [t.c.carrier_id == carrier_id]
    else:
        if list_id is None:
            raise ValueError("a public alert needs the carrier's list id")
        source, conds = _list_audience(
            list_id=list_id, area_paths=area_paths, newer_list_ids=newer_list_ids, id_range=id_range
        )
        msisdn, order = source.c.msisdn, source.c.id
        if cap > 0:
            conds.append(
                under_cap(msisdn, alert_id=alert.id, now=cap_now or datetime.now(UTC), cap=cap)
            )
    if dialect not in UPSERT_DIALECTS:
        conds.append(~exists().where(d.c.alert_id == alert.id, d.c.msisdn == msisdn))
    # Plain "/" of two integers truncates on both backends (FLOOR is not in every SQLite).
    row = func.row_number().over(order_by=order) - 1
    batch_no = literal(batch_start) + row.op("/", precedence=100)(literal(batch_size))
    sel: Select[Any] = select(
        literal(alert.id),
        literal(carrier_id),
        msisdn,
        batch_no,
        literal(DeliveryState.PENDING.value),
        literal(max(alert.parts or 1, 1)),
    ).where(and_(*conds))
    stmt = _insert_for(dialect)(Delivery).from_select(list(DELIVERY_COLUMNS), sel)
    if dialect in UPSERT_DIALECTS:
        stmt = stmt.on_conflict_do_nothing(index_elements=["alert_id", "msisdn"])  # type: ignore[attr-defined]
    return stmt


@dataclass(frozen=True)
class CarrierSnapshot:
    """Everything needed to write one carrier's part of an alert's audience."""

    carrier_id: int
    carrier_code: str
    list_id: int | None  # None: a test alert, or the carrier has no active list
    newer_list_ids: tuple[int, ...]
    area_paths: tuple[str, ...]
    id_min: int | None
    id_max: int | None
    cap: int
    cap_now: datetime | None

    def chunks(self, rows: int | None) -> list[tuple[int, int] | None]:
        """Subscriber-id ranges of about `rows` ids each (None: the whole list at once)."""
        if not rows or self.id_min is None or self.id_max is None:
            return [None]
        return [
            (lo, min(lo + rows, self.id_max + 1))
            for lo in range(self.id_min, self.id_max + 1, rows)
        ]

    def insert(
        self,
        alert: Alert,
        *,
        batch_size: int,
        dialect: str,
        batch_start: int = 0,
        id_range: tuple[int, int] | None = None,
    ) -> Insert:
        return snapshot_insert_select(
            alert,
            carrier_id=self.carrier_id,
            list_id=self.list_id,
            area_paths=self.area_paths,
            batch_size=batch_size,
            dialect=dialect,
            newer_list_ids=self.newer_list_ids,
            batch_start=batch_start,
            id_range=id_range,
            cap=self.cap,
            cap_now=self.cap_now,
        )


def plan_snapshot(
    session: Session, alert: Alert, *, settings: Settings | None = None, now: datetime | None = None
) -> list[CarrierSnapshot]:
    """Pin each chosen carrier's active list on the alert (AlertCarrier.list_id) and plan.

    The daily cap applies to warning and information alerts unless the approver waived it.
    """
    now = as_utc(now) if now else datetime.now(UTC)
    policy = Policy.from_settings(settings)
    test = AlertCategory(alert.category) == AlertCategory.TEST
    cap = (
        policy.daily_cap
        if daily_cap_applies(alert.category, policy, waived=alert.waive_daily_cap)
        else 0
    )
    paths = tuple(area_paths(session, [a.code for a in alert.areas]))
    lists = [] if test else active_lists(session)
    by_carrier = {row.carrier_id: row for row in lists}
    plans: list[CarrierSnapshot] = []
    for carrier in sorted(alert.carriers, key=lambda c: c.code):
        current = by_carrier.get(carrier.id)
        id_min = id_max = None
        if current is not None:
            id_min, id_max = session.execute(
                select(func.min(Subscriber.id), func.max(Subscriber.id)).where(
                    Subscriber.list_id == current.id
                )
            ).one()
            session.execute(
                update(AlertCarrier)
                .where(AlertCarrier.alert_id == alert.id, AlertCarrier.carrier_id == carrier.id)
                .values(list_id=current.id)
            )
        plans.append(
            CarrierSnapshot(
                carrier_id=carrier.id,
                carrier_code=carrier.code,
                list_id=current.id if current else None,
                newer_list_ids=newer_lists(lists, current.id) if current else (),
                area_paths=paths,
                id_min=id_min,
                id_max=id_max,
                cap=cap,
                cap_now=now if cap else None,
            )
        )
    return plans


def next_batch_no(session: Session, alert_id: int, carrier_id: int) -> int:
    """The batch number the next chunk of this carrier starts at."""
    last = session.scalar(
        select(func.max(Delivery.batch_no)).where(
            Delivery.alert_id == alert_id, Delivery.carrier_id == carrier_id
        )
    )
    return 0 if last is None else int(last) + 1


ChunkCallback = Callable[[CarrierSnapshot, int, range], None]


def snapshot(
    session: Session,
    alert: Alert,
    *,
    batch_size: int,
    settings: Settings | None = None,
    now: datetime | None = None,
    chunk_rows: int | None = None,
    on_chunk: ChunkCallback | None = None,
) -> dict[str, int]:
    """Write the alert's whole audience as pending deliveries; rows written per carrier code.

    With `chunk_rows`, each carrier is written in subscriber-id chunks and `on_chunk(plan, rows,
    batches)` is called after each, so a caller can enqueue those batches (and commit) before
    the next chunk. Running it again adds nothing already there.
    """
    dialect = session.get_bind().dialect.name
    written: dict[str, int] = {}
    for plan in plan_snapshot(session, alert, settings=settings, now=now):
        written[plan.carrier_code] = 0
        if plan.list_id is None and AlertCategory(alert.category) != AlertCategory.TEST:
            continue
        for id_range in plan.chunks(chunk_rows):
            if dialect == "postgresql":
                # The per-row cap probe lifts the cost estimate past jit_above_cost; compiling
                # then costs ~0.2 s a statement and saves nothing. SET LOCAL: this transaction
                # only, and again per chunk because on_chunk may commit.
                session.execute(text("SET LOCAL jit = off"))
            start = next_batch_no(session, alert.id, plan.carrier_id)
            stmt = plan.insert(
                alert, batch_size=batch_size, dialect=dialect, batch_start=start, id_range=id_range
            )
            result = session.connection().execute(stmt.execution_options(preserve_rowcount=True))
            rows = result.rowcount
            written[plan.carrier_code] += rows
            if on_chunk is not None and rows:
                on_chunk(
                    plan, rows, range(start, next_batch_no(session, alert.id, plan.carrier_id))
                )
    return written
