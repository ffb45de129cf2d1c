"""Live state of sending alerts in Redis, cheap for the console and the API to read.

- The control key of an alert ("sending" | "paused" | "cancelled") is read by every sender
  before each block of messages, so pause and cancel take effect within a second.
- Counters per alert and carrier (one hash each) mirror the deliveries' states; senders move
  them with pipelined HINCRBY as they write the database. When Redis has lost them (flush,
  restart) the next read rebuilds them from the database with one GROUP BY: Redis is never
  the only copy of anything.
- `rate_now` comes from one-second buckets of submitted segments; the ETA
  (`broadcast.eta.remaining`) is the segments left over their smoothed recent rate.
- `rate_limit` is the rate the carrier's senders pace at now: its configured limit, or less
  while the SMSC pushes back (ESME_RTHROTTLED, ESME_RMSGQFUL; see workers/limiter.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcast import eta, keys
from broadcast.models import (
    FAILED_DELIVERY_STATES,
    Alert,
    AlertCarrier,
    AlertStatus,
    Carrier,
    Delivery,
    DeliveryState,
)

CONTROL_VALUES = ("sending", "paused", "cancelled")
STATES = tuple(s.value for s in DeliveryState)
FAILED_STATES = tuple(s.value for s in FAILED_DELIVERY_STATES)
# The progress columns of rows that are over (failed = FAILED_STATES).
FINAL_COLUMNS = ("delivered", "failed", "cancelled")
RATE_BUCKET_TTL = 15
CONTROL_FOR_STATUS = {
    AlertStatus.SENDING: "sending",
    AlertStatus.APPROVED: "sending",
    AlertStatus.PAUSED: "paused",
    AlertStatus.CANCELLED: "cancelled",
}


def set_control(connection: redis.Redis, alert_id: int, value: str) -> None:
    """Tell every worker to send, pause or cancel an alert (they look before each block)."""
    if value not in CONTROL_VALUES:
        raise ValueError(f"control must be one of {CONTROL_VALUES}, not {value!r}")
    connection.set(keys.alert_control_key(alert_id), value)


def get_control(connection: redis.Redis, alert_id: int) -> str | None:
    raw = connection.get(keys.alert_control_key(alert_id))
    return raw.decode() if isinstance(raw, bytes) else raw


def restore_control(connection: redis.Redis, alert_id: int, status: AlertStatus | str) -> None:
    """After Redis lost it: the control key from the database status, unless a newer one is
    already there (set by the console since)."""
    value = CONTROL_FOR_STATUS.get(AlertStatus(status))
    if value:
        connection.set(keys.alert_control_key(alert_id), value, nx=True)


def apply_transitions(
    connection: redis.Redis,
    moved: Mapping[tuple[int, str, str, str], int],
    *,
    submitted_segments: Mapping[tuple[int, str], int] | None = None,
) -> None:
    """Move counters (alert_id, carrier_code, from_state, to_state) -> n in one pipeline.

    from_state "new" means rows just written by the snapshot."""
    if not moved and not submitted_segments:
        return
    pipe = connection.pipeline(transaction=False)
    for (alert_id, carrier, before, after), n in moved.items():
        if not n:
            continue
        key = keys.alert_counters_key(alert_id, carrier)
        if before != "new":  # "new": rows just written by the snapshot
            pipe.hincrby(key, before, -n)
        pipe.hincrby(key, after, n)
    second = int(time.time())
    for (alert_id, carrier), n in (submitted_segments or {}).items():
        key = keys.alert_rate_key(alert_id, carrier, second)
        pipe.incrby(key, n)
        pipe.expire(key, RATE_BUCKET_TTL)
    pipe.execute()


def state_counts(session: Session, alert_id: int) -> dict[str, dict[str, int]]:
    """Deliveries of one alert per carrier code and state, from the database (one GROUP BY)."""
    rows = session.execute(
        select(Carrier.code, Delivery.state, func.count())
        .join(Carrier, Carrier.id == Delivery.carrier_id)
        .where(Delivery.alert_id == alert_id)
        .group_by(Carrier.code, Delivery.state)
    ).all()
    per: dict[str, dict[str, int]] = {}
    for code, state, n in rows:
        value = state.value if hasattr(state, "value") else str(state)
        per.setdefault(code, {})[value] = n
    return per


def rebuild_counters(connection: redis.Redis, session: Session, alert_id: int) -> None:
    """Counters of one alert from the database, written in one pipeline."""
    per: dict[str, dict[Any, int]] = {  # Any: redis-py types the keys as a wide union
        code: {**dict.fromkeys(STATES, 0), **counts}
        for code, counts in state_counts(session, alert_id).items()
    }
    pipe = connection.pipeline(transaction=True)
    for code, counts in per.items():
        key = keys.alert_counters_key(alert_id, code)
        pipe.delete(key)
        pipe.hset(key, mapping=counts)
    pipe.set(keys.alert_counters_built_key(alert_id), 1)
    pipe.execute()


def _final_counts(
    connection: redis.Redis, session: Session, alert_id: int
) -> dict[str, dict[str, int]]:
    """A completed alert's rows per carrier and state, from the database the first time
    (every row is final: they no longer change), then from Redis (keys.alert_final_counts_key,
    kept as long as the chart's series)."""
    key = keys.alert_final_counts_key(alert_id)
    cached = connection.get(key)
    if cached is not None:
        return dict(json.loads(cached))
    counts = state_counts(session, alert_id)
    connection.set(key, json.dumps(counts), ex=SERIES_TTL)
    return counts


def _carriers_of(connection: redis.Redis, session: Session, alert_id: int) -> list[str]:
    if not connection.exists(keys.alert_counters_built_key(alert_id)):
        rebuild_counters(connection, session, alert_id)
    return list(
        session.scalars(
            select(Carrier.code)
            .join(AlertCarrier, AlertCarrier.carrier_id == Carrier.id)
            .where(AlertCarrier.alert_id == alert_id)
            .order_by(Carrier.code)
        )
    )


def effective_rates(connection: redis.Redis, limits: Mapping[str, int]) -> dict[str, float]:
    """Per carrier, the segments per second its senders pace at now: the limit, unless the
    SMSC pushed back and the shared rate (workers.limiter) is still climbing back to it."""
    pipe = connection.pipeline(transaction=False)
    pipe.time()
    for code in limits:
        pipe.hmget(keys.rate_effective_key(code), "rate", "at", "increase")
    got = pipe.execute()
    seconds, micros = got[0]
    now = seconds * 1_000_000 + micros
    out: dict[str, float] = {}
    for code, (rate, at, increase) in zip(limits, got[1:], strict=True):
        limit = float(limits[code])
        if rate is None or at is None or increase is None:
            out[code] = limit
            continue
        climbed = float(rate) + float(increase) * (now - int(at))
        out[code] = round(min(limit, climbed), 1)
    return out


def alert_progress(
    connection: redis.Redis, session: Session, alert_id: int, limits: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """Per carrier: total, pending, queued, submitted, delivered, failed, cancelled, rate_now
    (segments/s over the last 3 s), rate_limit (what the senders pace at now) and
    eta_seconds (`eta.remaining`: None once nothing is left to send). `limits`: each
    carrier's contracted segments per second (`Settings.rate_limits`). A few Redis reads;
    the database only when Redis lost the counters."""
    carriers = _carriers_of(connection, session, alert_id)
    if not carriers:
        return {}
    now = int(time.time())
    pipe = connection.pipeline(transaction=False)
    for code in carriers:
        pipe.hgetall(keys.alert_counters_key(alert_id, code))
        pipe.mget([keys.alert_rate_key(alert_id, code, now - i) for i in range(1, eta.WINDOW + 1)])
    raw = pipe.execute()
    parts, status = session.execute(
        select(Alert.parts, Alert.status).where(Alert.id == alert_id)
    ).one()
    parts = parts or 1
    counted = [{k.decode(): int(v) for k, v in raw[2 * i].items()} for i in range(len(carriers))]
    if AlertStatus(status) == AlertStatus.COMPLETED:
        # The counters move after the rows they mirror are written, and whoever completes
        # the alert may do so between the two (reconcile completes, then recounts; one
        # sender's last move lags another's completion): a completed alert's figures come
        # from the database, which no longer changes, counted once.
        final = _final_counts(connection, session, alert_id)
        counted = [final.get(code, {}) for code in carriers]
    elif any(n < 0 for counts in counted for n in counts.values()):
        # A counter below zero disagrees with the database (a move applied twice, a flush
        # between two writers): recount, so the columns still add up to the total.
        rebuild_counters(connection, session, alert_id)
        pipe = connection.pipeline(transaction=False)
        for code in carriers:
            pipe.hgetall(keys.alert_counters_key(alert_id, code))
        counted = [{k.decode(): int(v) for k, v in got.items()} for got in pipe.execute()]
    paced = effective_rates(connection, {code: int(limits.get(code) or 0) for code in carriers})
    out: dict[str, dict[str, Any]] = {}
    for i, code in enumerate(carriers):
        buckets = [int(v) if v is not None else 0 for v in raw[2 * i + 1]]
        counts = {state: max(0, counted[i].get(state, 0)) for state in STATES}
        total = sum(counts.values())
        rate_now = sum(buckets[:3]) / 3.0
        left = counts["pending"] + counts["queued"]
        out[code] = {
            "total": total,
            "pending": counts["pending"],
            "queued": counts["queued"],
            "submitted": counts["submitted"],
            "delivered": counts["delivered"],
            "failed": sum(counts[s] for s in FAILED_STATES),
            "cancelled": counts["cancelled"],
            "rate_now": rate_now,
            "rate_limit": paced[code],
            "eta_seconds": eta.remaining(left, parts, buckets, paced[code]),
        }
    return out


# The watch page's chart history: one point a second at most, the last 30 minutes of them.
SERIES_POINTS = 1800
SERIES_TTL = 7 * 24 * 3600


def record_point(
    connection: redis.Redis, alert_id: int, *, at: float, rate: float, done: int
) -> None:
    """Add a point to the alert's progress series, once per second whoever polls."""
    second = int(at)
    if not connection.set(keys.alert_series_gate_key(alert_id, second), 1, nx=True, ex=5):
        return
    series = keys.alert_series_key(alert_id)
    pipe = connection.pipeline(transaction=False)
    pipe.rpush(series, json.dumps([round(at, 3), round(rate, 2), int(done)]))
    pipe.ltrim(series, -SERIES_POINTS, -1)
    pipe.expire(series, SERIES_TTL)
    pipe.execute()


def series(connection: redis.Redis, alert_id: int) -> list[dict[str, float]]:
    """The recorded points, oldest first: at (unix seconds), rate (messages/s), done."""
    points = []
    for raw in connection.lrange(keys.alert_series_key(alert_id), 0, -1):
        try:
            at, rate, done = json.loads(raw)
        except (ValueError, TypeError):
            continue
        points.append({"at": float(at), "rate": float(rate), "done": int(done)})
    return points


def alert_status_controls(session: Session) -> list[tuple[int, AlertStatus]]:
    return list(
        session.execute(
            select(Alert.id, Alert.status).where(Alert.status.in_(list(CONTROL_FOR_STATUS)))
        )
    )
