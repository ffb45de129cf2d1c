"""Sending policy: quiet hours and the per-subscriber daily cap.

Decree 91/2020 sets both for advertising SMS; public notices are believed to be outside it, but
Loa applies them to the non-emergency public categories by choice (DOMAIN.md) and lets an
approver waive them. Emergencies are never held back, and test alerts and drills are exempt
because they go only to the test or drill group, whose members asked for them; a drill's
messages do not count towards anyone's cap either (a drill must not hold back a real warning).

The time arithmetic is pure; `under_cap` is the SQL filter the audience snapshot uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select

from broadcast.errors import Reason, ValidationFailed
from broadcast.models import Alert, AlertCategory, Delivery

if TYPE_CHECKING:
    from broadcast.settings import Settings

# Categories the quiet hours and the daily cap apply to.
POLICED = frozenset({AlertCategory.WARNING, AlertCategory.INFORMATION})
CAP_WINDOW = timedelta(hours=24)


class PolicyViolation(ValidationFailed):
    """An approval would break quiet hours (or another sending rule) and was not waived.

    Carries the figures of its message so the console can say it in the reader's language."""

    code = "policy_violation"

    def __init__(
        self,
        message: str,
        details: dict[str, list[str]],
        *,
        category: AlertCategory,
        window: str,
        start: datetime,
        resume: datetime,
    ) -> None:
        super().__init__(message, details)
        self.category = category
        self.window = window
        self.start = start
        self.resume = resume


@dataclass(frozen=True)
class Policy:
    """The policy settings plus the time zone they are read in (settings.policy + timezone)."""

    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)
    daily_cap: int = 3
    timezone: str = "Asia/Ho_Chi_Minh"
    default_validity_hours: int = 24

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Policy:
        if settings is None:
            return cls()
        p = settings.policy
        return cls(
            quiet_start=parse_hhmm(p.quiet_hours_start),
            quiet_end=parse_hhmm(p.quiet_hours_end),
            daily_cap=p.daily_cap,
            timezone=settings.timezone,
            default_validity_hours=p.default_validity_hours,
        )

    @property
    def quiet_hours_enabled(self) -> bool:
        return self.quiet_start != self.quiet_end


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def applies(category: AlertCategory) -> bool:
    """True when quiet hours and the daily cap apply to this category."""
    return AlertCategory(category) in POLICED


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value is taken as UTC (SQLite hands back naive UTC timestamps)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def in_quiet_hours(moment: datetime, policy: Policy) -> bool:
    """Is `moment` inside [quiet_start, quiet_end) local time? The window may wrap midnight."""
    if not policy.quiet_hours_enabled:
        return False
    local = as_utc(moment).astimezone(ZoneInfo(policy.timezone)).time().replace(tzinfo=None)
    start, end = policy.quiet_start, policy.quiet_end
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(moment: datetime, policy: Policy) -> datetime:
    """The first moment at or after `moment` that is outside quiet hours (aware, local zone)."""
    zone = ZoneInfo(policy.timezone)
    local = as_utc(moment).astimezone(zone)
    if not in_quiet_hours(moment, policy):
        return local
    candidate = datetime.combine(local.date(), policy.quiet_end, tzinfo=zone)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def check_quiet_hours(
    category: AlertCategory, send_at: datetime, policy: Policy, *, waived: bool
) -> None:
    """Refuse a policed alert whose sending would start inside quiet hours, unless waived."""
    if waived or not applies(category) or not in_quiet_hours(send_at, policy):
        return
    local = as_utc(send_at).astimezone(ZoneInfo(policy.timezone))
    resume = quiet_hours_end(send_at, policy)
    window = f"{policy.quiet_start:%H:%M}–{policy.quiet_end:%H:%M}"
    message = Reason(
        "quiet_hours",
        "quiet hours %(window)s (%(timezone)s): a %(category)s alert cannot start sending at "
        "%(start)s; schedule it for %(resume)s or waive quiet hours",
        window=window,
        timezone=policy.timezone,
        category=AlertCategory(category).value,
        start=f"{local:%H:%M}",
        resume=f"{resume:%Y-%m-%d %H:%M}",
    )
    raise PolicyViolation(
        message,
        {"quiet_hours": [message]},
        category=AlertCategory(category),
        window=window,
        start=local,
        resume=resume,
    )


@dataclass(frozen=True)
class Rules:
    """What the sending rules mean for one alert, for the pages that warn before they bite."""

    applies: bool  # the category is policed (warning, information)
    quiet_window: str | None  # "22:00–07:00" when quiet hours are set
    start: datetime  # when sending would start, local time
    in_quiet_hours: bool  # … and that moment is inside quiet hours
    resume: datetime  # the first moment outside them (local)
    daily_cap: int  # 0: no cap


def rules_for(category: AlertCategory, send_at: datetime, policy: Policy) -> Rules:
    """The quiet hours and the daily cap as they apply to an alert starting at `send_at`."""
    policed = applies(category)
    window = (
        f"{policy.quiet_start:%H:%M}–{policy.quiet_end:%H:%M}"
        if policy.quiet_hours_enabled
        else None
    )
    return Rules(
        applies=policed,
        quiet_window=window,
        start=as_utc(send_at).astimezone(ZoneInfo(policy.timezone)),
        in_quiet_hours=policed and in_quiet_hours(send_at, policy),
        resume=quiet_hours_end(send_at, policy),
        daily_cap=policy.daily_cap,
    )


def daily_cap_applies(category: AlertCategory, policy: Policy, *, waived: bool) -> bool:
    return applies(category) and not waived and policy.daily_cap > 0


def under_cap(
    msisdn: ColumnElement[str], *, alert_id: int, now: datetime, cap: int
) -> ColumnElement[bool]:
    """The snapshot's filter: fewer than `cap` other alerts submitted to `msisdn` in 24 h.

    A correlated count, probed per candidate row through ix_deliveries_msisdn_submitted: its
    cost follows the chunk being written, not the size of the delivery history (a
    `NOT IN (capped_numbers)` would scan every past delivery for every chunk).
    """
    since = as_utc(now) - CAP_WINDOW
    drills = select(Alert.id).where(Alert.category == AlertCategory.EXERCISE)
    sent = (
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.msisdn == msisdn,
            Delivery.submitted_at >= since,
            Delivery.alert_id != alert_id,
            Delivery.alert_id.not_in(drills),
        )
        .scalar_subquery()
    )
    return sent < cap
