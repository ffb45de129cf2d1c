"""A rate limiter in Redis shared by every sender process of a carrier, on every host.

It hands out *slots*: planned send times, on the Redis server's clock, spaced evenly
`window / rate` apart across every process and host (a GCRA whose state is the time of the
next free slot). A sender puts each PDU on the wire at its own slot, never before it, and
drops a slot it reached too late (see `workers.sender`), so the arrivals at the SMSC are the
slots shifted by a small, bounded delay. The parts of a long message leave together at its
last slot (the later parts of a begun message cannot give their slot up, so the message is
the unit whose lateness the sender bounds); messages of `unit` parts are therefore spaced
`window / floor(rate / unit)` apart. With slots spaced `window / limit` apart, at most
`limit` slots fall in any `window`; arrivals delayed by between 0 and `window - 1` seconds
then put at most `limit` PDUs in any sliding second at the SMSC. The margin costs
`1 - 1 / window` of the limit (2.9 % for the default 1.03 s, `delivery.jitter_margin`).

Slots are granted at most `horizon` seconds ahead of now, in blocks of a few per cent of the
limit, so a sender makes a few dozen round trips a second and a grant is never far ahead of
the wire.

Adaptive throttling (AIMD): when the SMSC answers ESME_RTHROTTLED or ESME_RMSGQFUL, the sender
calls `slow_down`: the carrier's shared rate is multiplied by `decrease` (at most once per
window, however many processes report the same congestion) and creeps back to the limit by
`limit / recovery` segments per second every second. The state is a Redis hash next to the
pace key, read and advanced lazily by the same scripts, so every process and host sees one
rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from broadcast import keys

# The effective rate, advanced lazily: `rate` at `at` plus `increase` per microsecond since
# (broadcast.live.effective_rates reads the same hash for the progress API and /metrics).
_EFFECTIVE = """
local function effective(key, limit, increase, now)
  local eff = redis.call('HMGET', key, 'rate', 'at')
  if not eff[1] then return limit end
  local rate = tonumber(eff[1]) + increase * (now - tonumber(eff[2]))
  if rate >= limit then
    redis.call('DEL', key)
    return limit
  end
  return rate
end
"""

# KEYS: pace, epoch, effective
# ARGV: limit, window_us, want, unit, horizon_us, prime, increase (segments/s per us)
# -> {granted, wait_us, first_slot_us, interval_ns (per segment), now_us, rate_milli}
_ACQUIRE = (
    _EFFECTIVE
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local horizon = tonumber(ARGV[5])
local rate = effective(KEYS[3], limit, tonumber(ARGV[7]), now)
local rate_milli = math.floor(rate * 1000)
-- A Redis that lost the pace (restarted without persistence, or flushed) cannot know which
-- slots were handed out: it grants nothing until every one of them is a window in the past.
local epoch = tonumber(redis.call('GET', KEYS[2]) or '-1')
if epoch < 0 then
  epoch = now
  if ARGV[6] == '1' then epoch = now - window - horizon end
  redis.call('SET', KEYS[2], string.format('%d', epoch))
end
if now < epoch + window + horizon then
  return {0, math.max(epoch + window + horizon - now, 1000), 0, 0, now, rate_milli}
end
local want = tonumber(ARGV[3])
-- A message of `unit` segments is one unit; strictly more than window / units apart, where
-- units = messages of that length that fit the rate: never more than the rate in one closed
-- window, even when a message's parts leave together (see workers.sender).
local unit = tonumber(ARGV[4])
local units = math.max(1, math.floor(rate / unit + 1e-9))
local interval = math.floor(window / units) + 1
local pace = tonumber(redis.call('GET', KEYS[1]) or '0')
if pace < now then pace = now end
if pace - now > horizon then
  return {0, math.max(pace - now - horizon, 1000), 0, 0, now, rate_milli}
end
local granted = want - (want % unit)
if granted <= 0 then
  return {0, 1000, 0, 0, now, rate_milli}
end
local after = pace + (granted / unit) * interval
redis.call('SET', KEYS[1], string.format('%d', after), 'PX',
           math.floor((after - now + window) / 1000) + 1000)
-- the interval per segment, in nanoseconds: a message's parts share its unit's interval
return {granted, 0, pace, math.floor(interval * 1000 / unit), now, rate_milli}
"""
)

