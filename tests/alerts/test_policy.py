"""Quiet hours and the daily-cap rule: pure functions, unit and property tests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast.models import AlertCategory
from broadcast.policy import (
    Policy,
    PolicyViolation,
    applies,
    check_quiet_hours,
    daily_cap_applies,
    in_quiet_hours,
    quiet_hours_end,
)
from tests.conftest import make_settings

HANOI = timezone(timedelta(hours=7))
DEFAULT = Policy()  # 22:00–07:00 Asia/Ho_Chi_Minh, cap 3


def local(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=HANOI)


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(21, 59, False), (22, 0, True), (23, 0, True), (0, 0, True), (6, 59, True), (7, 0, False)],
)
def test_default_window_wraps_midnight(hour: int, minute: int, quiet: bool) -> None:
    assert in_quiet_hours(local(hour, minute), DEFAULT) is quiet


def test_window_read_in_the_province_time_zone() -> None:
    # 16:00 UTC is 23:00 in Ha Tinh; a naive value is taken as UTC (SQLite gives those back)
    assert in_quiet_hours(datetime(2026, 11, 20, 16, 0, tzinfo=UTC), DEFAULT)
    assert in_quiet_hours(datetime(2026, 11, 20, 16, 0), DEFAULT)
    assert not in_quiet_hours(datetime(2026, 11, 20, 3, 0, tzinfo=UTC), DEFAULT)


def test_a_window_inside_one_day_and_a_disabled_one() -> None:
    lunch = Policy(quiet_start=time(12, 0), quiet_end=time(13, 30))
    assert in_quiet_hours(local(12, 0), lunch) and in_quiet_hours(local(13, 29), lunch)
    assert not in_quiet_hours(local(13, 30), lunch) and not in_quiet_hours(local(23), lunch)
    off = Policy(quiet_start=time(22, 0), quiet_end=time(22, 0))
    assert not off.quiet_hours_enabled and not in_quiet_hours(local(23), off)


def test_quiet_hours_end_is_the_next_allowed_moment() -> None:
    assert quiet_hours_end(local(23), DEFAULT) == local(7) + timedelta(days=1)
    assert quiet_hours_end(local(3), DEFAULT) == local(7)
    assert quiet_hours_end(local(10), DEFAULT) == local(10)


def test_check_refuses_only_policed_unwaived() -> None:
    with pytest.raises(PolicyViolation, match="a warning alert cannot start sending at 23:00"):
        check_quiet_hours(AlertCategory.WARNING, local(23), DEFAULT, waived=False)
    with pytest.raises(PolicyViolation, match="information"):
        check_quiet_hours(AlertCategory.INFORMATION, local(6), DEFAULT, waived=False)
    check_quiet_hours(AlertCategory.WARNING, local(23), DEFAULT, waived=True)
    check_quiet_hours(AlertCategory.EMERGENCY, local(23), DEFAULT, waived=False)
    check_quiet_hours(AlertCategory.TEST, local(23), DEFAULT, waived=False)
    check_quiet_hours(AlertCategory.WARNING, local(12), DEFAULT, waived=False)


def test_categories_policed_and_cap_rules() -> None:
    assert [c for c in AlertCategory if applies(c)] == [
        AlertCategory.WARNING,
        AlertCategory.INFORMATION,
    ]
    assert daily_cap_applies(AlertCategory.INFORMATION, DEFAULT, waived=False)
    assert not daily_cap_applies(AlertCategory.INFORMATION, DEFAULT, waived=True)
    assert not daily_cap_applies(AlertCategory.EMERGENCY, DEFAULT, waived=False)
    assert not daily_cap_applies(AlertCategory.WARNING, Policy(daily_cap=0), waived=False)


def test_policy_from_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, policy={"quiet_hours_start": "21:30", "quiet_hours_end": "06:00", "daily_cap": 5}
    )
    assert Policy.from_settings(settings) == Policy(time(21, 30), time(6, 0), 5, "Asia/Ho_Chi_Minh")
    assert Policy.from_settings(None) == DEFAULT


minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


def _t(m: int) -> time:
    return time(m // 60, m % 60)


@given(start=minutes, end=minutes, at=minutes)
def test_window_and_its_complement_partition_the_day(start: int, end: int, at: int) -> None:
    """Quiet [start, end) and quiet [end, start) never agree, unless the window is disabled."""
    moment = local(0) + timedelta(minutes=at)
    a = in_quiet_hours(moment, Policy(_t(start), _t(end)))
    b = in_quiet_hours(moment, Policy(_t(end), _t(start)))
    if start == end:
        assert not a and not b
    else:
        assert a != b


@given(start=minutes, end=minutes, at=minutes)
def test_quiet_hours_end_is_outside_the_window_and_not_before(
    start: int, end: int, at: int
) -> None:
    policy = Policy(_t(start), _t(end))
    moment = local(0) + timedelta(minutes=at)
    resume = quiet_hours_end(moment, policy)
    assert resume >= moment and not in_quiet_hours(resume, policy)
    assert resume - moment < timedelta(days=1)
