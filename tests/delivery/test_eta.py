"""The one ETA (broadcast.eta): parts-aware, smoothed, none once over; read as the watch page
reads it (the progress of an alert with queued rows in the database and rate buckets in a
real Redis) and as the preview computes it."""

from __future__ import annotations

import math
import time

import pytest
from sqlalchemy import update

from broadcast import eta, keys, live
from broadcast.models import Alert, Delivery
from delivery.conftest import World
from workers import jobs


def _queued_alert(world: World, rows: int, parts: int) -> int:
    """An alert fanned out (rows queued, counters built) with no sender running."""
    alert_id = world.make_alert({"viettel": world.numbers(rows)})
    with world.database.session() as s:
        s.execute(update(Alert).where(Alert.id == alert_id).values(parts=parts))
    assert jobs.fan_out(alert_id)["result"] == "fanned out"
    return alert_id


def _sent(world: World, alert_id: int, per_second: list[int]) -> None:
    """Segments submitted in each of the last seconds, newest first (what senders record);
    written at the start of a second, so the read that follows sees the same seconds."""
    time.sleep(1 - time.time() % 1)
    now = int(time.time())
    pipe = world.runtime.redis.pipeline()
    for back, n in enumerate(per_second, 1):
        pipe.set(keys.alert_rate_key(alert_id, "viettel", now - back), n, ex=15)
    pipe.execute()


def _eta(world: World, alert_id: int) -> float | None:
    with world.database.session() as s:
        progress = live.alert_progress(
            world.runtime.redis, s, alert_id, world.runtime.settings.rate_limits
        )
    return progress["viettel"]["eta_seconds"]


def test_a_two_part_alert_shows_twice_the_time_of_a_one_part_alert(make_world) -> None:
    world = make_world(("viettel",), mps=100)
    one = _queued_alert(world, 300, parts=1)
    two = _queued_alert(world, 300, parts=2)
    # Nothing sent yet: both at the carrier's limit, 100 segments/s.
    assert _eta(world, one) == 3.0
    assert _eta(world, two) == 6.0
    # Sending at 50 segments/s for the last 10 s: the same rate for both.
    _sent(world, one, [50] * 10)
    assert _eta(world, one) == pytest.approx(6.0)
    _sent(world, two, [50] * 10)
    assert _eta(world, two) == pytest.approx(12.0)


def test_a_brief_stall_does_not_send_the_estimate_to_hours(make_world) -> None:
    world = make_world(("viettel",), mps=100)
    alert_id = _queued_alert(world, 3000, parts=2)
    _sent(world, alert_id, [50] * 12)
    steady = _eta(world, alert_id)
    assert steady == pytest.approx(120.0)  # 6,000 segments at 50/s
    # The last three seconds nearly stalled (a database hiccup): the last 3 s average 0.3/s,
    # which would say 5.5 hours; the smoothed rate says a few minutes.
    _sent(world, alert_id, [1, 0, 0] + [50] * 9)
    stalled = _eta(world, alert_id)
    assert stalled is not None and steady < stalled < 2.5 * steady, stalled


def test_no_estimate_once_nothing_is_left(make_world) -> None:
    world = make_world(("viettel",), mps=100)
    alert_id = _queued_alert(world, 10, parts=1)
    # Every row delivered, counters rebuilt from the database.
    with world.database.session() as s:
        s.execute(update(Delivery).where(Delivery.alert_id == alert_id).values(state="delivered"))
        live.rebuild_counters(world.runtime.redis, s, alert_id)
    _sent(world, alert_id, [50] * 3)
    assert _eta(world, alert_id) is None


def test_the_preview_and_the_watch_page_use_the_same_arithmetic() -> None:
    # 3,000 two-part messages at 300/s and 1,000 at 20/s: the slower carrier decides.
    assert eta.slowest({"a": 3000, "b": 1000}, 2, {"a": 300, "b": 20}) == 100.0
    assert eta.slowest({"a": 0}, 2, {}) == 0.0
    assert eta.slowest({}, 1, {}) == 0.0
    assert math.isinf(eta.slowest({"a": 1}, 1, {"a": 0}))
    # The watch page's estimate before anything was sent is the preview's.
    assert eta.remaining(1000, 2, [], 20.0) == eta.slowest({"b": 1000}, 2, {"b": 20}) == 100.0
    # Never faster than the senders pace at, whatever a burst in one second says.
    assert eta.remaining(1000, 1, [500] * 3, 20.0) == 50.0
    assert eta.remaining(0, 2, [50], 20.0) is None
