"""Pause, resume, cancel and emergency priority, while a sender is sending."""

from __future__ import annotations

import time
from collections.abc import Callable

from broadcast import live
from delivery.conftest import World
from delivery.helpers import (
    accepted_numbers,
    alert_status,
    drain,
    sender_processes,
    states,
    wait_for,
)
from workers import jobs


def _submits(world: World) -> int:
    return len(world.sims["viettel"].submits())


def test_pause_stops_within_a_second_and_resume_finishes(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), mps=200, sim={"receipt_delay": 0.02})
    numbers = world.numbers(600)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    with sender_processes(world, ["viettel"]):
        assert wait_for(lambda: _submits(world) >= 100)
        live.set_control(world.runtime.redis, alert_id, "paused")
        time.sleep(1.0)  # the acknowledgement: every sender looks before each block
        paused_at = _submits(world)
        time.sleep(1.0)
        assert _submits(world) == paused_at < 600
        jobs.resume(alert_id)
        assert wait_for(lambda: _submits(world) >= 600)
    assert drain(world.runtime, ["viettel"], alert_id)
    assert states(world.database, alert_id) == {"delivered": 600}
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers) and max(received.values()) == 1


def test_cancel_sends_nothing_after_it_is_acknowledged(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), mps=200, sim={"receipt_delay": 0.02})
    alert_id = world.make_alert({"viettel": world.numbers(600)})
    jobs.fan_out(alert_id)
    with sender_processes(world, ["viettel"]):
        assert wait_for(lambda: _submits(world) >= 100)
        live.set_control(world.runtime.redis, alert_id, "cancelled")
        time.sleep(1.0)
        cancelled_at = _submits(world)
        assert wait_for(lambda: states(world.database, alert_id)["queued"] == 0, 10)
        time.sleep(0.5)
    assert _submits(world) == cancelled_at < 600
    drain(world.runtime, ["viettel"], alert_id)
    counts = states(world.database, alert_id)
    assert counts["delivered"] == cancelled_at
    assert counts["cancelled"] == 600 - cancelled_at
    assert sum(counts.values()) == 600


def test_an_emergency_goes_ahead_of_a_running_broadcast(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), mps=300)
    info = world.numbers(900)
    info_id = world.make_alert({"viettel": info})
    jobs.fan_out(info_id)
    with sender_processes(world, ["viettel"]):
        assert wait_for(lambda: _submits(world) >= 50)
        urgent = world.numbers(100)
        urgent_id = world.make_alert({"viettel": urgent}, category="emergency")
        started = time.time()
        jobs.fan_out(urgent_id)
        assert wait_for(lambda: states(world.database, info_id)["submitted"] == 900, 30)
    submits = world.sims["viettel"].submits()
    urgent_times = [r.time for r in submits if r.destination_addr in set(urgent)]
    info_times = [r.time for r in submits if r.destination_addr in set(info)]
    assert len(urgent_times) == 100
    assert min(urgent_times) - started < 1.5
    # The broadcast yielded: the emergency was done while most of it was still to send.
    assert max(urgent_times) < max(info_times) - 1.0
    assert alert_status(world.database, urgent_id) in ("sending", "completed")
