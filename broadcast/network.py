"""Carriers' network status by area: a carrier marks areas of its network normal, degraded or
down, with a note. Rows are appended (the history); the latest row of a carrier and area is
its current state, and an area nobody reported on is normal.

The drafter's preview and the watch page read `affected` for the areas an alert targets; a
pair that came back to normal after an alert went out (`restored`) is the moment to resend to
the alert's unreached numbers there (broadcast.alerts.derive_resend).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcast import audit, text
from broadcast.audience import area_clause, area_paths
from broadcast.errors import NotFound, PermissionDenied, Reason, ValidationFailed
from broadcast.models import Area, Carrier, NetworkState, NetworkStatus, Role, User
from broadcast.policy import as_utc

MAX_AREAS_PER_CHANGE = 500


@dataclass(frozen=True)
class AreaState:
    """One area's state as a carrier reports it."""

    code: str
    state: NetworkState
    note: str = ""


def _carrier(session: Session, carrier_code: str) -> Carrier:
    carrier = session.scalar(select(Carrier).where(Carrier.code == carrier_code))
    if carrier is None:
        raise NotFound(f"carrier {carrier_code!r} not found")
    return carrier


def may_set(user: User, carrier_code: str) -> bool:
    """An admin, or a user of this very carrier: nobody reports on another's network."""
    if not user.active:
        return False
    own = user.carrier.code if user.role == Role.CARRIER and user.carrier else None
    return user.role == Role.ADMIN or own == carrier_code


def _network_refused(problems: dict[str, list[str]]) -> Reason:
    return Reason(
        "network_refused", "network status refused: check %(fields)s", fields=list(problems)
    )


def parse_entries(rows: Sequence[dict[str, Any]]) -> list[AreaState]:
    """AreaStates from input rows {"code", "state", "note"}; every problem named by its row."""
    problems: dict[str, list[str]] = {}
    out: list[AreaState] = []
    if not rows:
        problems["areas"] = [Reason("areas_none", "give at least one area")]
    if len(rows) > MAX_AREAS_PER_CHANGE:
        problems["areas"] = [
            Reason(
                "areas_too_many",
                "%(count)s areas; at most %(most)s at once",
                count=len(rows),
                most=MAX_AREAS_PER_CHANGE,
            )
        ]
    seen: set[str] = set()
    for n, row in enumerate(rows[:MAX_AREAS_PER_CHANGE]):
        key = f"areas[{n}]"
        code, state, note = row.get("code", ""), row.get("state", ""), row.get("note") or ""
        try:
            parsed = NetworkState(state)
        except ValueError:
            problems.setdefault(key, []).append(
                Reason(
                    "network_state_unknown",
                    "state %(state)r is not one of %(known)s",
                    state=state,
                    known=[s.value for s in NetworkState],
                )
            )
            continue
        for message in text.problems(note, text.NETWORK_NOTE):
            problems.setdefault(key, []).append(
                Reason("network_note", "note: %(problem)s", problem=message)
            )
        if code in seen:
            problems.setdefault(key, []).append(
                Reason("area_twice", "area %(code)r appears twice", code=code)
            )
        seen.add(code)
        out.append(AreaState(code=code, state=parsed, note=note))
    if problems:
        raise ValidationFailed(_network_refused(problems), problems)
    return out


