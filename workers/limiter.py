"""A rate limiter in Redis shared by every sender process of a carrier, on every host.

The ceiling is hard: over ANY window of `window` seconds (1 s plus a small margin for the
jitter between a grant and the message's arrival at the SMSC) the grants never add up to more
than the limit. The state is a log of grants (time, count) in one Redis list plus a running
sum; one Lua script trims the log, checks the sum and appends a grant, atomically, using the
Redis server's clock so that hosts with different clocks share one timeline. A GCRA term in the
same script spreads the grants evenly (at most one block ahead of the pace), so a window is
never spent in one burst at its start.

Tokens are charged per segment and taken in small blocks (a few per cent of the limit), so the
log stays short and a sender makes a handful of round trips per second, not one per message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from broadcast import keys

# KEYS[1] = log list, KEYS[2] = running sum, KEYS[3] = GCRA theoretical arrival time,
# KEYS[4] = epoch (when this Redis first served the limiter; never expires)
# ARGV: limit, window_us, want, unit, block   -> {granted, wait_us}
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
-- A Redis that lost the log (restarted without persistence, or flushed) cannot know what was
-- granted in the last window: it grants nothing until one whole window after it noticed.
local epoch = tonumber(redis.call('GET', KEYS[4]) or '-1')
if epoch < 0 then
  epoch = now
  if ARGV[6] == '1' then epoch = now - window end
  redis.call('SET', KEYS[4], string.format('%d', epoch))
end
if now < epoch + window then
  return {0, math.max(epoch + window - now, 1000)}
end
local want = tonumber(ARGV[3])
local unit = tonumber(ARGV[4])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head then used = 0 break end
  local sep = string.find(head, ':', 1, true)
  local at = tonumber(string.sub(head, 1, sep - 1))
  if at > now - window then break end
  used = used - tonumber(string.sub(head, sep + 1))
  redis.call('LPOP', KEYS[1])
end
if used < 0 then used = 0 end
local free = limit - used
local granted = 0
-- Smoothness (GCRA): at most one block ahead of an even pace of limit per window.
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
if tat < now then tat = now end
local early = tat - now - tonumber(ARGV[5]) * interval
if early > 0 then free = 0 end
if free >= unit then
  granted = math.min(want, free)
  granted = granted - (granted % unit)
end
if granted > 0 then
  redis.call('RPUSH', KEYS[1], now .. ':' .. granted)
  used = used + granted
  local ttl_ms = math.floor(window / 1000) + 1000
  redis.call('SET', KEYS[3], string.format('%d', tat + granted * interval), 'PX', ttl_ms)
end
redis.call('SET', KEYS[2], used)
local ttl = math.floor(window / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local wait = 0
if granted == 0 and early > 0 then
  wait = math.max(early, 1000)
elseif granted == 0 then
  -- the earliest time enough of the log has aged out to free one unit
  local need = unit - free
  local freed = 0
  local entries = redis.call('LRANGE', KEYS[1], 0, -1)
  wait = window
  for _, e in ipairs(entries) do
    local sep = string.find(e, ':', 1, true)
    freed = freed + tonumber(string.sub(e, sep + 1))
    if freed >= need then
      wait = tonumber(string.sub(e, 1, sep - 1)) + window - now
      break
    end
  end
  if wait < 1000 then wait = 1000 end
end
return {granted, wait}
"""


@dataclass(frozen=True)
class Grant:
    granted: int
    wait: float  # seconds to wait before asking again when nothing was granted


class RedisRateLimiter:
    """Segments per second for one carrier, shared by every process on every host."""

    def __init__(
        self,
        connection: redis.Redis,
        carrier_code: str,
        limit: int,
        *,
        window: float = 1.02,
        block: int | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 per second, not {limit!r}")
        if window < 1.0:
            raise ValueError(f"window must be at least 1 second, not {window!r}")
        self.connection = connection
        self.carrier_code = carrier_code
        self.limit = int(limit)
        self.window = window
        # Small blocks: a few per cent of the limit, so pacing is smooth and the log short.
        self.block = block or max(1, min(100, self.limit // 25))
        self._log_key = keys.rate_key(carrier_code)
        self._sum_key = keys.rate_key(carrier_code) + ":sum"
        self._tat_key = keys.rate_key(carrier_code) + ":tat"
        self._epoch_key = keys.rate_key(carrier_code) + ":epoch"
        self._script = connection.register_script(_SCRIPT)
        self.prime()

    def try_acquire(self, want: int, unit: int = 1) -> Grant:
        """Ask for up to `want` segments in multiples of `unit` (a message's parts)."""
        if unit < 1 or unit > self.limit:
            raise ValueError(
                f"a message of {unit} segments can never pass a limit of {self.limit}/s"
            )
        want = max(unit, min(want, self.limit))
        granted, wait_us = self._script(
            keys=[self._log_key, self._sum_key, self._tat_key, self._epoch_key],
            args=[
                self.limit,
                int(self.window * 1_000_000),
                want,
                unit,
                max(self.block, unit),
                "0",
            ],
        )
        return Grant(int(granted), int(wait_us) / 1_000_000)

    def prime(self) -> None:
        """Mark this Redis as serving the limiter, with nothing granted before (done when a
        sender starts, so the first alert does not wait a window). A Redis that later loses
        the mark, by a restart or a flush, makes every sender wait one window before its next
        grant, since what was granted just before is gone with the log."""
        self._script(
            keys=[self._log_key, self._sum_key, self._tat_key, self._epoch_key],
            args=[self.limit, int(self.window * 1_000_000), 0, 1, 1, "1"],
        )

    def acquire(
        self,
        want: int,
        unit: int = 1,
        *,
        deadline: float | None = None,
        should_stop: object = None,
    ) -> int:
        """Block until some segments (a multiple of `unit`, at most `want`) are granted.

        Returns 0 only if `deadline` (time.monotonic) passes first or `should_stop()` is true.
        """
        while True:
            grant = self.try_acquire(want, unit)
            if grant.granted:
                return grant.granted
            if callable(should_stop) and should_stop():
                return 0
            pause = min(grant.wait, 0.2)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return 0
                pause = min(pause, left)
            time.sleep(pause)

    def reset(self) -> None:
        self.connection.delete(self._log_key, self._sum_key, self._tat_key)
