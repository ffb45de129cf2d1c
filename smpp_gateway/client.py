"""A windowed SMPP 3.4 client session: one bind, one socket, owned by the caller's thread.

smpplib's own Client is stop-and-wait and not thread-safe; here smpplib only builds and parses
PDUs, and the session drives a non-blocking socket itself:

- up to `config.window` submit_sm outstanding, correlated with their responses by sequence
  number; `submit` only blocks (servicing the socket) while the window is full or the session
  is slowed down by throttling;
- every read takes all the bytes the socket has and handles every whole PDU in them;
- outcomes are values (`SubmitOutcome`), collected with `collect`/`flush`;
- deliver_sm is answered at once and turned into a `Receipt` for `on_receipt`, or, when it
  is not a receipt, into a `MobileMessage` (a subscriber's reply) for `on_message`;
- no response within `response_timeout`, or a lost link, makes a TRANSIENT outcome;
- after a lost link the next `submit`/`poll` reconnects with exponential backoff and jitter;
  `submit` keeps trying for at most `config.reconnect_timeout` seconds of downtime and then
  raises GatewayError (BindError at once if the SMSC refuses the credentials).
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from smpplib import consts, smpp

from smpp_gateway import codec
from smpp_gateway.backoff import Backoff
from smpp_gateway.codec import CODEC_CLIENT as _CODEC
from smpp_gateway.codec import DELIVER_SM as _DELIVER_SM
from smpp_gateway.codec import DELIVER_SM_RESP as _DELIVER_SM_RESP
from smpp_gateway.codec import ENQUIRE_LINK as _ENQUIRE_LINK
from smpp_gateway.codec import ENQUIRE_LINK_RESP as _ENQUIRE_LINK_RESP
from smpp_gateway.codec import GENERIC_NACK as _GENERIC_NACK
from smpp_gateway.codec import HEADER as _HEADER
from smpp_gateway.codec import MAX_SEQUENCE as _MAX_SEQ
from smpp_gateway.codec import SLOW_DOWN_STATUSES, TRANSIENT_STATUSES, status_text
from smpp_gateway.codec import SUBMIT_SM_RESP as _SUBMIT_SM_RESP
from smpp_gateway.codec import UNBIND as _UNBIND
from smpp_gateway.codec import UNBIND_RESP as _UNBIND_RESP
from smpp_gateway.config import GatewayConfig
from smpp_gateway.encoding import Part, segments, split, validate_source
from smpp_gateway.errors import BindError, GatewayError
from smpp_gateway.mobile import MobileMessage, mobile_message
from smpp_gateway.receipts import Receipt, ReceiptState, normalise_id, parse_receipt

__all__ = [
    "MobileMessage",
    "OutboundMessage",
    "OutcomeKind",
    "Receipt",
    "ReceiptState",
    "SmppSession",
    "SubmitOutcome",
]

_CACHE_SIZE = 256


class OutcomeKind(str, Enum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class OutboundMessage:
    key: int
    destination: str
    text: str
    source: str | None = None
    request_receipt: bool = True
    # SMPP time after which the SMSC must not deliver (`smpptime.absolute`); "" = its default.
    validity_period: str = ""


@dataclass(frozen=True)
class SubmitOutcome:
    """What became of one message (all its parts). `message_ids` are canonical (see receipts)."""

    key: int
    kind: OutcomeKind
    message_ids: tuple[str, ...]
    command_status: int | None
    error: str | None

    @property
    def slows_down(self) -> bool:
        """The SMSC cannot take the rate now (ESME_RTHROTTLED, ESME_RMSGQFUL)."""
        return self.command_status in SLOW_DOWN_STATUSES


class _Pending:
    """One message in flight: its parts' ids and the worst failure so far."""

    __slots__ = ("error", "finished", "ids", "key", "kind", "remaining", "status")

    def __init__(self, key: int, total: int) -> None:
        self.key = key
        self.ids: list[str | None] = [None] * total
        self.remaining = total
        self.kind = OutcomeKind.ACCEPTED
        self.status: int | None = None
        self.error: str | None = None
        self.finished = False

    def fail(self, kind: OutcomeKind, status: int | None, error: str, count: int = 1) -> None:
        if self.kind is not OutcomeKind.PERMANENT and (
            self.kind is OutcomeKind.ACCEPTED or kind is OutcomeKind.PERMANENT
        ):
            self.kind, self.status, self.error = kind, status, error
        self.remaining -= count

    def outcome(self) -> SubmitOutcome:
        self.finished = True
        ids = tuple(i for i in self.ids if i is not None)
        return SubmitOutcome(self.key, self.kind, ids, self.status, self.error)