# KEYS: effective
# ARGV: limit, decrease, increase (segments/s per us), floor, cooldown_us -> {cut, rate_milli}
_SLOW_DOWN = (
    _EFFECTIVE
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local increase = tonumber(ARGV[3])
local rate = effective(KEYS[1], limit, increase, now)
local cut_at = tonumber(redis.call('HGET', KEYS[1], 'cut_at') or '0')
if now - cut_at < tonumber(ARGV[5]) then
  return {0, math.floor(rate * 1000)}
end
rate = math.max(tonumber(ARGV[4]), rate * tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'at', string.format('%d', now),
           'cut_at', string.format('%d', now), 'increase', ARGV[3])
-- Gone once the rate is back at the limit (absent means the limit).
redis.call('PEXPIRE', KEYS[1], math.floor((limit - rate) / increase / 1000) + 1000)
return {1, math.floor(rate * 1000)}
"""
)


@dataclass(frozen=True)
class Grant:
    """`granted` segments whose slots are `first_slot + i * interval` (seconds, on the Redis
    server's clock, `server_now` when it answered); `wait` seconds before asking again when
    nothing was granted; `rate` the carrier's effective segments per second. For messages of
    `unit` parts, `interval * unit` is the spacing of messages: `window` over the messages of
    that length that fit the rate (a limit of 25 takes 12 two-part messages a window)."""

    granted: int
    wait: float
    first_slot: float = 0.0
    interval: float = 0.0
    server_now: float = 0.0
    rate: float = 0.0


class RedisRateLimiter:
    """Segments per second for one carrier, shared by every process on every host."""

    def __init__(
        self,
        connection: redis.Redis,
        carrier_code: str,
        limit: int,
        *,
        window: float = 1.03,
        block: int | None = None,
        horizon: float = 0.15,
        decrease: float = 0.5,
        recovery: float = 60.0,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 per second, not {limit!r}")
        if window < 1.0:
            raise ValueError(f"window must be at least 1 second, not {window!r}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be between 0 and 1, not {decrease!r}")
        if recovery <= 0:
            raise ValueError(f"recovery must be positive, not {recovery!r}")
        self.connection = connection
        self.carrier_code = carrier_code
        self.limit = int(limit)
        self.window = window
        self.horizon = horizon
        self.decrease = decrease
        self.recovery = recovery
        # Small blocks: a few per cent of the limit, so a grant is never far ahead of the wire.
        self.block = block or max(1, min(100, self.limit // 25))
        self._keys = [
            keys.rate_pace_key(carrier_code),
            keys.rate_epoch_key(carrier_code),
            keys.rate_effective_key(carrier_code),
        ]
        # segments/s gained per microsecond: from nothing back to the limit in `recovery` s.
        self._increase = self.limit / recovery / 1_000_000
        self._acquire = connection.register_script(_ACQUIRE)
        self._slow_down = connection.register_script(_SLOW_DOWN)
        self.prime()

    def _call(self, want: int, unit: int, prime: bool) -> Grant:
        granted, wait_us, first_us, interval_ns, now_us, rate_milli = self._acquire(
            keys=self._keys,
            args=[
                self.limit,
                int(self.window * 1_000_000),
                want,
                unit,
                int(self.horizon * 1_000_000),
                "1" if prime else "0",
                repr(self._increase),
            ],
        )
        return Grant(
            int(granted),
            int(wait_us) / 1_000_000,
            int(first_us) / 1_000_000,
            int(interval_ns) / 1_000_000_000,
            int(now_us) / 1_000_000,
            int(rate_milli) / 1000,
        )

    def try_acquire(self, want: int, unit: int = 1) -> Grant:
        """Ask for up to `want` segments in multiples of `unit` (a message's parts)."""
        if unit < 1 or unit > self.limit:
            raise ValueError(
                f"a message of {unit} segments can never pass a limit of {self.limit}/s"
            )
        return self._call(max(unit, min(want, self.limit)), unit, False)

    def prime(self) -> None:
        """Mark this Redis as serving the limiter, with nothing granted before (done when a
        sender starts, so the first alert does not wait a window). A Redis that later loses
        the mark, by a restart or a flush, makes every sender wait one window (plus the
        horizon) before its next grant, since the slots handed out just before are gone."""
        self._call(0, 1, True)

    def slow_down(self) -> float:
        """The SMSC said it is congested: cut the carrier's shared rate (at most once per
        window, whoever reports it). Returns the effective rate now."""
        _, rate_milli = self._slow_down(
            keys=[self._keys[2]],
            args=[
                self.limit,
                repr(self.decrease),
                repr(self._increase),
                1,
                int(self.window * 1_000_000),
            ],
        )
        return int(rate_milli) / 1000

    def acquire(
        self,
        want: int,
        unit: int = 1,
        *,
        deadline: float | None = None,
        should_stop: object = None,
    ) -> Grant:
        """Block until some segments (a multiple of `unit`, at most `want`) are granted.

        Returns a grant of 0 only if `deadline` (time.monotonic) passes first or
        `should_stop()` is true.
        """
        while True:
            grant = self.try_acquire(want, unit)
            if grant.granted:
                return grant
            if callable(should_stop) and should_stop():
                return grant
            pause = min(grant.wait, 0.2)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return grant
                pause = min(pause, left)
            time.sleep(pause)

    def reset(self) -> None:
        self.connection.delete(self._keys[0], self._keys[2])
