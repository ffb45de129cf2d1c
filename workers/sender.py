"""The long-lived sender process of one carrier.

A `CarrierSender` holds its SMPP binds open across jobs (no fork per job) and sends one batch
at a time: it claims the batch's rows with a lease, paces with the shared `RedisRateLimiter`
(charged per segment, tokens in small blocks), keeps a window of submit_sm outstanding per
bind, and writes outcomes and receipts in bulk every few hundred messages or quarter second.

Before each block it reads the alert's control key (pause, cancel) and, for a normal batch,
whether an emergency batch is waiting on the carrier: then it gives its unsent rows back,
re-queues itself at the front of its queue and returns, so the emergency goes next.

The database going away (a restart, a failover) pauses sending, it loses nothing: every
database call of a sender goes through `CarrierSender.written`, which keeps the binds serviced
(receipts read and kept, keepalives answered) and tries again with backoff for up to
`DATABASE_WAIT` seconds; the outcomes and receipts not yet written stay in memory meanwhile.

The RQ worker processes that run it are in `workers.processes`.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from broadcast import keys, live, metrics, replies
from broadcast.deliveries import Claimed, Outcomes, ReceiptIn, utcnow
from smpp_gateway import smpptime
from smpp_gateway.backoff import Backoff
from smpp_gateway.client import (
    MobileMessage,
    OutboundMessage,
    OutcomeKind,
    SmppSession,
    SubmitOutcome,
)
from smpp_gateway.errors import GatewayError
from smpp_gateway.receipts import Receipt
from workers.limiter import Grant, RedisRateLimiter
from workers.queues import enqueue_batches
from workers.runtime import Runtime

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.1  # seconds between control/emergency checks while sending
FLUSH_INTERVAL = 0.25  # seconds between bulk writes of outcomes
# A batch whose only rows left wait longer than this for a retry (a transient failure's
# backoff, 2 s at first) gives them back, re-queued behind the carrier's other batches,
# instead of holding the sender idle: with 1 % of transient failures every batch of 500
# waited about 2 s for its last few rows, and one sender at 1,250/s averaged under 300/s.
# Only a batch that sent something does, so batches holding nothing but retries (an alert's
# tail) do not pass each other round the queue; claimed again, a row keeps its backoff.
RETRY_HANDBACK = 0.5
# A PDU leaves at its slot (see workers/limiter.py) or at most this share of the jitter
# margin later; a slot reached later than that (the process was descheduled) is given up and
# the message waits for a new one. The rest of the margin is for the way to the SMSC.
SLOT_LATENESS_SHARE = 1 / 2
# A round trip to the database (bulk write, lease renewal) is started only when the next slot
# is this long plus the last write's duration away (or with no slot held), one to Redis
# (control check, the next grant) only when it is REDIS_CLEARANCE away, so the PDUs wait for
# no one. The next grant is asked for while the last slot held is still ahead, so one
# sender's slots follow each other with no gap for the round trip, yet a sender holds little
# more than one block: the slots a descheduled sender holds are lost to every sender.
SLOT_CLEARANCE = 0.006
REDIS_CLEARANCE = 0.002
# Seconds a sender waits for the database to come back before a write gives up (the job then
# fails, its rows keep their lease and reconcile re-queues them).
DATABASE_WAIT = 120.0

T = TypeVar("T")


class ServerClock:
    """Maps the Redis server's clock (where the limiter's slots live) onto time.monotonic(),
    so a host whose clock differs still sends at the slot. The offset comes from the answer
    with the shortest round trip (its error is half that trip), refreshed every few seconds
    by an answer about as quick."""

    REFRESH = 5.0
    GOOD_TRIP = 0.001

    def __init__(self) -> None:
        self.offset = 0.0
        self._trip = float("inf")
        self._measured = float("-inf")

    def observe(self, sent: float, received: float, server_now: float) -> None:
        trip = received - sent
        # A slow answer (a loaded machine) would move the offset by half its trip and shift
        # every later slot: after REFRESH s only a trip near the best one replaces it.
        stale = received - self._measured > self.REFRESH
        if trip <= self._trip or (stale and trip <= max(2 * self._trip, self.GOOD_TRIP)):
            self.offset = server_now - (sent + received) / 2
            self._trip = trip
            self._measured = received

    def local(self, server_time: float) -> float:
        return server_time - self.offset

    def server(self, local_time: float) -> float:
        return local_time + self.offset


class CarrierSender:
    """Binds to one carrier and sends batches of any alert through them."""

    def __init__(self, runtime: Runtime, carrier_code: str, *, flush_size: int = 500) -> None:
        self.runtime = runtime
        self.carrier = runtime.settings.carrier(carrier_code)
        self.code = carrier_code
        ids = runtime.store.carrier_ids()
        if carrier_code not in ids:
            raise GatewayError(f"carrier {carrier_code!r} is not in the database (run loa init)")
        self.carrier_id = ids[carrier_code]
        self._codes = {v: k for k, v in ids.items()}
        self.gateway = self.carrier.gateway
        self._replies: list[MobileMessage] = []  # people's replies, stored with the receipts
        self.sessions = [
            SmppSession(
                self.gateway,
                on_receipt=self._on_receipt,
                on_message=self._replies.append,
                name=f"{carrier_code}-{i}",
            )
            for i in range(self.carrier.binds)
        ]
        delivery = runtime.settings.delivery
        self.limiter = RedisRateLimiter(
            runtime.redis,
            carrier_code,
            self.carrier.mps,
            window=1.0 + delivery.jitter_margin,
            credit=delivery.catch_up_seconds,
            decrease=delivery.throttle_decrease,
            recovery=delivery.throttle_recovery_seconds,
        )
        self.clock = ServerClock()
        self.lateness = delivery.jitter_margin * SLOT_LATENESS_SHARE
        self.flush_size = flush_size
        self._receipts: list[ReceiptIn] = []
        self._receipts_at = 0.0
        self._open_alerts: set[int] = set()
        self._open_checked = 0.0
        self.stats: Counter[str] = Counter()
        self.stop_requested = False
        self._given_up: list[str] = []  # slots not used, handed back with the next ask
        # Slots whose message was written later than `lateness` allows, with the Redis-clock
        # microseconds it was written at: told to the limiter with the next ask.
        self._late: list[tuple[str, int]] = []

    # -- the database, which may go away ----------------------------------------------------

    def written(self, call: Callable[[], T]) -> T:
        """`call()` (one transaction); while the database is unreachable (a connection error,
        a session cut by a restart), service the binds and try again with backoff, for up to
        DATABASE_WAIT s. The pool's pre-ping then hands out fresh connections."""
        backoff = Backoff(initial=0.05, maximum=1.0)
        deadline, warned = time.monotonic() + DATABASE_WAIT, False
        while True:
            try:
                return call()
            except DBAPIError as exc:
                lost = exc.connection_invalidated or isinstance(exc, OperationalError)
                if not lost or time.monotonic() > deadline:
                    raise
                if not warned:
                    log.warning("%s: the database is unreachable, waiting (%s)", self.code,
                                str(exc.orig).splitlines()[0] if exc.orig else exc)  # fmt: skip
                    warned = True
                metrics.ERRORS.labels(self.code, "database").inc()
                now = time.monotonic()
                self.poll(max(backoff.failed(now) - now, 0.0))

    # -- binds ------------------------------------------------------------------------------

    def open(self) -> None:
        for session in self.sessions:
            session.connect()
        metrics.BIND_STATE.labels(self.code).set(len(self.sessions))

    def close(self, receipt_grace: float = 3.0) -> None:
        """Wait for what is on the wire, then for the receipts still coming (until none came
        for a moment, at most `receipt_grace` s: after the unbind the SMSC has nowhere to send
        them), write them and unbind."""
        for session in self.sessions:
            try:
                session.flush(5)
            except GatewayError:
                log.warning("flushing %s failed", session.name, exc_info=True)
        end = time.monotonic() + receipt_grace
        while time.monotonic() < end and time.monotonic() - self._receipts_at < 0.3:
            self.poll(0.05)
        for session in self.sessions:
            try:
                session.close()
            except GatewayError:
                log.warning("closing %s failed", session.name, exc_info=True)
        self.flush_receipts()
        metrics.BIND_STATE.labels(self.code).set(0)

    def _on_receipt(self, receipt: Receipt) -> None:
        self._receipts.append(
            ReceiptIn(receipt.message_id, receipt.state.value, receipt.error_code,
                      receipt.done_at)
        )  # fmt: skip
        self._receipts_at = time.monotonic()

    def poll(self, seconds: float) -> None:
        """Service every bind for about `seconds` (responses, receipts, keepalive)."""
        per = max(0.0, seconds / len(self.sessions))
        for session in self.sessions:
            try:
                session.poll(per)
            except GatewayError:
                log.warning("bind %s is down", session.name, exc_info=True)
                metrics.ERRORS.labels(self.code, "link").inc()

    def idle(self, seconds: float) -> None:
        """Between jobs: read receipts, write them, finish alerts whose rows are all final."""
        self.poll(seconds)
        self.flush_receipts()

    def flush_receipts(self, *, force_match: bool = False) -> None:
        store = self.runtime.store
        if self._replies:
            incoming = self._replies[:]
            self._replies.clear()  # in place: the sessions append to this very list

            def store_replies() -> None:
                with self.runtime.database.session() as session:
                    replies.store_replies(
                        session, self.carrier_id, incoming,
                        window_hours=self.runtime.settings.replies.window_hours,
                    )  # fmt: skip

            self.written(store_replies)
        received = self._receipts
        if received:
            self._receipts = []
            self.written(lambda: store.store_receipts(self.carrier_id, received))
            metrics.RECEIPTS.labels(self.code).inc(len(received))
        # Receipts that came before their submit response was stored are matched later.
        recent = time.monotonic() - self._receipts_at < 30
        if received or force_match or recent:
            moved = self.written(lambda: store.match_receipts(self.carrier_id))
            self._apply(moved)
            for alert_id in {a for a, *_ in moved}:
                self._open_alerts.add(alert_id)
        if not force_match and time.monotonic() - self._open_checked < 0.5:
            return
        self._open_checked = time.monotonic()
        for alert_id in list(self._open_alerts):
            if not self.written(partial(store.has_open, alert_id)):
                self._open_alerts.discard(alert_id)
                self.written(partial(store.complete_if_done, alert_id))

    def _apply(self, moved: Counter, segments: int = 0, alert_id: int | None = None) -> None:
        named: Counter[tuple[int, str, str, str]] = Counter()
        for (a, cid, before, after), n in moved.items():
            named[(a, self._codes.get(cid, str(cid)), before, after)] += n
        seg = {(alert_id, self.code): segments} if segments and alert_id is not None else None
        live.apply_transitions(self.runtime.redis, named, submitted_segments=seg)

    # -- one batch --------------------------------------------------------------------------

    def _expire(self, alert_id: int) -> None:
        """Past its expiry nothing more is sent: open rows become expired."""
        rt = self.runtime
        self.written(rt.store.expire_overdue)

        def rebuild() -> None:
            with rt.database.session() as session:
                live.rebuild_counters(rt.redis, session, alert_id)

        self.written(rebuild)
        self._open_alerts.add(alert_id)
        self.flush_receipts()

    def _control(self, alert_id: int, status: str, priority: str) -> str:
        pipe = self.runtime.redis.pipeline(transaction=False)
        pipe.get(keys.alert_control_key(alert_id))
        if priority != "emergency":
            pipe.llen(keys.rq_queue_key(keys.send_queue(self.code, "emergency")))
        got = pipe.execute()
        control = got[0].decode() if got[0] is not None else None
        if control is None:  # Redis lost it: the database says
            live.restore_control(self.runtime.redis, alert_id, status)
            control = live.get_control(self.runtime.redis, alert_id) or "sending"
        if control != "sending":
            return control
        if priority != "emergency" and got[1]:
            return "yield"
        return "sending"

    def _queue_has_work(self, priority: str) -> bool:
        """Other batches wait on this carrier's queue of the alert's priority."""
        queue = keys.rq_queue_key(keys.send_queue(self.code, priority))
        return bool(self.runtime.redis.llen(queue))

    def _room(self, parts: int) -> int:
        """Messages of `parts` segments the binds can put on the wire now (window not full,
        not backing off from ESME_RTHROTTLED)."""
        now = time.monotonic()
        return sum(
            (s.config.window - s.outstanding) // parts
            for s in self.sessions
            if s.connected and s.throttled_until <= now
        )

    def _roomiest(self, parts: int) -> SmppSession | None:
        """The bind with the most room that can send a message of `parts` PDUs now, in one
        write (None when every one is full, down or backing off). Answers waiting to be read
        are read first when no bind has room: a message whose parts waited for room would
        leave after its slot."""
        for attempt in range(2):
            now = time.monotonic()
            ready = [
                s
                for s in self.sessions
                if s.connected
                and s.throttled_until <= now
                and s.config.window - s.outstanding >= parts
            ]
            if ready or attempt:
                return max(ready, key=lambda s: s.config.window - s.outstanding, default=None)
            for session in self.sessions:
                session.poll(0.0)
        return None

    def _slots(self, want: int, parts: int) -> tuple[Grant, list[tuple[list[float], str]]]:
        """Ask the shared limiter for slots, handing back those given up since the last ask;
        each granted message gets one time.monotonic() per part, the times its PDUs may
        leave, and its slot's name (to hand it back if it is not used)."""
        given_up, late = self._take_reports()
        sent = time.monotonic()
        grant = self.limiter.try_acquire(want, parts, given_up, late)
        received = time.monotonic()
        self.clock.observe(sent, received, grant.server_now)
        metrics.RATE_LIMIT.labels(self.code).set(grant.rate)
        # Every part of a message at its slot: a begun message cannot give up a later part's
        # slot, so parts paced apart made the one unbounded lateness (a process descheduled
        # between two parts); the limiter counts a message's parts at its one slot.
        slots = [
            ([self.clock.local(slot / 1_000_000)] * parts, grant.slot_member(slot))
            for slot in grant.slots
        ]
        return grant, slots

    def _take_reports(self) -> tuple[list[str], list[tuple[str, int]]]:
        """What the next call to the limiter tells it: the slots given up since the last call
        and those written late."""
        given_up, self._given_up = self._given_up, []
        late, self._late = self._late, []
        return given_up, late

    def _report_slots(self) -> None:
        """Hand back the slots given up and tell of those written late, asking for none."""
        self.limiter.report(*self._take_reports())

    def send_batch(self, alert_id: int, batch_no: int) -> dict[str, Any]:
        rt = self.runtime
        store = rt.store
        settings = rt.settings.delivery
        rt.redis.hdel(keys.alert_batches_key(alert_id), f"{self.code}:{batch_no}")
        message = self.written(lambda: store.alert_message(alert_id))
        if message is None:
            return {"result": "no such alert"}
        priority = message.priority
        control = self._control(alert_id, message.status, "emergency")
        if control == "cancelled":
            self._apply(self.written(lambda: store.cancel_unsent(alert_id)))
            self._open_alerts.add(alert_id)
            self.flush_receipts()
            return {"result": "cancelled"}
        if control == "paused":
            return {"result": "paused"}
        expires = message.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)  # SQLite returns naive UTC
        if expires is not None and expires <= utcnow():
            self._expire(alert_id)
            return {"result": "expired"}
        # The SMSC is told the alert's expiry, so nothing reaches a phone after it.
        validity = smpptime.absolute(expires) if expires is not None else ""
        claim = self.written(lambda: store.claim(alert_id, self.carrier_id, batch_no))
        if claim.reclaimed:
            # Rows a dead sender held: some may have reached the SMSC already.
            self.stats["reclaimed"] += claim.reclaimed
            metrics.RESENT.labels(self.code).inc(claim.reclaimed)
            counters = keys.alert_counters_key(alert_id, self.code)
            rt.redis.hincrby(counters, "resent", claim.reclaimed)
        if not claim.rows:
            self._open_alerts.add(alert_id)
            self.flush_receipts()
            return {"result": "nothing to send"}
        self._open_alerts.add(alert_id)
        parts = self.sessions[0].segments(message.text)
        if parts > self.limiter.limit:
            failed = Outcomes(failed=[(r.id, f"{parts} parts exceed the carrier limit of "
                                       f"{self.limiter.limit}/s") for r in claim.rows])  # fmt: skip
            self._apply(self.written(lambda: store.record(alert_id, self.carrier_id, failed)))
            return {"result": "too long"}

        todo: deque[Claimed] = deque()
        attempts = {r.id: r.attempts for r in claim.rows}
        # Rows waiting for a retry: (time.monotonic() when due, id, row), a heap.
        retry: list[tuple[float, int, Claimed]] = []
        claimed_at, claimed_mono = utcnow(), time.monotonic()
        for row in claim.rows:
            due = row.next_attempt_at
            if due is not None and due.tzinfo is None:
                due = due.replace(tzinfo=UTC)  # SQLite returns naive UTC
            if due is not None and due > claimed_at:  # still in its backoff
                wait = (due - claimed_at).total_seconds()
                heapq.heappush(retry, (claimed_mono + wait, row.id, row))
            else:
                todo.append(row)
        inflight: dict[int, Claimed] = {}
        # Messages holding slots, in slot order: the time.monotonic() of each part's slot, and
        # the slot's name in the limiter.
        slotted: deque[tuple[list[float], str, Claimed]] = deque()
        outcomes = Outcomes()
        block = max(1, min(self.limiter.block, self.carrier.window * len(self.sessions)))
        seen = {"sent": 0}
        segments_since_flush = 0
        stop = ""
        written_late = 0  # messages that left later than `lateness` after their slot
        last_check = last_queue_check = 0.0
        last_flush = last_renew = time.monotonic()
        flush_wanted = False
        flush_cost = 0.0  # seconds the last bulk write took
        ask_after = 0.0  # time.monotonic() before which the limiter said to wait

        def handle(outcome: SubmitOutcome) -> None:
            row = inflight.pop(outcome.key, None)
            if row is None:
                return
            if outcome.kind is OutcomeKind.ACCEPTED:
                outcomes.accepted.append((row.id, outcome.message_ids))
                return
            if outcome.slows_down:
                # The SMSC cannot take the contracted rate now: every sender slows down.
                metrics.RATE_LIMIT.labels(self.code).set(self.limiter.slow_down())
            attempts[row.id] += 1
            error = outcome.error or "unknown error"
            metrics.ERRORS.labels(self.code, outcome.kind.value).inc()
            if outcome.kind is OutcomeKind.PERMANENT:
                outcomes.failed.append((row.id, error))
            elif attempts[row.id] >= settings.max_attempts:
                outcomes.failed.append((row.id, f"gave up after {attempts[row.id]} attempts: "
                                        f"{error}"))  # fmt: skip
            else:
                delay = min(
                    settings.retry_backoff_initial * 2 ** (attempts[row.id] - 1),
                    settings.retry_backoff_max,
                )
                due = time.monotonic() + delay
                outcomes.retry.append((row.id, error, utcnow() + timedelta(seconds=delay)))
                heapq.heappush(retry, (due, row.id, row))

        def flush() -> None:
            nonlocal outcomes, segments_since_flush, last_flush, flush_cost
            started = time.monotonic()
            if outcomes:
                moved = self.written(lambda: store.record(alert_id, self.carrier_id, outcomes))
                self._apply(moved, segments_since_flush, alert_id)
                metrics.SUBMITTED.labels(self.code).inc(len(outcomes.accepted))
                outcomes = Outcomes()
                segments_since_flush = 0
            self.flush_receipts()
            last_flush = time.monotonic()
            flush_cost = last_flush - started

        try:
            while todo or retry or inflight or slotted:
                now = time.monotonic()
                while retry and retry[0][0] <= now:
                    todo.append(heapq.heappop(retry)[2])
                if (todo or slotted) and expires is not None and expires <= utcnow():
                    # Checked before every grant and every slot: nothing leaves after expiry.
                    stop = "expired"
                    break
                if (
                    retry
                    and seen["sent"]  # a batch claimed again with only retries waits for them
                    and not (todo or slotted or inflight)
                    and retry[0][0] - now > RETRY_HANDBACK
                    and now - last_queue_check >= CHECK_INTERVAL
                ):
                    last_queue_check = now
                    if self._queue_has_work(priority):
                        stop = "retry later"
                        break
                ahead = slotted[0][0][0] - now if slotted else float("inf")
                clear = ahead > REDIS_CLEARANCE
                if (todo or retry or slotted) and clear and now - last_check >= CHECK_INTERVAL:
                    last_check = now
                    control = self._control(alert_id, message.status, priority)
                    if control != "sending" or self.stop_requested:
                        stop = control if control != "sending" else "stopping"
                        break
                if slotted and slotted[0][0][0] <= now:
                    # Each message leaves at its own slot, never in a burst with the block.
                    times, member, row = slotted.popleft()
                    session = self._roomiest(parts)
                    # Too late for its slot (checked here and again just before the wire):
                    # sent now it could share a second with later slots. The slot is handed
                    # back (the limiter lets the pace catch up); the message waits for a new one.
                    if session is None or not session.submit(
                        OutboundMessage(
                            row.id,
                            row.msisdn,
                            message.text,
                            message.source,
                            validity_period=validity,
                        ),
                        at=times,
                        late_after=times[0] + self.lateness,
                    ):
                        self.stats["late"] += 1
                        metrics.SLOTS_GIVEN_UP.labels(self.code).inc(len(times))
                        self._given_up.append(member)
                        todo.appendleft(row)
                    else:
                        written = time.monotonic()
                        if written - times[0] > self.lateness:
                            # Descheduled between the last check and the write: the limiter
                            # logs the message when it left, not at its slot.
                            written_late += 1
                            metrics.WRITTEN_LATE.labels(self.code).inc(len(times))
                            self._late.append((member, int(self.clock.server(written) * 1_000_000)))
                        inflight[row.id] = row
                        seen["sent"] += 1
                        segments_since_flush += parts
                elif (
                    todo
                    and clear
                    and not flush_wanted
                    and len(slotted) <= 1
                    and now >= ask_after
                    and (room := self._room(parts) - len(slotted)) > 0
                ):
                    want = min(block, len(todo), room) * parts
                    grant, granted = self._slots(want, parts)
                    for times, member in granted:
                        slotted.append((times, member, todo.popleft()))
                    if not grant.granted:
                        ask_after = time.monotonic() + min(grant.wait, 0.05)
                        nap = grant.wait
                        if slotted:
                            nap = min(nap, slotted[0][0][0] - time.monotonic())
                        self.poll(max(0.0, min(nap, 0.02)))
                        last_check = 0.0 if grant.wait > CHECK_INTERVAL else last_check
                elif slotted:
                    self.poll(max(0.0, min(slotted[0][0][0] - time.monotonic(), 0.02)))
                elif todo and not flush_wanted:
                    self.poll(0.002)  # every window full: wait for responses
                elif inflight or flush_wanted:
                    self.poll(0.002 if flush_wanted else 0.005)
                else:
                    self.poll(min(0.05, max(0.0, retry[0][0] - now)))
                for session in self.sessions:
                    for outcome in session.collect():
                        handle(outcome)
                now = time.monotonic()
                if len(outcomes) >= self.flush_size or (
                    outcomes and now - last_flush >= FLUSH_INTERVAL
                ):
                    # Written between slots: no new slots are taken until the ones held are
                    # used, so a slow write never makes a PDU late.
                    flush_wanted = True
                ahead = slotted[0][0][0] - now if slotted else float("inf")
                db_clear = ahead > SLOT_CLEARANCE + flush_cost
                if flush_wanted and db_clear:
                    flush()
                    flush_wanted = False
                if db_clear and now - last_renew >= settings.lease_seconds / 3:
                    self.written(lambda: store.renew([*attempts]))
                    last_renew = now
            todo.extendleft(row for _, _, row in reversed(slotted))
            self._given_up += [member for _, member, _ in slotted]
            slotted.clear()
            if self._late:
                # Told now rather than with the next batch's first ask, which may come after
                # the slots a window later are granted.
                self._report_slots()
            if written_late:
                self.stats["written_late"] += written_late
                log.warning(
                    "%s: %d messages left more than %.0f ms after their slot (the process was "
                    "descheduled before the write; the limiter logs them when they left)",
                    self.code,
                    written_late,
                    1000 * self.lateness,
                )
            # Stopping early (or done): wait for what is on the wire, then account for it.
            for session in self.sessions:
                for outcome in session.flush(self.gateway.response_timeout):
                    handle(outcome)
            for row in list(inflight.values()):  # no answer at all: try again later
                outcomes.retry.append((row.id, "no response", utcnow()))
            flush()
        except GatewayError:
            # The link stayed down too long: keep what the SMSC accepted, give back what was
            # not sent (re-queued by reconcile); rows on the wire keep their lease.
            flush()
            unsent_rows = [r.id for r in todo] + [r.id for _, _, r in slotted]
            self.written(lambda: store.release(unsent_rows + [rid for _, rid, _ in retry]))
            raise
        unsent = [r.id for r in todo] + [rid for _, rid, _ in retry] + list(inflight)
        if stop == "cancelled":
            self._apply(self.written(lambda: store.cancel_unsent(alert_id, unsent)))
        elif stop == "expired":
            self.written(lambda: store.release(unsent))
            self._expire(alert_id)
        elif unsent:
            self.written(lambda: store.release(unsent))
            if stop in ("yield", "stopping", ""):
                enqueue_batches(rt, alert_id, priority, [(self.code, batch_no)], at_front=True)
            elif stop == "retry later":  # behind the batches waiting, not ahead of them
                enqueue_batches(rt, alert_id, priority, [(self.code, batch_no)])
        self.flush_receipts()
        return {"result": stop or "sent", "sent": seen["sent"], "reclaimed": claim.reclaimed}

    def drain(self, alert_id: int, timeout: float) -> bool:
        """Keep reading receipts until the alert has no open row (tests, `loa send`)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.idle(0.05)
            self.flush_receipts(force_match=True)
            if not self.runtime.store.has_open(alert_id):
                return True
        return False


_senders: dict[str, CarrierSender] = {}


def register(sender: CarrierSender) -> None:
    _senders[sender.code] = sender


def forget(carrier_code: str) -> None:
    _senders.pop(carrier_code, None)


def sender_for(runtime: Runtime, carrier_code: str) -> CarrierSender:
    """This process's sender for a carrier, opened on first use and kept across jobs."""
    sender = _senders.get(carrier_code)
    if sender is None:
        sender = CarrierSender(runtime, carrier_code)
        sender.open()
        _senders[carrier_code] = sender
    return sender