class SmppSession:
    """One bind to one SMSC. Not thread-safe by design: the thread that calls it owns it."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        on_receipt: Callable[[Receipt], None] | None = None,
        on_message: Callable[[MobileMessage], None] | None = None,
        name: str = "",
    ) -> None:
        self.config = config
        self.name = name or f"{config.system_id}@{config.address}"
        self.on_receipt = on_receipt
        self.on_message = on_message
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._seq = 0
        # seq -> (pending message, part index, deadline, sent_at); dict order = send order.
        self._inflight: dict[int, tuple[_Pending, int, float, float]] = {}
        self._done: list[SubmitOutcome] = []
        self._reference = random.randrange(0x10000)
        self._throttle_delay = 0.0
        self._throttle_until = 0.0
        self._throttle_started = 0.0
        self._ever_connected = False
        self._closed = False
        self._down_since: float | None = None
        self._reconnect = Backoff(config.reconnect_initial, config.reconnect_max)
        self._last_error = ""
        self._last_activity = 0.0
        self._enquire_deadline: float | None = None
        self._unbind_acked = False
        self._valid_sources: set[str] = set()
        self._single_parts: dict[str, list[Part]] = {}
        self._templates: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
        self.stats = {"throttled": 0, "reconnects": 0, "timeouts": 0, "receipts": 0, "messages": 0}

    # -- public ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def outstanding(self) -> int:
        return len(self._inflight)

    @property
    def throttled_until(self) -> float:
        """time.monotonic() before which the session sends nothing (0 when not throttled)."""
        return self._throttle_until

    def segments(self, text: str) -> int:
        """Parts this text takes on this gateway (what a per-segment rate limit charges)."""
        return segments(text, concatenation=self.config.concatenation)

    def connect(self) -> None:
        """Open the socket and bind; BindError names host:port and the refusing status."""
        if self._sock is not None:
            return
        self._closed = False
        self._open()
        self._ever_connected = True

    def submit(
        self,
        message: OutboundMessage,
        *,
        at: Sequence[float] | None = None,
        late_after: float | None = None,
    ) -> bool:
        """Send one message (all its parts); returns once every part is on the wire.

        `at`: a time.monotonic() per part before which that part does not leave (the slots a
        rate limiter granted). `late_after`: a time.monotonic() past which the message is not
        begun, checked just before its first part is written (a process descheduled after
        the caller's own check would otherwise send late); then nothing is sent and the
        answer is False."""
        parts = self._prepare(message)
        if parts is None:
            return True
        if self.config.bind_mode == "receiver":
            raise GatewayError("a receiver bind cannot submit messages")
        pending = _Pending(message.key, len(parts))
        source = self.config.source_addr if message.source is None else message.source
        ton, npi = self._source_ton_npi(source)
        registered = 1 if message.request_receipt else 0
        validity = message.validity_period
        now = time.monotonic()
        if (
            at is not None
            and self._sock is not None
            and now >= self._throttle_until
            and len(self._inflight) + len(parts) <= self.config.window
            and max(at) <= now
        ):
            # Every part due and room for all: one write, so no part leaves later than the
            # first, and the last check of `late_after` is just before it.
            pdus = [
                self._part_pdu(part, message.destination, source, ton, npi, registered, validity)
                for part in parts
            ]
            now = time.monotonic()
            if late_after is not None and now > late_after:
                return False
            deadline = now + self.config.response_timeout
            for index, (seq, _) in enumerate(pdus):
                self._inflight[seq] = (pending, index, deadline, now)
            self._send(b"".join(data for _, data in pdus))
            return True
        for index, part in enumerate(parts):
            while True:
                if self._sock is None:
                    if index > 0:  # parts already sent went with the old link: give up
                        pending.fail(
                            OutcomeKind.TRANSIENT,
                            None,
                            "link lost before sending",
                            len(parts) - index,
                        )
                        if pending.remaining == 0:
                            self._done.append(pending.outcome())
                        return True
                    self._ensure_connected(None)
                now = time.monotonic()
                if now < self._throttle_until:
                    self._service(self._throttle_until - now)
                elif len(self._inflight) >= self.config.window:
                    self._service(self._next_deadline(now))
                elif at is not None and now < at[index]:
                    self._service(at[index] - now)
                else:
                    break
            if index == 0 and late_after is not None and time.monotonic() > late_after:
                return False
            self._send_part(
                pending, index, part, message.destination, source, ton, npi, registered, validity
            )
        return True

    def collect(self) -> list[SubmitOutcome]:
        """Outcomes completed since the last call; reads what has arrived without blocking."""
        if self._sock is not None:
            self._service(0.0)
        else:
            self._expire(time.monotonic())
        done, self._done = self._done, []
        return done

    def flush(self, timeout: float | None = None) -> list[SubmitOutcome]:
        """Wait until nothing is outstanding; what times out becomes TRANSIENT."""
        end = None if timeout is None else time.monotonic() + timeout
        while self._inflight:
            now = time.monotonic()
            if end is not None and now >= end:
                self._fail_inflight("no response before flush timed out")
                break
            wait = self._next_deadline(now)
            if end is not None:
                wait = min(wait, end - now)
            if self._sock is None:
                self._expire(now)
                break
            self._service(wait)
        return self.collect()

    def submit_many(self, messages: Iterable[OutboundMessage]) -> list[SubmitOutcome]:
        for message in messages:
            self.submit(message)
        return self.flush()

    def poll(self, timeout: float) -> None:
        """Service the link for `timeout` seconds: answer deliver_sm and enquire_link, read
        responses, keep the link alive, and reconnect if it was lost."""
        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self._sock is None and not self._closed and self._ever_connected:
                self._ensure_connected(end)
                now = time.monotonic()
            if now >= end:
                if self._sock is not None:
                    self._service(0.0)
                return
            if self._sock is None:
                time.sleep(end - now)
                continue
            self._service(min(end - now, self._next_deadline(now)))

    def close(self) -> None:
        """Unbind cleanly and close. Anything still outstanding becomes TRANSIENT (call flush
        first to wait for it); collect() returns those outcomes."""
        self._closed = True
        if self._sock is None:
            return
        try:
            self._unbind_acked = False
            self._send(self._pdu("unbind"))
            end = time.monotonic() + min(self.config.response_timeout, 5.0)
            while self._sock is not None and not self._unbind_acked:
                now = time.monotonic()
                if now >= end:
                    break
                self._service(end - now)
        finally:
            self._link_lost("session closed before the response")

    def __enter__(self) -> SmppSession:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building -------------------------------------------------------------------------------

    def _prepare(self, message: OutboundMessage) -> list[Part] | None:
        source = self.config.source_addr if message.source is None else message.source
        if source not in self._valid_sources:
            validate_source(source)
            self._valid_sources.add(source)
        # A batch sends one text to many numbers: a single-part split is reused as is (the
        # reference only matters for multipart, which is split afresh every time).
        parts = self._single_parts.get(message.text)
        if parts is None:
            self._reference = (self._reference + 1) & 0xFFFF
            parts = split(
                message.text,
                concatenation=self.config.concatenation,
                reference=self._reference,
                data_coding_gsm=self.config.data_coding_gsm,
            )
            if len(parts) == 1:
                if len(self._single_parts) >= _CACHE_SIZE:
                    self._single_parts.clear()
                self._single_parts[message.text] = parts
        dest = message.destination
        if not (dest.isascii() and dest.isdigit() and 0 < len(dest) <= 20):
            # One bad row must not stop a batch: a PERMANENT outcome, nothing sent.
            self._done.append(
                SubmitOutcome(
                    message.key,
                    OutcomeKind.PERMANENT,
                    (),
                    None,
                    f"invalid destination {dest!r}",
                )
            )
            return None
        return parts

    def _source_ton_npi(self, source: str) -> tuple[int, int]:
        if source.isdigit() and self.config.source_addr_ton == 5:
            return (1, 1) if len(source) >= 10 else (3, 0)
        return self.config.source_addr_ton, self.config.source_addr_npi

    def _next_seq(self) -> int:
        self._seq = 1 if self._seq >= _MAX_SEQ else self._seq + 1
        return self._seq

    def _pdu(self, command: str, **fields: object) -> bytes:
        return codec.make_pdu(command, self._next_seq(), **fields)

    def _send_part(
        self,
        pending: _Pending,
        index: int,
        part: Part,
        destination: str,
        source: str,
        ton: int,
        npi: int,
        registered: int,
        validity: str,
    ) -> None:
        seq, data = self._part_pdu(part, destination, source, ton, npi, registered, validity)
        now = time.monotonic()
        self._inflight[seq] = (pending, index, now + self.config.response_timeout, now)
        self._send(data)

    def _part_pdu(
        self,
        part: Part,
        destination: str,
        source: str,
        ton: int,
        npi: int,
        registered: int,
        validity: str,
    ) -> tuple[int, bytes]:
        """The submit_sm of one part, with a new sequence number."""
        key = (part, source, ton, npi, registered, validity)
        template = self._templates.get(key)
        if template is None:
            template = self._submit_template(part, source, ton, npi, registered, validity)
        seq = self._next_seq()
        return seq, codec.submit_sm(seq, template, destination.encode("ascii"))

    def _submit_template(
        self, part: Part, source: str, ton: int, npi: int, registered: int, validity: str
    ) -> tuple[bytes, bytes]:
        """The submit_sm template of one part from one sender (`codec.submit_template`),
        cached: each message then only splices in its destination and sequence number."""
        cfg = self.config
        template = codec.submit_template(
            part,
            source=source,
            ton=ton,
            npi=npi,
            dest_ton=cfg.dest_addr_ton,
            dest_npi=cfg.dest_addr_npi,
            registered=registered,
            validity=validity,
        )
        if len(self._templates) >= _CACHE_SIZE:
            self._templates.clear()
        self._templates[(part, source, ton, npi, registered, validity)] = template
        return template

    # -- socket ---------------------------------------------------------------------------------

    def _open(self) -> None:
        cfg = self.config
        try:
            sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.connect_timeout)
        except OSError as e:
            raise BindError(f"cannot connect to {cfg.address}: {e}") from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock = sock
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._inbuf.clear()
        self._outbuf.clear()
        self._enquire_deadline = None
        command = f"bind_{cfg.bind_mode}"
        self._send(
            self._pdu(
                command,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
            )
        )
        bind_seq = self._seq
        end = time.monotonic() + cfg.response_timeout
        while True:
            now = time.monotonic()
            if self._sock is None or now >= end:
                self._drop_socket()
                raise BindError(
                    f"no bind response from {cfg.address} within {cfg.response_timeout}s"
                )
            self._wait(end - now)
            if not self._read():
                self._drop_socket()
                raise BindError(f"{cfg.address} closed the connection during bind")
            while len(self._inbuf) >= 16:
                length, command_id, status, seq = _HEADER.unpack_from(self._inbuf, 0)
                if len(self._inbuf) < length:
                    break
                if seq == bind_seq and command_id & 0x80000000:
                    del self._inbuf[:length]
                    if status != 0:
                        self._drop_socket()
                        raise BindError(
                            f"bind to {cfg.address} as {cfg.system_id!r} refused: "
                            f"{status_text(status)} {consts.DESCRIPTIONS.get(status, '')}".strip(),
                            command_status=status,
                        )
                    self._last_activity = time.monotonic()
                    self._down_since = None
                    self._reconnect.reset()
                    self._process()  # anything that came right behind the bind response
                    return
                self._process_one()

    def _drop_socket(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._poller = None

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        if self._outbuf:
            self._outbuf += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self._link_lost(f"link lost before the response ({e})")
            return
        if sent < len(data):
            self._outbuf += data[sent:]
            if self._poller is not None:
                self._poller.modify(sock, select.POLLIN | select.POLLOUT)

    def _write_pending(self) -> None:
        sock = self._sock
        if sock is None or not self._outbuf:
            return
        try:
            sent = sock.send(self._outbuf)
        except BlockingIOError:
            return
        except OSError as e:
            self._link_lost(f"link lost before the response ({e})")
            return
        del self._outbuf[:sent]
        if not self._outbuf and self._poller is not None:
            self._poller.modify(sock, select.POLLIN)

    def _wait(self, timeout: float) -> None:
        if self._poller is None:
            return
        events = self._poller.poll(max(0.0, timeout) * 1000.0)
        for _, ev in events:
            if ev & select.POLLOUT:
                self._write_pending()

    def _read(self) -> bool:
        """Append all available bytes; False if the peer closed or the link failed."""
        sock = self._sock
        if sock is None:
            return False
        try:
            while True:
                data = sock.recv(1 << 18)
                if not data:
                    return False
                self._inbuf += data
                if len(data) < 1 << 18:
                    return True
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _service(self, timeout: float) -> None:
        """Read and handle what arrives within `timeout`, then keep-alive and expiry checks."""
        if self._sock is None:
            return
        if self._outbuf:
            self._write_pending()
        if timeout > 0:
            # Try the cheap path first: on a busy link the bytes are usually already there.
            if not self._read():
                self._link_lost("link lost before the response (closed by the SMSC)")
                return
            if len(self._inbuf) < 16:
                self._wait(timeout)
        if self._sock is not None and not self._read():
            self._process()
            self._link_lost("link lost before the response (closed by the SMSC)")
            return
        self._process()
        now = time.monotonic()
        self._expire(now)
        self._keepalive(now)

    def _link_lost(self, reason: str) -> None:
        was_connected = self._sock is not None
        self._drop_socket()
        self._fail_inflight(reason)
        if was_connected and not self._closed:
            self._down_since = time.monotonic()
            self._reconnect.reset()
            self._last_error = reason

    def _fail_inflight(self, reason: str) -> None:
        inflight, self._inflight = self._inflight, {}
        for pending, _, _, _ in inflight.values():
            pending.fail(OutcomeKind.TRANSIENT, None, reason)
            if pending.remaining == 0 and not pending.finished:
                self._done.append(pending.outcome())

    def _ensure_connected(self, deadline: float | None) -> None:
        """Reconnect with exponential backoff and jitter; GatewayError after
        `reconnect_timeout` seconds of downtime."""
        if self._sock is not None:
            return
        if self._closed:
            raise GatewayError(f"session {self.name} is closed")
        if not self._ever_connected:
            self.connect()
            return
        cfg = self.config
        if self._down_since is None:
            self._down_since = time.monotonic()
        while True:
            now = time.monotonic()
            if self._reconnect.ready(now):
                try:
                    self._open()
                    self.stats["reconnects"] += 1
                    return
                except BindError as e:
                    if e.command_status is not None:
                        raise
                    self._last_error = str(e)
                    self._reconnect.failed(now)
            now = time.monotonic()
            give_up = self._down_since + cfg.reconnect_timeout
            if now >= give_up:
                raise GatewayError(
                    f"link to {cfg.address} down for {now - self._down_since:.1f}s: "
                    f"{self._last_error}"
                )
            if deadline is not None and now >= deadline:
                return
            until = min(
                self._reconnect.next_attempt, give_up, deadline if deadline is not None else give_up
            )
            time.sleep(max(0.0, until - now))

    # -- incoming -------------------------------------------------------------------------------

    def _process(self) -> None:
        buf = self._inbuf
        while len(buf) >= 16:
            if self._process_one() is False:
                break

    def _process_one(self) -> bool:
        buf = self._inbuf
        length, command_id, status, seq = _HEADER.unpack_from(buf, 0)
        if length < 16:
            self._link_lost("link lost before the response (malformed PDU)")
            return False
        if len(buf) < length:
            return False
        raw = bytes(buf[:length])
        del buf[:length]
        self._last_activity = time.monotonic()
        if command_id in (_SUBMIT_SM_RESP, _GENERIC_NACK):
            self._on_submit_resp(raw, status, seq)
        elif command_id == _DELIVER_SM:
            self._on_deliver_sm(raw, seq)
        elif command_id == _ENQUIRE_LINK:
            self._send(_HEADER.pack(16, _ENQUIRE_LINK_RESP, 0, seq))
        elif command_id == _ENQUIRE_LINK_RESP:
            self._enquire_deadline = None
        elif command_id == _UNBIND_RESP:
            self._unbind_acked = True
        elif command_id == _UNBIND:
            self._send(_HEADER.pack(16, _UNBIND_RESP, 0, seq))
            self._link_lost("link lost before the response (SMSC unbound)")
            return False
        elif not command_id & 0x80000000:
            self._send(_HEADER.pack(16, _GENERIC_NACK, 0x03, seq))
        return True

    def _on_submit_resp(self, raw: bytes, status: int, seq: int) -> None:
        entry = self._inflight.pop(seq, None)
        if entry is None:
            return  # late answer to something already reported as timed out
        pending, index, _, sent_at = entry
        if status == 0:
            # submit_sm_resp's body is one C-string; slicing it is 25x cheaper than parse_pdu.
            end = raw.find(b"\0", 16)
            raw_id = raw[16:end] if end >= 0 else raw[16:]
            pending.ids[index] = normalise_id(
                raw_id, self.config.receipt_id_format, in_receipt=False
            )
            pending.remaining -= 1
            if self._throttle_delay:
                self._throttle_delay /= 2
                if self._throttle_delay < self.config.throttle_initial:
                    self._throttle_delay = 0.0
        else:
            kind = OutcomeKind.TRANSIENT if status in TRANSIENT_STATUSES else OutcomeKind.PERMANENT
            pending.fail(kind, status, status_text(status))
            if status in SLOW_DOWN_STATUSES:
                self._slow_down(sent_at)
        if pending.remaining == 0 and not pending.finished:
            self._done.append(pending.outcome())

    def _slow_down(self, sent_at: float) -> None:
        """The whole bind pauses; the pause doubles only for PDUs sent after the last pause
        began, so one window full of throttled answers counts as one event."""
        self.stats["throttled"] += 1
        if sent_at < self._throttle_started:
            return
        cfg = self.config
        now = time.monotonic()
        self._throttle_delay = min(
            max(cfg.throttle_initial, self._throttle_delay * 2), cfg.throttle_max
        )
        self._throttle_started = now
        self._throttle_until = now + self._throttle_delay

    def _on_deliver_sm(self, raw: bytes, seq: int) -> None:
        self._send(_HEADER.pack(17, _DELIVER_SM_RESP, 0, seq) + b"\0")
        try:
            pdu = smpp.parse_pdu(raw, client=_CODEC, allow_unknown_opt_params=True)
        except Exception:  # a malformed receipt must not kill the bind
            return
        receipt = parse_receipt(
            short_message=pdu.short_message,
            receipted_message_id=getattr(pdu, "receipted_message_id", None),
            message_state=getattr(pdu, "message_state", None),
            network_error_code=getattr(pdu, "network_error_code", None),
            receipt_id_format=self.config.receipt_id_format,
        )
        if receipt is not None:
            self.stats["receipts"] += 1
            if self.on_receipt is not None:
                self.on_receipt(receipt)
            return
        message = mobile_message(
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            short_message=pdu.short_message,
            message_payload=getattr(pdu, "message_payload", None),
            data_coding=pdu.data_coding,
            esm_class=pdu.esm_class,
            received_at=datetime.now(UTC),
        )
        self.stats["messages"] += 1
        if self.on_message is not None:
            self.on_message(message)

    # -- timers ---------------------------------------------------------------------------------

    def _next_deadline(self, now: float) -> float:
        """Seconds until something must be checked (a response deadline or a keep-alive)."""
        wait = self.config.enquire_link_interval
        if self._inflight:
            first = next(iter(self._inflight.values()))
            wait = min(wait, first[2] - now)
        if self._enquire_deadline is not None:
            wait = min(wait, self._enquire_deadline - now)
        return max(0.001, wait)

    def _expire(self, now: float) -> None:
        inflight = self._inflight
        while inflight:
            seq = next(iter(inflight))
            pending, _, deadline, _ = inflight[seq]
            if deadline > now:
                break
            del inflight[seq]
            self.stats["timeouts"] += 1
            pending.fail(
                OutcomeKind.TRANSIENT,
                None,
                f"no response within {self.config.response_timeout}s",
            )
            if pending.remaining == 0 and not pending.finished:
                self._done.append(pending.outcome())

    def _keepalive(self, now: float) -> None:
        if self._sock is None:
            return
        if self._enquire_deadline is not None:
            if now >= self._enquire_deadline:
                self._link_lost("link lost before the response (no enquire_link_resp)")
            return
        if now - self._last_activity >= self.config.enquire_link_interval:
            self._enquire_deadline = now + self.config.response_timeout
            self._send(self._pdu("enquire_link"))