def set_status(
    session: Session,
    carrier_code: str,
    entries: Sequence[AreaState],
    *,
    user: User,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Record the carrier's report on these areas (only what changed: a replayed request adds
    nothing), audited. Returns the carrier's current status afterwards. A user who may not
    report on `carrier_code` is refused before its existence is looked at: a carrier's user
    gets the same answer for another carrier and for a code that names none."""
    if not may_set(user, carrier_code):
        raise PermissionDenied(
            Reason(
                "network_not_yours",
                "%(user)r may not report on this network: a carrier's users report "
                "on their own carrier's network only (and admins on any)",
                user=user.username,
            )
        )
    carrier = _carrier(session, carrier_code)
    codes = [e.code for e in entries]
    known = {
        code: (area_id, retired)
        for code, area_id, retired in session.execute(
            select(Area.code, Area.id, Area.retired_at).where(Area.code.in_(codes))
        )
    }
    problems: dict[str, list[str]] = {}
    for n, entry in enumerate(entries):
        if entry.code not in known:
            problems[f"areas[{n}]"] = [
                Reason("area_unknown", "unknown area code %(code)r", code=entry.code)
            ]
        elif known[entry.code][1] is not None:
            problems[f"areas[{n}]"] = [
                Reason("area_retired", "area %(code)r is retired", code=entry.code)
            ]
    if problems:
        raise ValidationFailed(_network_refused(problems), problems)
    stamp = as_utc(now) if now else datetime.now(UTC)
    before = {row["code"]: row for row in current(session, carrier_codes=[carrier.code])}
    changed_before: dict[str, Any] = {}
    changed_after: dict[str, Any] = {}
    for entry in entries:
        old = before.get(entry.code)
        if old is not None and (old["state"], old["note"]) == (entry.state.value, entry.note):
            continue
        if old is None and entry.state == NetworkState.NORMAL and not entry.note:
            continue  # never reported: it is normal already
        session.add(
            NetworkStatus(
                carrier_id=carrier.id,
                area_id=known[entry.code][0],
                state=entry.state,
                note=entry.note,
                set_by=user.id,
                set_at=stamp,
            )
        )
        changed_before[entry.code] = old["state"] if old else NetworkState.NORMAL.value
        changed_after[entry.code] = {"state": entry.state.value, "note": entry.note}
    if changed_after:
        audit.record(
            session,
            actor=user,
            action="carrier.network_status",
            object_type="carrier",
            object_id=carrier.code,
            before=changed_before,
            after=changed_after,
        )
    session.flush()
    return current(session, carrier_codes=[carrier.code])


def _view(row: Any) -> dict[str, Any]:
    return {
        "carrier": row.carrier,
        "carrier_name": row.carrier_name,
        "code": row.code,
        "name": row.name,
        "state": NetworkState(row.state).value,
        "note": row.note,
        "set_at": as_utc(row.set_at) if row.set_at else None,
        "set_by": row.username,
    }


def _latest(*conds: Any) -> Any:
    latest = (
        select(func.max(NetworkStatus.id).label("id"))
        .where(*conds)
        .group_by(NetworkStatus.carrier_id, NetworkStatus.area_id)
        .subquery()
    )
    return (
        select(
            Carrier.code.label("carrier"),
            Carrier.name.label("carrier_name"),
            Area.code,
            Area.name,
            NetworkStatus.state,
            NetworkStatus.note,
            NetworkStatus.set_at,
            User.username,
        )
        .join(latest, latest.c.id == NetworkStatus.id)
        .join(Carrier, Carrier.id == NetworkStatus.carrier_id)
        .join(Area, Area.id == NetworkStatus.area_id)
        .outerjoin(User, User.id == NetworkStatus.set_by)
    )


def current(
    session: Session, *, carrier_codes: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The latest report of each carrier and area (areas never reported on are normal and
    absent), by carrier then area code."""
    query = _latest()
    if carrier_codes is not None:
        query = query.where(Carrier.code.in_(list(carrier_codes)))
    rows = session.execute(query.order_by(Carrier.code, Area.code))
    return [_view(r) for r in rows]


def history(session: Session, carrier_code: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The carrier's reports, newest first."""
    carrier = _carrier(session, carrier_code)
    rows = session.execute(
        select(
            Carrier.code.label("carrier"),
            Carrier.name.label("carrier_name"),
            Area.code,
            Area.name,
            NetworkStatus.state,
            NetworkStatus.note,
            NetworkStatus.set_at,
            User.username,
        )
        .join(Carrier, Carrier.id == NetworkStatus.carrier_id)
        .join(Area, Area.id == NetworkStatus.area_id)
        .outerjoin(User, User.id == NetworkStatus.set_by)
        .where(NetworkStatus.carrier_id == carrier.id)
        .order_by(NetworkStatus.id.desc())
        .limit(limit)
    )
    return [_view(r) for r in rows]


def affected(
    session: Session, *, area_codes: Iterable[str], carrier_codes: Iterable[str]
) -> list[dict[str, Any]]:
    """Targeted areas (and the areas inside them) that a chosen carrier reports degraded or
    down now: what the drafter and the watch page warn about."""
    codes = list(area_codes)
    carriers = list(carrier_codes)
    if not codes or not carriers:
        return []
    paths = area_paths(session, codes)
    query = _latest().where(
        Carrier.code.in_(carriers),
        NetworkStatus.state != NetworkState.NORMAL,
        area_clause(NetworkStatus.area_id, paths),
    )
    return [_view(r) for r in session.execute(query.order_by(Area.code, Carrier.code))]


def restored(
    session: Session, *, area_codes: Iterable[str], carrier_codes: Iterable[str], since: datetime
) -> list[dict[str, Any]]:
    """Targeted areas whose carrier reports normal now after a degraded or down report made
    since `since` (when the alert went out): the moment to resend there."""
    codes = list(area_codes)
    carriers = list(carrier_codes)
    if not codes or not carriers:
        return []
    paths = area_paths(session, codes)
    troubled = (
        select(NetworkStatus.carrier_id, NetworkStatus.area_id)
        .where(NetworkStatus.state != NetworkState.NORMAL, NetworkStatus.set_at >= since)
        .distinct()
        .subquery()
    )
    query = (
        _latest()
        .join(
            troubled,
            (troubled.c.carrier_id == NetworkStatus.carrier_id)
            & (troubled.c.area_id == NetworkStatus.area_id),
        )
        .where(
            Carrier.code.in_(carriers),
            NetworkStatus.state == NetworkState.NORMAL,
            area_clause(NetworkStatus.area_id, paths),
        )
    )
    return [_view(r) for r in session.execute(query.order_by(Area.code, Carrier.code))]
