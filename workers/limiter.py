"""A rate limiter in Redis shared by every sender process of a carrier, on every host.

It hands out *slots*: planned send times, on the Redis server's clock, one per message (its
parts leave together at it: the later parts of a begun message cannot give their slot up, so
the message is the unit whose lateness the sender bounds). A sender puts each message on the
wire at its slot, never before it, and gives up a slot it reached too late (see
`workers.sender`), so the arrivals at the SMSC are the slots shifted by a small, bounded delay.

The hard rule is kept on a log of the slots handed out (a sorted set): no closed window of
`window` seconds holds more than the rate's segments (for messages of `unit` parts,
`floor(rate / unit)` messages). Arrivals delayed by between 0 and `window - 1` seconds then
put at most the limit in any sliding second at the SMSC. The margin costs `1 - 1 / window`
of the limit (2.0 % for the default 1.02 s, `delivery.jitter_margin`). The sender checks
its lateness just before the write, but a process descheduled between that check and the
write still sends late: such a message is told to the limiter with the time it was written,
and the log holds it there, so the slots granted from then on (those a window later, where
its lateness would have put one too many in a second) keep the rule against when it left.

Within that rule a pace (a GCRA whose state is the next planned slot) spaces messages evenly,
`window / floor(rate / unit)` apart, across every process and host. A slot not used (a
sender descheduled past it, or stopping) is handed back: it leaves the log and the pace
steps back over it; a pace that fell behind (slots handed back, a sender busy writing
instead of asking) catches up with slots half as far apart, by at most `credit` seconds, so
the time a busy machine takes from one sender is used after all, and never above the limit.

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
from collections.abc import Sequence
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

# KEYS: pace, epoch, effective, slots
# ARGV: limit, window_us, want, unit, horizon_us, prime, increase (segments/s per us),
#       credit_us, given up (space-separated slot members), written late (space-separated
#       member=us: slots whose message reached the wire later than the sender allows)
# -> {granted, wait_us, now_us, rate_milli, slot_us...} (one slot per message)
_ACQUIRE = (
    _EFFECTIVE
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local horizon = tonumber(ARGV[5])
local credit = tonumber(ARGV[8])
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
  return {0, math.max(epoch + window + horizon - now, 1000), now, rate_milli}
end
local want = tonumber(ARGV[3])
local unit = tonumber(ARGV[4])
-- The hard rule, on the log of slots: at most `cap` segments in any closed window of
-- `window` us. A message's parts share its slot, so it counts `unit` at once.
local units = math.max(1, math.floor(rate / unit + 1e-9))
local cap = units * unit
-- The pace: messages `interval` apart (strictly more than window / units); a pace that
-- fell behind (slots given up, a sender busy writing) catches up, `quick` apart, by at most
-- `credit` us; one that fell further behind (the carrier was idle) starts from now.
local interval = math.floor(window / units) + 1
local quick = math.floor(interval / 2) + 1
local pace = tonumber(redis.call('GET', KEYS[1]) or '0')
-- Slots a sender reached too late (or did not need) never reach the SMSC: no longer counted,
-- and the pace steps back over them, so the time they stood for is used after all.
for member in string.gmatch(ARGV[9], '%S+') do
  if redis.call('ZREM', KEYS[4], member) == 1 then
    local size = tonumber(string.match(member, ':(%d+)$'))
    pace = pace - math.floor(window / math.max(1, math.floor(rate / size + 1e-9))) - 1
  end
end
if pace < now - credit then pace = now end
-- A message that reached the wire late (its process descheduled between its last check and
-- the write) is logged when it was written: the slots granted from now on keep the rule
-- against that time, so its lateness is not carried into a second a window later.
-- Never later than now: a message cannot have left in the future, and a time from a wrong
-- clock must not hold every sender back.
for member, written in string.gmatch(ARGV[10], '(%S+)=(%d+)') do
  local slot = redis.call('ZSCORE', KEYS[4], member)
  local at = math.min(tonumber(written), now)
  if slot and at > tonumber(slot) then
    redis.call('ZADD', KEYS[4], at, member)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - window))
local n = math.floor(want / unit)
local times, sizes, inwin, head = {}, {}, 0, 1
local logged = redis.call('ZCARD', KEYS[4])
local at = math.max(now, pace)
-- A message has at most 255 parts: a log too short to fill the window even so (a carrier
-- without a real limit) is not read, only appended to.
if logged * 255 + n * unit > cap then
  local log = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
  for i = 1, #log, 2 do
    times[#times + 1] = tonumber(log[i + 1])
    sizes[#sizes + 1] = tonumber(string.match(log[i], ':(%d+)$'))
    inwin = inwin + sizes[#sizes]
  end
elseif logged > 0 then
  at = math.max(at, tonumber(redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')[2]) + quick)
end
if #times > 0 then at = math.max(at, times[#times] + quick) end
local slots = {}
while #slots < n do
  while head <= #times and times[head] + window < at do
    inwin = inwin - sizes[head]
    head = head + 1
  end
  while inwin + unit > cap do  -- the window is full: after its oldest slot leaves it
    at = math.max(at, times[head] + window + 1)
    inwin = inwin - sizes[head]
    head = head + 1
  end
  if at - now > horizon then break end
  slots[#slots + 1] = at
  times[#times + 1] = at
  sizes[#sizes + 1] = unit
  inwin = inwin + unit
  redis.call('ZADD', KEYS[4], at, string.format('%d:%d', at, unit))
  pace = math.max(pace, at - credit) + interval
  at = math.max(at + quick, pace)
end
if #slots > 0 or ARGV[9] ~= '' then
  local keep = math.floor((credit + window) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%d', pace), 'PX', keep)
end
redis.call('PEXPIRE', KEYS[4], math.floor((2 * window + horizon) / 1000) + 1000)
if #slots == 0 then
  return {0, math.max(at - now - horizon, 1000), now, rate_milli}
end
local answer = {#slots * unit, 0, now, rate_milli}
for i = 1, #slots do answer[#answer + 1] = slots[i] end
return answer
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
    """`granted` segments, messages of `unit` parts at `slots` (one per message, in
    microseconds on the Redis server's clock, `server_now` seconds when it answered); `wait`
    seconds before asking again when nothing was granted; `rate` the carrier's effective
    segments per second. A slot not used (reached too late, or not needed) is handed back
    with `slot_member` to a later call, so the next grants may use its room."""

    granted: int
    wait: float
    slots: tuple[int, ...] = ()
    server_now: float = 0.0
    rate: float = 0.0
    unit: int = 1

    def slot_member(self, slot: int) -> str:
        return f"{slot}:{self.unit}"


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
        horizon: float = 0.15,
        credit: float = 0.25,
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
        self.credit = credit
        self.decrease = decrease
        self.recovery = recovery
        # Small blocks: a few per cent of the limit, so a grant is never far ahead of the wire.
        self.block = block or max(1, min(100, self.limit // 25))
        self._keys = [
            keys.rate_pace_key(carrier_code),
            keys.rate_epoch_key(carrier_code),
            keys.rate_effective_key(carrier_code),
            keys.rate_slots_key(carrier_code),
        ]
        # segments/s gained per microsecond: from nothing back to the limit in `recovery` s.
        self._increase = self.limit / recovery / 1_000_000
        self._acquire = connection.register_script(_ACQUIRE)
        self._slow_down = connection.register_script(_SLOW_DOWN)
        self.prime()

    def _call(
        self,
        want: int,
        unit: int,
        prime: bool,
        given_up: Sequence[str] = (),
        late: Sequence[tuple[str, int]] = (),
    ) -> Grant:
        answer = self._acquire(
            keys=self._keys,
            args=[
                self.limit,
                int(self.window * 1_000_000),
                want,
                unit,
                int(self.horizon * 1_000_000),
                "1" if prime else "0",
                repr(self._increase),
                int(self.credit * 1_000_000),
                " ".join(given_up),
                " ".join(f"{member}={written}" for member, written in late),
            ],
        )
        granted, wait_us, now_us, rate_milli, *slots = answer
        return Grant(
            int(granted),
            int(wait_us) / 1_000_000,
            tuple(int(s) for s in slots),
            int(now_us) / 1_000_000,
            int(rate_milli) / 1000,
            unit,
        )

    def try_acquire(
        self,
        want: int,
        unit: int = 1,
        given_up: Sequence[str] = (),
        late: Sequence[tuple[str, int]] = (),
    ) -> Grant:
        """Ask for up to `want` segments in multiples of `unit` (a message's parts), handing
        back `given_up` slots (`Grant.slot_member`) that were not used, and telling of `late`
        ones: (slot member, microseconds on the Redis clock when its message was written)."""
        if unit < 1 or unit > self.limit:
            raise ValueError(
                f"a message of {unit} segments can never pass a limit of {self.limit}/s"
            )
        return self._call(max(unit, min(want, self.limit)), unit, False, given_up, late)

    def report(self, given_up: Sequence[str] = (), late: Sequence[tuple[str, int]] = ()) -> None:
        """Hand back and tell of slots without asking for more (a batch's end)."""
        if given_up or late:
            self._call(0, 1, False, given_up, late)

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
        self.connection.delete(self._keys[0], self._keys[2], self._keys[3])
