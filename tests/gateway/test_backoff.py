"""The reconnection backoff: exponential, capped, jittered, reset by a success."""

from __future__ import annotations

import random

import pytest

from smpp_gateway.backoff import Backoff


def test_waits_double_up_to_the_maximum_and_a_success_starts_again() -> None:
    backoff = Backoff(0.1, 1.0, jitter=(1.0, 1.0))
    assert backoff.ready(0.0)
    waits = []
    now = 10.0
    for _ in range(6):
        at = backoff.failed(now)
        assert not backoff.ready(at - 0.001) and backoff.ready(at)
        waits.append(round(at - now, 6))
        now = at
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.ready(now)  # after a success, a lost link is retried at once
    assert backoff.failed(now) - now == pytest.approx(0.1)


def test_jitter_spreads_binds_that_lost_the_same_smsc() -> None:
    rng = random.Random(7)
    waits = []
    for _ in range(200):
        backoff = Backoff(1.0, 60.0, rng=rng)
        waits.append(backoff.failed(0.0))
    assert min(waits) >= 0.5 and max(waits) <= 1.5
    assert max(waits) - min(waits) > 0.8  # not all at the same instant
