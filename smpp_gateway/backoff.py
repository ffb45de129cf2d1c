"""Exponential backoff with jitter, for reconnecting a lost bind."""

from __future__ import annotations

import random


class Backoff:
    """Waits `initial` seconds after the first failure, doubling after each further one up
    to `maximum`, each wait scaled by a random factor in `jitter` (so binds that lost the
    same SMSC do not all come back at once); `reset` after a success."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        jitter: tuple[float, float] = (0.5, 1.5),
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.delay = initial
        self.next_attempt = 0.0

    def ready(self, now: float) -> bool:
        """Whether an attempt may be made at `now` (time.monotonic())."""
        return now >= self.next_attempt

    def failed(self, now: float) -> float:
        """An attempt at `now` failed: the next one waits; returns when it may be made."""
        self.next_attempt = now + self.delay * self._rng.uniform(*self.jitter)
        self.delay = min(self.delay * 2, self.maximum)
        return self.next_attempt

    def reset(self) -> None:
        """A success: the next failure starts from `initial` again, and may retry at once."""
        self.delay = self.initial
        self.next_attempt = 0.0
