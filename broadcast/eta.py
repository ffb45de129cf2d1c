"""The one estimate of the time an alert takes to send: the draft preview, the read-back and
the watch page (progress API) all use it.

Time = messages left × parts per message ÷ segments per second. Before sending (preview,
read-back) the rate is the carrier's limit; while sending it is the rate the carrier's
senders achieved recently, smoothed (an exponentially weighted mean of one-second buckets,
`smoothed_rate`), so a brief stall lowers it a little instead of sending the estimate to
hours; with nothing sent in the window it falls back to the rate the senders pace at (the
limit, or less while the SMSC pushes back). Once nothing is left there is no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# The weight of a one-second bucket halves every HALF_LIFE seconds back.
HALF_LIFE = 4.0
# One-second buckets read (broadcast.live keeps them RATE_BUCKET_TTL = 15 s).
WINDOW = 12


def smoothed_rate(buckets: Sequence[float], half_life: float = HALF_LIFE) -> float:
    """Segments per second from one-second buckets, newest first: an exponentially weighted
    mean from the newest bucket back to the oldest one that saw a send (seconds before
    sending started say nothing about its rate). 0.0 when none saw a send."""
    last = max((i for i, n in enumerate(buckets) if n > 0), default=-1)
    if last < 0:
        return 0.0
    decay = 0.5 ** (1 / half_life)
    weights = [decay**i for i in range(last + 1)]
    return sum(w * n for w, n in zip(weights, buckets, strict=False)) / sum(weights)


def seconds_to_send(messages: int, parts: int, rate: float) -> float:
    """`messages` of `parts` segments each at `rate` segments per second: 0.0 for nothing,
    infinite without a rate."""
    if messages <= 0:
        return 0.0
    if rate <= 0:
        return math.inf
    return messages * max(parts, 1) / rate


def slowest(counts: Mapping[str, int], parts: int, rates: Mapping[str, float]) -> float:
    """Carriers send in parallel, each at its own rate: the slowest one's time (a carrier
    with recipients and no rate makes it infinite)."""
    return max(
        (seconds_to_send(n, parts, rates.get(code, 0.0)) for code, n in counts.items()),
        default=0.0,
    )


def live_rate(buckets: Sequence[float], paced: float) -> float:
    """The rate to expect now: the smoothed recent rate, never above what the senders pace
    at (`paced`); `paced` itself when nothing was sent in the window."""
    recent = smoothed_rate(buckets)
    if recent <= 0:
        return paced
    return min(recent, paced) if paced > 0 else recent


def remaining(
    messages_left: int, parts: int, buckets: Sequence[float], paced: float
) -> float | None:
    """The watch page's estimate for one carrier: None once nothing is left (done) or when
    there is no rate at all."""
    if messages_left <= 0:
        return None
    seconds = seconds_to_send(messages_left, parts, live_rate(buckets, paced))
    return None if math.isinf(seconds) else seconds
