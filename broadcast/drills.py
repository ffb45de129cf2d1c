"""Recurring drills: an admin sets "every month on day D at HH:MM"; the control worker's
periodic reconcile (workers.jobs.reconcile) calls `create_due`, which, `lead_days` before each
drill, makes the drill alert (category exercise, schedule_at = the drill's time) and submits it
for approval in the name of the admin who set the schedule.

Why a draft awaiting approval, not a message sent by the clock: a province expects a leader to
sign off every message that reaches phones (the two-person rule holds for drills too), and a
drill is moved or called off when a real storm is coming. Approved in the lead time, the alert
is scheduled and leaves at its time; not approved, nothing is sent. A drill whose time passed
while no worker ran is skipped (audited `drill_schedule.missed`), never sent late.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcast import alerts, audit
from broadcast.db import rowcount
from broadcast.errors import LoaError, NotFound, PermissionDenied, Reason, ValidationFailed
from broadcast.models import AlertCategory, DrillSchedule, Role, User
from broadcast.policy import as_utc

MAX_DAY = 28  # every month has it
MAX_LEAD_DAYS = 27  # a drill's draft is made before the previous month's drill is over
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class DrillPlan:
    """What an admin sets: the drill's text, audience and monthly time."""

    title: str
    body: str
    area_codes: tuple[str, ...]
    carrier_codes: tuple[str, ...]
    brandname: str
    day_of_month: int
    at_time: str  # "HH:MM", local time
    lead_days: int = 7
    fold: bool = False


def next_occurrence(after: datetime, *, day: int, at: str, timezone: str) -> datetime:
    """The first `day` of a month at `at` (local time) strictly after `after`, in UTC."""
    zone = ZoneInfo(timezone)
    local = as_utc(after).astimezone(zone)
    hours, minutes = (int(x) for x in at.split(":"))
    year, month = local.year, local.month
    while True:
        candidate = datetime.combine(date(year, month, day), time(hours, minutes), tzinfo=zone)
        if candidate > local:
            return candidate.astimezone(UTC)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _draft(plan: DrillPlan | DrillSchedule, send_at: datetime) -> alerts.AlertDraft:
    return alerts.AlertDraft(
        title=plan.title,
        body=plan.body,
        category=AlertCategory.EXERCISE,
        area_codes=tuple(plan.area_codes),
        carrier_codes=tuple(plan.carrier_codes),
        brandname=plan.brandname,
        fold=plan.fold,
        schedule_at=send_at,
        event="Diễn tập / Exercise",
    )


def _require_admin(user: User) -> None:
    if not user.active or user.role != Role.ADMIN:
        raise PermissionDenied(
            Reason(
                "drills_admin_only",
                "scheduling drills needs the admin role; %(user)r is not",
                user=user.username,
            )
        )


def create_schedule(
    session: Session, plan: DrillPlan, *, user: User, now: datetime, timezone: str
) -> DrillSchedule:
    """Store a recurring drill; every problem at once, keyed by field, and nothing stored."""
    _require_admin(user)
    problems: dict[str, list[str]] = {}
    if not 1 <= plan.day_of_month <= MAX_DAY:
        problems["day_of_month"] = [
            Reason(
                "drill_day", "%(day)s is not a day 1..%(most)s", day=plan.day_of_month, most=MAX_DAY
            )
        ]
    if not HHMM.fullmatch(plan.at_time or ""):
        problems["at_time"] = [
            Reason("drill_time", "%(time)r is not a time HH:MM (00:00..23:59)", time=plan.at_time)
        ]
    if not 1 <= plan.lead_days <= MAX_LEAD_DAYS:
        problems["lead_days"] = [
            Reason(
                "drill_lead",
                "%(days)s is not 1..%(most)s days",
                days=plan.lead_days,
                most=MAX_LEAD_DAYS,
            )
        ]
    next_at = now
    if not problems:
        next_at = next_occurrence(now, day=plan.day_of_month, at=plan.at_time, timezone=timezone)
    try:
        alerts.validate_draft(session, _draft(plan, next_at), now=now)
    except ValidationFailed as exc:
        for key, messages in exc.details.items():
            problems.setdefault(key, []).extend(messages)
    if problems:
        raise ValidationFailed(
            Reason(
                "drill_refused", "drill schedule refused: check %(fields)s", fields=list(problems)
            ),
            problems,
        )
    row = DrillSchedule(
        title=plan.title.strip(),
        body=plan.body,
        fold=plan.fold,
        brandname=plan.brandname,
        area_codes=list(dict.fromkeys(plan.area_codes)),
        carrier_codes=list(dict.fromkeys(plan.carrier_codes)),
        day_of_month=plan.day_of_month,
        at_time=plan.at_time,
        lead_days=plan.lead_days,
        next_at=next_at,
        active=True,
        created_by=user.id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=user,
        action="drill_schedule.create",
        object_type="drill_schedule",
        object_id=row.id,
        after=schedule_summary(row),
    )
    return row


