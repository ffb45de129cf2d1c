"""Fan-out and sending end to end: real database, real Redis, simulators over TCP."""

from __future__ import annotations

from collections.abc import Callable

from broadcast import live
from delivery.conftest import World
from delivery.helpers import accepted_numbers, alert_status, drain, states, work
from workers import jobs


def test_every_recipient_reaches_a_final_state_once(make_world: Callable[..., World]) -> None:
    world = make_world(sim={"receipt_delay": 0.05})
    audience = {"viettel": world.numbers(230), "vinaphone": world.numbers(120)}
    alert_id = world.make_alert(audience)

    result = jobs.fan_out(alert_id)
    assert result["written"] == {"viettel": 230, "vinaphone": 120}
    assert result["batches"] == 5 + 3  # batch_size 50
    work(world.runtime, ["viettel", "vinaphone"])
    assert drain(world.runtime, ["viettel", "vinaphone"], alert_id)

    assert states(world.database, alert_id) == {"delivered": 350}
    for code, numbers in audience.items():
        received = accepted_numbers(world.sims[code])
        assert set(received) == set(numbers)
        assert max(received.values()) == 1
    assert alert_status(world.database, alert_id) == "completed"
    with world.database.session() as s:
        progress = live.alert_progress(
            world.runtime.redis, s, alert_id, world.runtime.settings.rate_limits
        )
    assert progress["viettel"]["total"] == 230
    assert progress["viettel"]["delivered"] == 230
    assert progress["vinaphone"]["delivered"] == 120
    assert progress["vinaphone"]["eta_seconds"] is None  # no estimate once it is over
