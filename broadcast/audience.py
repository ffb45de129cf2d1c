"""Who receives an alert: live counts for the console, and the snapshot into delivery rows.

The audience of a carrier is its ACTIVE subscriber list, restricted to the chosen areas and
their subtrees (Area.path prefixes). A subscriber without an area is reached only when a
top-level area (the whole province) is chosen. Test alerts go to the carriers' test recipients
instead, whatever the areas. A resend (Alert.resend_of_id) goes to exactly the numbers its
original did not reach (delivery ended undeliverable, expired or rejected), within the
resend's own carriers and areas: its audience is read from the original's deliveries.

Number portability (DOMAIN.md): the prefix is not the carrier. A number present in the active
lists of two carriers belongs to the list activated most recently (ties: the higher list id),
even when that carrier is not chosen for the alert; the older list's row is skipped.

The snapshot statement is one INSERT … SELECT per carrier and subscriber-id chunk, never a row
per round trip; `broadcast.deliveries.fan_out` writes an alert's audience with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Insert,
    Integer,
    Select,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from broadcast.errors import Reason, ValidationFailed
from broadcast.models import (
    FAILED_DELIVERY_STATES,
    Alert,
    AlertCarrier,
    AlertCategory,
    Area,
    AudienceAreaCount,
    Carrier,
    CountReport,
    Delivery,
    DeliveryState,
    ListStatus,
    RecipientGroup,
    Subscriber,
    SubscriberList,
    TestRecipient,
)
from broadcast.policy import Policy, as_utc, daily_cap_applies, under_cap

if TYPE_CHECKING:
    from broadcast.settings import Settings

DELIVERY_COLUMNS = (
    "alert_id", "carrier_id", "msisdn", "area_id", "batch_no", "state", "queued_at", "parts"
)  # fmt: skip
# Where a delivery ended without reaching its number: what a resend goes to.
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
            Reason("areas_unknown", "unknown area code(s): %(codes)s", codes=unknown),
            {"area_codes": unknown},
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


@dataclass(frozen=True)
class ActiveList:
    """An active list version, as far as the audience needs it."""

    id: int
    carrier_id: int
    uploaded: datetime


def active_lists(session: Session) -> list[ActiveList]:
    """Every carrier's active list, oldest upload first (the portability order)."""
    rows = session.execute(
        select(
            SubscriberList.id,
            SubscriberList.carrier_id,
            SubscriberList.activated_at,
            SubscriberList.created_at,
        ).where(SubscriberList.status == ListStatus.ACTIVE)
    )
    lists = [
        ActiveList(
            id=list_id,
            carrier_id=carrier_id,
            uploaded=as_utc(activated or created or datetime.min.replace(tzinfo=UTC)),
        )
        for list_id, carrier_id, activated, created in rows
    ]
    return sorted(lists, key=lambda row: (row.uploaded, row.id))


def lists_basis(lists: Sequence[ActiveList]) -> str:
    """The name of a set of active lists in upload order: the key of their area counts."""
    return ",".join(str(row.id) for row in lists)


def newer_lists(lists: Sequence[ActiveList], list_id: int) -> tuple[int, ...]:
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
            Reason("carriers_unknown", "unknown carrier(s): %(codes)s", codes=unknown),
            {"carrier_codes": unknown},
        )
    return [rows[c] for c in codes]


# --- the audience query ----------------------------------------------------------------------


def _owned_by_newer(s: Any, newer_list_ids: Sequence[int]) -> ColumnElement[bool]:
    """The number of row `s` is in one of these newer lists (it belongs to that carrier)."""
    other = Subscriber.__table__.alias("o")
    return exists().where(other.c.list_id.in_(list(newer_list_ids)), other.c.msisdn == s.c.msisdn)


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
        conds.append(~_owned_by_newer(s, newer_list_ids))
    if id_range is not None:
        conds.extend([s.c.id >= id_range[0], s.c.id < id_range[1]])
    return s, conds


