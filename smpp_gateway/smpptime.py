"""SMPP 3.4 time fields (section 7.1.1): pure, no I/O.

`validity_period` and `schedule_delivery_time` are 16 characters `YYMMDDhhmmsstnnp`: an
absolute time (`p` = "+" or "-", `nn` the offset from UTC in quarter hours) or a relative one
(`p` = "R", the fields then count years, months, days… from now). Loa writes absolute UTC
times: an alert's expiry is one instant, and a retry or a re-queued batch must not push it
later, as a relative period (counted from each submit) would.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_FORMAT = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+R-])$")


def absolute(moment: datetime) -> str:
    """`moment` as an absolute SMPP time in UTC ("261201093000000+"); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    at = moment.astimezone(UTC)
    return at.strftime("%y%m%d%H%M%S") + f"{at.microsecond // 100_000}00+"


def parse(value: str, now: datetime) -> datetime | None:
    """The instant an SMPP time field names (relative ones from `now`); None when empty or
    malformed."""
    match = _FORMAT.match(value or "")
    if match is None:
        return None
    yy, mo, dd, hh, mi, ss, tenth, nn, sign = match.groups()
    if sign == "R":
        days = int(yy) * 365 + int(mo) * 30 + int(dd)
        return now + timedelta(
            days=days, hours=int(hh), minutes=int(mi), seconds=int(ss) + int(tenth) / 10
        )
    try:
        local = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss),
                         int(tenth) * 100_000)  # fmt: skip
    except ValueError:
        return None
    offset = timedelta(minutes=15 * int(nn)) * (1 if sign == "+" else -1)
    return (local - offset).replace(tzinfo=UTC)