def deactivate(session: Session, schedule_id: int, *, user: User) -> DrillSchedule:
    _require_admin(user)
    row = session.get(DrillSchedule, schedule_id)
    if row is None:
        raise NotFound(Reason("drill_not_found", "drill schedule %(id)s not found", id=schedule_id))
    if row.active:
        row.active = False
        audit.record(
            session,
            actor=user,
            action="drill_schedule.deactivate",
            object_type="drill_schedule",
            object_id=row.id,
            before={"active": True},
            after={"active": False},
        )
        session.flush()
    return row


def list_schedules(session: Session) -> list[DrillSchedule]:
    return list(session.scalars(select(DrillSchedule).order_by(DrillSchedule.id)))


def schedule_summary(row: DrillSchedule) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "fold": row.fold,
        "brandname": row.brandname,
        "areas": list(row.area_codes),
        "carriers": list(row.carrier_codes),
        "day_of_month": row.day_of_month,
        "at_time": row.at_time,
        "lead_days": row.lead_days,
        "next_at": as_utc(row.next_at).isoformat(),
        "active": row.active,
        "last_alert_id": row.last_alert_id,
    }


def _claim(session: Session, row: DrillSchedule, following: datetime) -> bool:
    """Move the schedule on to its next drill, if no other worker did it first: the UPDATE
    names the time read, so of two reconciles running at once only one creates the drill."""
    claimed = session.execute(
        update(DrillSchedule)
        .where(DrillSchedule.id == row.id, DrillSchedule.next_at == row.next_at)
        .values(next_at=following)
        .execution_options(synchronize_session=False)
    )
    return rowcount(claimed) == 1


def create_due(session: Session, *, now: datetime, timezone: str) -> list[int]:
    """Make the drill alerts whose lead time has come; returns their alert ids."""
    now = as_utc(now)
    made: list[int] = []
    for row in session.scalars(select(DrillSchedule).where(DrillSchedule.active)).all():
        send_at = as_utc(row.next_at)
        if now < send_at - timedelta(days=row.lead_days):
            continue
        # From a missed drill, skip to the first one still ahead.
        following = next_occurrence(
            max(send_at, now), day=row.day_of_month, at=row.at_time, timezone=timezone
        )
        if not _claim(session, row, following):
            continue
        if send_at <= now:
            audit.record(
                session,
                actor=alerts.SYSTEM,
                action="drill_schedule.missed",
                object_type="drill_schedule",
                object_id=row.id,
                after={"missed": send_at.isoformat(), "next_at": following.isoformat()},
            )
            continue
        author = session.get(User, row.created_by)
        try:
            with session.begin_nested():
                assert author is not None  # a foreign key; users are never deleted
                alert = alerts.create_draft(session, _draft(row, send_at), user=author, now=now)
                alerts.submit_for_approval(session, alert.id, user=author, now=now)
        except LoaError as exc:  # e.g. the admin was deactivated, a carrier retired
            audit.record(
                session,
                actor=alerts.SYSTEM,
                action="drill_schedule.failed",
                object_type="drill_schedule",
                object_id=row.id,
                after={"drill_at": send_at.isoformat(), "error": str(exc)[:500]},
            )
            continue
        session.execute(
            update(DrillSchedule)
            .where(DrillSchedule.id == row.id)
            .values(last_alert_id=alert.id)
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session,
            actor=alerts.SYSTEM,
            action="drill_schedule.run",
            object_type="drill_schedule",
            object_id=row.id,
            after={"alert_id": alert.id, "drill_at": send_at.isoformat()},
        )
        made.append(alert.id)
    session.flush()
    return made