def recipient_group(category: AlertCategory) -> RecipientGroup | None:
    """The group a test alert or a drill goes to instead of the lists; None for public alerts."""
    return {
        AlertCategory.TEST: RecipientGroup.TEST,
        AlertCategory.EXERCISE: RecipientGroup.DRILL,
    }.get(AlertCategory(category))


def _unreached(
    source_id: int, *, area_paths: Sequence[str] | None, resend_id: int | None = None
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The deliveries alias and the conditions that pick an alert's unreached numbers
    (`area_paths` None: whatever their area, as for a test alert's test group). A number that
    another resend of the same alert reached, or is sending to, is left out: two resends, say
    one per commune coming back, never text a person twice."""
    r = Delivery.__table__.alias("r")
    conds: list[ColumnElement[bool]] = [
        r.c.alert_id == source_id,
        r.c.state.in_([s.value for s in FAILED_DELIVERY_STATES]),
    ]
    if area_paths is not None:
        conds.append(area_clause(r.c.area_id, area_paths))
    other = Delivery.__table__.alias("o")
    resends = select(Alert.id).where(Alert.resend_of_id == source_id)
    if resend_id is not None:
        resends = resends.where(Alert.id != resend_id)
    gone = [*FAILED_DELIVERY_STATES, DeliveryState.CANCELLED]
    conds.append(
        ~exists().where(
            other.c.alert_id.in_(resends),
            other.c.msisdn == r.c.msisdn,
            other.c.state.not_in([s.value for s in gone]),
        )
    )
    return r, conds


def audience_counts(
    session: Session,
    *,
    area_codes: Iterable[str],
    carrier_codes: Iterable[str],
    test: bool = False,
    group: RecipientGroup | None = None,
    resend_of: int | None = None,
    resend_id: int | None = None,
    kept: bool = True,
) -> dict[str, int]:
    """Distinct numbers per carrier code that an alert with these choices would reach now.

    A test alert (`test=True`, the same as `group=RecipientGroup.TEST`) or a drill reaches its
    group's numbers, whatever the areas. `resend_of`: a resend of that alert, `resend_id` the
    resend itself if it exists yet (see the module's docstring). A public alert's figures come
    from the area counts the import keeps (cost: the number of areas); a list without kept
    counts for the current set of active lists is scanned instead, as is every list with
    `kept=False` (the benchmark's baseline)."""
    carriers = _carriers(session, carrier_codes)
    group = RecipientGroup.TEST if test else group
    if resend_of is not None:
        paths = None if group is not None else area_paths(session, area_codes)
        r, conds = _unreached(resend_of, area_paths=paths, resend_id=resend_id)
        rows: dict[int, int] = dict(
            session.execute(
                select(r.c.carrier_id, func.count())
                .where(*conds, r.c.carrier_id.in_([c.id for c in carriers]))
                .group_by(r.c.carrier_id)
            ).all()
        )
        return {c.code: int(rows.get(c.id, 0)) for c in carriers}
    if group is not None:
        rows = dict(
            session.execute(
                select(TestRecipient.carrier_id, func.count())
                .where(
                    TestRecipient.carrier_id.in_([c.id for c in carriers]),
                    TestRecipient.kind == group,
                )
                .group_by(TestRecipient.carrier_id)
            ).all()
        )
        return {c.code: int(rows.get(c.id, 0)) for c in carriers}
    paths = area_paths(session, area_codes)
    lists = active_lists(session)
    by_carrier = {row.carrier_id: row for row in lists}
    stored = (
        _kept_counts(
            session, lists, [by_carrier[c.id].id for c in carriers if c.id in by_carrier], paths
        )
        if kept
        else {}
    )
    counts: dict[str, int] = {}
    for carrier in carriers:
        current = by_carrier.get(carrier.id)
        if current is None:
            counts[carrier.code] = 0
            continue
        if current.id in stored:
            counts[carrier.code] = stored[current.id]
            continue
        # No counts kept for this set of lists (written outside the importer): scan.
        s, conds = _list_audience(
            list_id=current.id, area_paths=paths, newer_list_ids=newer_lists(lists, current.id)
        )
        counts[carrier.code] = int(
            session.scalar(select(func.count()).select_from(s).where(*conds)) or 0
        )
    return counts


def _kept_counts(
    session: Session, lists: Sequence[ActiveList], list_ids: Sequence[int], paths: Sequence[str]
) -> dict[int, int]:
    """Audience per list id from the kept area counts; lists with no rows for the current
    basis are left out (the caller scans those)."""
    if not list_ids:
        return {}
    c = AudienceAreaCount.__table__.alias("c")
    rows = session.execute(
        select(
            c.c.list_id,
            func.sum(case((area_clause(c.c.area_id, paths), c.c.subscribers), else_=0)),
        )
        .where(c.c.basis == lists_basis(lists), c.c.list_id.in_(list(list_ids)))
        .group_by(c.c.list_id)
    )
    return {int(list_id): int(total or 0) for list_id, total in rows}


def refresh_area_counts(session: Session) -> int:
    """Recount every active list per area, net of the numbers newer lists own, with the same
    conditions the snapshot uses; the rows of any other basis are deleted. Call it in the
    transaction that changes which lists are active. Returns the rows written (one per list
    and area that list holds a number in, even when all of them belong to a newer list)."""
    lists = active_lists(session)
    basis = lists_basis(lists)
    if session.get_bind().dialect.name == "postgresql":
        # Statistics of the partitioned parent (autovacuum never analyses it; the importer
        # analyses only the new partition): without them the planner guesses 200 distinct
        # numbers and probes the index a million times (10 s at 2M rows instead of 2 s).
        session.execute(text("ANALYZE subscribers"))
    session.execute(delete(AudienceAreaCount))
    rows: list[dict[str, Any]] = []
    for current in lists:
        s = Subscriber.__table__.alias("s")
        per_area = select(s.c.area_id, func.count()).where(s.c.list_id == current.id)
        totals: dict[int | None, int] = dict(session.execute(per_area.group_by(s.c.area_id)).all())
        newer = newer_lists(lists, current.id)
        # A semi-join the planner can hash, not a probe per row inside an aggregate.
        owned: dict[int | None, int] = (
            dict(
                session.execute(
                    per_area.where(_owned_by_newer(s, newer)).group_by(s.c.area_id)
                ).all()
            )
            if newer
            else {}
        )
        rows.extend(
            {
                "basis": basis,
                "list_id": current.id,
                "area_id": area_id,
                "subscribers": int(total) - int(owned.get(area_id, 0)),
            }
            for area_id, total in totals.items()
        )
    if rows:
        session.execute(insert(AudienceAreaCount), rows)
    written = len(rows)
    return written


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
    queued_at: datetime | None = None,
) -> Insert:
    """One INSERT … SELECT writing Delivery rows for one carrier (or one id chunk of it),
    `queued` (at `queued_at`, default now) and numbered into their batches in the same
    statement: batch_no = batch_start + (row number - 1) // batch_size (the fan-out passes
    the carrier's next free batch number). Numbers already in deliveries for this alert are
    skipped (ON CONFLICT DO NOTHING; NOT EXISTS on other dialects), so a re-run only fills
    gaps, and its batches may hold fewer than batch_size rows.
    `cap` > 0 excludes numbers that were sent `cap` alerts in the 24 h before `cap_now`.
    Test alerts read the carrier's test recipients and ignore list, areas and cap. A resend
    reads its original's unreached deliveries of this carrier (list_id only marks the carrier
    as having an audience; it is the original's pinned list).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    d = Delivery.__table__.alias("d")
    group = recipient_group(alert.category)
    source: Any
    conds: list[ColumnElement[bool]]
    if alert.resend_of_id is not None:
        source, conds = _unreached(
            alert.resend_of_id,
            area_paths=None if group is not None else area_paths,
            resend_id=alert.id,
        )
        conds.append(source.c.carrier_id == carrier_id)
        msisdn, order, area = source.c.msisdn, source.c.id, source.c.area_id
        if cap > 0:
            conds.append(
                under_cap(msisdn, alert_id=alert.id, now=cap_now or datetime.now(UTC), cap=cap)
            )
    elif group is not None:
        t = TestRecipient.__table__.alias("t")
        msisdn, order, area = t.c.msisdn, t.c.id, cast(null(), Integer)
        source = t
        conds = [t.c.carrier_id == carrier_id, t.c.kind == group.value]
    else:
        if list_id is None:
            raise ValueError("a public alert needs the carrier's list id")
        source, conds = _list_audience(
            list_id=list_id, area_paths=area_paths, newer_list_ids=newer_list_ids, id_range=id_range
        )
        msisdn, order, area = source.c.msisdn, source.c.id, source.c.area_id
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
        area,
        batch_no,
        literal(DeliveryState.QUEUED.value),
        literal(queued_at or datetime.now(UTC), DateTime(timezone=True)),
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

    def insert(
        self,
        alert: Alert,
        *,
        batch_size: int,
        dialect: str,
        batch_start: int = 0,
        id_range: tuple[int, int] | None = None,
        queued_at: datetime | None = None,
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
            queued_at=queued_at,
        )


def position_range(list_id: int) -> Select[int | None, int | None]:
    """The list's first and last position, each read from one end of the position index
    (two subqueries: SQLite answers only a lone min or max from an index)."""
    positions = select(Subscriber.id).where(Subscriber.list_id == list_id)
    first = positions.with_only_columns(func.min(Subscriber.id)).scalar_subquery()
    last = positions.with_only_columns(func.max(Subscriber.id)).scalar_subquery()
    return select(first, last)


def plan_snapshot(
    session: Session, alert: Alert, *, settings: Settings | None = None, now: datetime | None = None
) -> list[CarrierSnapshot]:
    """Pin each chosen carrier's active list on the alert (AlertCarrier.list_id) and plan.

    The daily cap applies to warning and information alerts unless the approver waived it.
    """
    now = as_utc(now) if now else datetime.now(UTC)
    policy = Policy.from_settings(settings)
    test = recipient_group(alert.category) is not None
    cap = (
        policy.daily_cap
        if daily_cap_applies(alert.category, policy, waived=alert.waive_daily_cap)
        else 0
    )
    paths = tuple(area_paths(session, [a.code for a in alert.areas]))
    if alert.resend_of_id is not None:
        return _plan_resend(session, alert, paths=paths, cap=cap, now=now)
    lists = [] if test else active_lists(session)
    by_carrier = {row.carrier_id: row for row in lists}
    plans: list[CarrierSnapshot] = []
    for carrier in sorted(alert.carriers, key=lambda c: c.code):
        current = by_carrier.get(carrier.id)
        id_min = id_max = None
        if current is not None:
            id_min, id_max = session.execute(position_range(current.id)).one()
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


def _plan_resend(
    session: Session, alert: Alert, *, paths: tuple[str, ...], cap: int, now: datetime
) -> list[CarrierSnapshot]:
    """A resend's plan: one chunk per carrier, read from the original's deliveries. Each
    carrier keeps the list its original was sent from (the marker that it has an audience)."""
    pinned = dict(
        session.execute(
            select(AlertCarrier.carrier_id, AlertCarrier.list_id).where(
                AlertCarrier.alert_id == alert.resend_of_id
            )
        ).all()
    )
    plans = []
    for carrier in sorted(alert.carriers, key=lambda c: c.code):
        list_id = pinned.get(carrier.id)
        session.execute(
            update(AlertCarrier)
            .where(AlertCarrier.alert_id == alert.id, AlertCarrier.carrier_id == carrier.id)
            .values(list_id=list_id)
        )
        plans.append(
            CarrierSnapshot(
                carrier_id=carrier.id,
                carrier_code=carrier.code,
                list_id=list_id,
                newer_list_ids=(),
                area_paths=paths,
                id_min=None,
                id_max=None,
                cap=cap,
                cap_now=now if cap else None,
            )
        )
    return plans
