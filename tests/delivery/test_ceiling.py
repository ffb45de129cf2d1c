"""The carrier's ceiling as the SMSC counts it: over every sliding second of arrivals, whatever
the number of sender processes, on a busy machine; and the pace that follows an SMSC which
cannot take its contracted rate."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from rq import Worker

from delivery.conftest import World
from delivery.helpers import accepted_numbers, states, wait_for
from smpp_gateway.encoding import segments
from workers import jobs

LOA = [sys.executable, "-c", "from broadcast.cli import main; main()"]
# 200 GSM-7 characters: two parts (153 + 47) each.
TWO_PARTS = (
    "Canh bao: mua lon keo dai, nguy co lu quet va sat lo dat o cac xa vung nui. "
    "Nguoi dan di chuyen len cao, khong qua suoi, theo doi thong tin cua chinh quyen dia "
    "phuong va goi 112 khi can cuu ho."
)


def max_in_sliding_second(times: list[float]) -> int:
    """The most arrivals in any one-second window (every arrival starts a window)."""
    times = sorted(times)
    best = end = 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + 1.0:
            end += 1
        best = max(best, end - start)
    return best


@contextmanager
def cpu_hog() -> Iterator[None]:
    """A process spinning on a core beside the senders, as on an operator's busy machine."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait(10)


@contextmanager
def sender_processes(world: World, code: str, count: int) -> Iterator[None]:
    """`loa worker --carrier CODE` subprocesses, registered with RQ (binds open) on entry."""
    procs = [
        subprocess.Popen([*LOA, "worker", "--carrier", code], env=world.env()) for _ in range(count)
    ]
    try:
        assert wait_for(lambda: Worker.count(connection=world.runtime.redis) >= count, 40)
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.mark.slow
def test_three_senders_on_a_busy_machine_never_exceed_the_limit_in_any_second(
    make_world: Callable[..., World],
) -> None:
    limit = 50
    world = make_world(
        ("viettel",), mps=limit, window=10, batch_size=50, sim={"receipt_delay": 0.05}
    )
    assert segments(TWO_PARTS) == 2
    numbers = world.numbers(300)
    alert_id = world.make_alert({"viettel": numbers}, body=TWO_PARTS)
    sim = world.sims["viettel"]
    with cpu_hog(), sender_processes(world, "viettel", 3):
        jobs.fan_out(alert_id)
        assert wait_for(lambda: states(world.database, alert_id)["delivered"] == 300, 45, 0.2)
    # Every number exactly once, both parts.
    assert accepted_numbers(sim) == dict.fromkeys(numbers, 2)
    arrivals = sorted(r.time for r in sim.submits() if r.error is None)
    assert max_in_sliding_second(arrivals) <= limit
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert achieved >= 0.9 * limit, f"{achieved:.1f} segments/s of {limit}"
