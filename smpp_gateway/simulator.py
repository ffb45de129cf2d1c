"""A real SMPP 3.4 SMSC over TCP, for tests, benchmarks and the demo.

One thread per simulator owns every socket of that simulator and runs a `selectors` loop:
it reads all the bytes a socket has, handles every whole PDU in them, and writes the answers
in one send. The hot path (submit_sm in, submit_sm_resp out) is decoded and packed by hand
with `struct`, because the simulator must never be what limits a throughput benchmark, and
because an independent decoder checks the client's PDUs better than the codec that made them.
Rarer PDUs (delivery receipts) are built with smpplib.

Policies, in the order they are applied to each submit_sm (per simulator unless stated):
- `drop_after`: per connection; the N-th submit_sm on a connection is not answered and the
  connection is closed at once (with responses still held back by `latency`).
- `window`: per connection; a submit_sm arriving while `window` others on the same
  connection are still unanswered gets ESME_RMSGQFUL.
- `tps`: per simulator, over every bind: at most `tps` submit_sm accepted in any sliding
  one-second window; beyond it ESME_RTHROTTLED.
- `transient_error_rate`, `permanent_error_rate`: random ESME_RSYSERR/ESME_RX_T_APPN (a
  fault worth retrying, not congestion) and ESME_RINVDSTADR. Congestion comes only from `tps`
  and `window`, as at a real SMSC: a throttle drawn at random would make the senders cut the
  carrier's shared rate (AIMD) for nothing; 1 % of them held a 1,250/s carrier near 70/s.

A receipt due after the submit_sm's `validity_period` (absolute or relative) says EXPIRED
whatever `receipt_mix` would have drawn: the message was never delivered.

Replies: `reply_rate` of the messages a receipt reports DELIVRD (their first part) are answered
by their recipient `reply_delay` s later, as a mobile-originated deliver_sm (esm_class 0) from
that number to the message's sender, on a receiver or transceiver bind of the same system_id.
The text is drawn from `reply_mix` (text -> weight; the word `other` draws a free-text reply
from `OTHER_REPLIES`); a text outside GSM 03.38 goes as UCS-2. `replies()` lists what was sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import json
import random
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from smpplib import smpp
from smpplib.command_codes import get_command_name

from smpp_gateway import smpptime
from smpp_gateway.codec import BINDS as _BINDS
from smpp_gateway.codec import ENQUIRE_LINK as _ENQUIRE_LINK
from smpp_gateway.codec import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVDSTADR,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
)
from smpp_gateway.codec import HEADER as _HEADER
from smpp_gateway.codec import SUBMIT_SM as _SUBMIT_SM
from smpp_gateway.codec import SUBMIT_SM_RESP as _SUBMIT_SM_RESP
from smpp_gateway.codec import UNBIND as _UNBIND
from smpp_gateway.encoding import DC_UCS2, ESM_UDHI, gsm_encode, is_gsm7

# What people write that is no keyword: Vietnamese with and without diacritics, so the
# receiving side sees GSM 7-bit and UCS-2 replies alike.
OTHER_REPLIES = (
    "Nhà tôi bị ngập, cần thuyền",
    "Cam on",
    "Đã nhận tin",
    "ok",
    "Ai gửi tin này?",
)
OTHER = "other"
_SAR_SEQNUM = 0x020F
# Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS), which the socket module does not name: every
# recvmsg then carries the receive time of the last segment it read, a struct timespec.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_TIMESTAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The receive time (time.time() scale) a recvmsg's ancillary data carries, if any."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return seconds + nanoseconds / 1e9
    return None


_STATES = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7,
           "REJECTD": 8, "ENROUTE": 1}  # fmt: skip


@dataclass(frozen=True)
class SimulatorConfig:
    """Behaviour of one simulated SMSC (one carrier)."""

    system_id: str = "loa"
    password: str = "secret"  # noqa: S105 - the simulator's demo credential
    tps: float | None = None
    window: int | None = None
    latency: float = 0.0
    transient_error_rate: float = 0.0
    permanent_error_rate: float = 0.0
    receipt_delay: float | None = None
    receipt_mix: Mapping[str, float] = field(default_factory=lambda: {"DELIVRD": 1.0})
    receipt_form: str = "both"
    message_id_format: str = "hex"
    receipt_id_format: str = "hex"
    drop_after: int | None = None
    seed: int | None = None
    reply_rate: float = 0.0
    reply_mix: Mapping[str, float] = field(
        default_factory=lambda: {"1": 0.8, "2": 0.15, OTHER: 0.05}
    )
    reply_delay: float = 0.2
    # Added: keep every PDU in memory for records(); a benchmark of millions turns it off.
    keep_records: bool = True
    # Stamp each PDU with the kernel's receive time of its last byte (SO_TIMESTAMPNS, read one
    # PDU at a time) instead of the moment this process got round to reading it: on a busy
    # machine the simulator's own scheduling delay bunches a backlog into one instant, which
    # no SMSC on its own machine would see. One recvmsg per PDU: for measuring a pace, not
    # for a throughput benchmark. `ReceivedPdu.read_at` keeps the moment it was read. Not
    # exact for a backlog on one connection: the kernel merges data waiting in a socket's
    # queue, and the merged data carries the latest stamp.
    kernel_times: bool = False

    def __post_init__(self) -> None:
        if self.receipt_form not in ("tlv", "text", "both"):
            raise ValueError("receipt_form must be tlv, text or both")
        for name in ("message_id_format", "receipt_id_format"):
            if getattr(self, name) not in ("hex", "dec"):
                raise ValueError(f"{name} must be hex or dec")
        unknown = set(self.receipt_mix) - set(_STATES)
        if unknown:
            raise ValueError(f"unknown receipt states {sorted(unknown)}")
        if not 0.0 <= self.reply_rate <= 1.0:
            raise ValueError("reply_rate must be between 0 and 1")
        if self.reply_rate and (
            not self.reply_mix
            or any(w < 0 for w in self.reply_mix.values())
            or not sum(self.reply_mix.values())
        ):
            raise ValueError("reply_mix needs texts with weights >= 0, not all 0")
        if self.reply_delay < 0:
            raise ValueError("reply_delay must be >= 0")


@dataclass(frozen=True)
class SentReply:
    """A mobile-originated message the simulator sent on behalf of a subscriber."""

    time: float
    system_id: str
    source_addr: str
    destination_addr: str
    text: str
    data_coding: int


@dataclass(frozen=True)
class ReceivedPdu:
    """One PDU as the simulator received it; submit_sm fields are filled for submit_sm only."""

    time: float
    connection: int
    system_id: str
    command: str
    sequence: int
    status: int = 0
    source_addr: str | None = None
    destination_addr: str | None = None
    esm_class: int | None = None
    data_coding: int | None = None
    registered_delivery: int | None = None
    short_message: bytes | None = None
    tlvs: Mapping[int, bytes] = field(default_factory=dict)
    source_addr_ton: int | None = None
    source_addr_npi: int | None = None
    dest_addr_ton: int | None = None
    dest_addr_npi: int | None = None
    message_id: str | None = None
    error: int | None = None
    validity_period: str = ""
    read_at: float | None = None  # when the simulator read it, with kernel_times

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "read_at": self.time if self.read_at is None else self.read_at,
            "system_id": self.system_id,
            "sequence": self.sequence,
            "source": self.source_addr,
            "destination": self.destination_addr,
            "esm_class": self.esm_class,
            "data_coding": self.data_coding,
            "registered_delivery": self.registered_delivery,
            "validity_period": self.validity_period,
            "short_message": (self.short_message or b"").hex(),
            "tlvs": {f"0x{k:04x}": v.hex() for k, v in self.tlvs.items()},
            "message_id": self.message_id,
            "error": self.error,
        }


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(0, pos)
    return bytes(data[pos:end]).decode("latin-1"), end + 1


def _parse_submit(body: bytes) -> dict[str, Any]:
    """submit_sm body fields, by the SMPP 3.4 layout (section 4.4.1)."""
    _, p = _cstring(body, 0)  # service_type
    source_ton, source_npi = body[p], body[p + 1]
    p += 2
    source, p = _cstring(body, p)
    dest_ton, dest_npi = body[p], body[p + 1]
    p += 2
    dest, p = _cstring(body, p)
    esm_class = body[p]
    p += 3
    _, p = _cstring(body, p)  # schedule_delivery_time
    validity, p = _cstring(body, p)
    registered = body[p]
    data_coding = body[p + 2]
    sm_length = body[p + 4]
    p += 5
    short_message = bytes(body[p : p + sm_length])
    p += sm_length
    tlvs: dict[int, bytes] = {}
    while p + 4 <= len(body):
        tag, length = struct.unpack_from(">HH", body, p)
        tlvs[tag] = bytes(body[p + 4 : p + 4 + length])
        p += 4 + length
    return {
        "source_addr_ton": source_ton,
        "source_addr_npi": source_npi,
        "dest_addr_ton": dest_ton,
        "dest_addr_npi": dest_npi,
        "source_addr": source,
        "destination_addr": dest,
        "esm_class": esm_class,
        "data_coding": data_coding,
        "registered_delivery": registered,
        "validity_period": validity,
        "short_message": short_message,
        "tlvs": tlvs,
    }


class _Conn:
    __slots__ = (
        "closing",
        "id",
        "inbuf",
        "max_outstanding",
        "mode",
        "outbuf",
        "outstanding",
        "sock",
        "submits",
        "system_id",
        "writing",
    )

    def __init__(self, sock: socket.socket, conn_id: int) -> None:
        self.sock = sock
        self.id = conn_id
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.system_id = ""
        self.mode: str | None = None
        self.outstanding = 0
        self.max_outstanding = 0
        self.submits = 0
        self.closing = False
        self.writing = False


class SmscSimulator:
    """An SMSC on 127.0.0.1 (port 0 = any free port; read `.port` after start)."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record_to: str | Path | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self._record_path = Path(record_to) if record_to else None
        self._record_file: IO[str] | None = None
        self._records: list[ReceivedPdu] = []
        self._random = random.Random(self.config.seed)
        self._ids = itertools.count(0x00A00000 + self._random.randrange(0x100000))
        self._receipt_seq = itertools.count(1)
        self._accepted: deque[float] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._conns: dict[int, _Conn] = {}
        self._conn_ids = itertools.count(1)
        self._calls: deque[tuple[Callable[[], None], threading.Event]] = deque()
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.max_outstanding = 0
        self.submit_count = 0
        self._dirty_record = False
        self._replies: list[SentReply] = []
        self._reply_seq = itertools.count(1)
        self._read_at = 0.0  # time.time() of the last read, with kernel_times

    # -- control, from any thread -------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve in a background thread that owns every socket of this simulator."""
        self._listener = socket.create_server((self.host, self.port), backlog=64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        if self._record_path:
            self._record_file = self._record_path.open("a", encoding="utf-8")
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"smsc-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._wake()
        if self._thread:
            self._thread.join(5)
        for conn in list(self._conns.values()):
            self._close(conn)
        for s in (self._listener, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        if self._selector:
            self._selector.close()
        if self._record_file:
            self._record_file.close()
            self._record_file = None

    def __enter__(self) -> SmscSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def records(self) -> list[ReceivedPdu]:
        """Every PDU received so far, in arrival order (with keep_records)."""
        return list(self._records)

    def submits(self) -> list[ReceivedPdu]:
        return [r for r in self._records if r.command == "submit_sm"]

    def replies(self) -> list[SentReply]:
        """Every reply sent so far (see the module docstring), in order."""
        return list(self._replies)

    def set_config(self, **changes: Any) -> None:
        """Change behaviour at run time (tps, error rates, drop_after...)."""
        self.config = dataclasses.replace(self.config, **changes)

    def drop_connections(self) -> None:
        """Close every client socket now, as a failing link would."""

        def close_all() -> None:
            for conn in list(self._conns.values()):
                self._close(conn)

        self._call(close_all)

    def connections(self) -> int:
        return len(self._conns)

    def _call(self, fn: Callable[[], None]) -> None:
        done = threading.Event()
        self._calls.append((fn, done))
        self._wake()
        done.wait(5)

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")

    # -- the loop, in the simulator's thread ----------------------------------------------------

    def _serve(self) -> None:
        sel = self._selector
        assert sel is not None
        while self._running:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.time())
            for key, mask in sel.select(timeout):
                sock = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock is self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                else:
                    conn = key.data
                    if mask & selectors.EVENT_READ:
                        self._read(conn)
                    if mask & selectors.EVENT_WRITE and not conn.closing:
                        self._flush(conn)
            while self._calls:
                fn, done = self._calls.popleft()
                fn()
                done.set()
            now = time.time()
            while self._timers and self._timers[0][0] <= now:
                _, _, fn = heapq.heappop(self._timers)
                fn()
            for conn in list(self._conns.values()):
                if conn.outbuf and not conn.writing:
                    self._flush(conn)
            if self._dirty_record and self._record_file:
                self._record_file.flush()
                self._dirty_record = False

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.config.kernel_times:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            conn = _Conn(sock, next(self._conn_ids))
            self._conns[conn.id] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn.id, None) is None:
            return
        conn.closing = True
        with contextlib.suppress(Exception):
            assert self._selector is not None
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(conn)
            return
        del conn.outbuf[:sent]
        want_write = bool(conn.outbuf)
        if want_write != conn.writing and self._selector is not None:
            conn.writing = want_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._selector.modify(conn.sock, events, conn)

    def _read(self, conn: _Conn) -> None:
        if self.config.kernel_times:
            self._read_stamped(conn)
            return
        try:
            data = conn.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        self._handle_buffer(conn, time.time())

    def _read_stamped(self, conn: _Conn) -> None:
        """Up to 64 PDUs, one recvmsg each, each stamped with the kernel's receive time of the
        segment that completed it (the rest is read on the next turn of the loop)."""
        buf = conn.inbuf
        for _ in range(64):
            need = 16 - len(buf) if len(buf) < 16 else int.from_bytes(buf[:4]) - len(buf)
            try:
                data, ancillary, _, _ = conn.sock.recvmsg(max(need, 1), _TIMESTAMP_SPACE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close(conn)
                return
            buf += data
            stamp = _kernel_time(ancillary)
            self._read_at = time.time()
            self._handle_buffer(conn, self._read_at if stamp is None else stamp)
            if conn.id not in self._conns:
                return

    def _handle_buffer(self, conn: _Conn, now: float) -> None:
        """Handle every whole PDU in the connection's buffer, then write the answers."""
        buf = conn.inbuf
        pos = 0
        end = len(buf)
        while end - pos >= 16 and conn.id in self._conns:
            length, command_id, status, sequence = _HEADER.unpack_from(buf, pos)
            if length < 16 or length > 1 << 16:
                self._close(conn)
                return
            if end - pos < length:
                break
            body = bytes(buf[pos + 16 : pos + length])
            pos += length
            self._handle(conn, now, command_id, status, sequence, body)
        del buf[:pos]
        if conn.closing:
            return
        if conn.outbuf and conn.id in self._conns:
            self._flush(conn)

    def _record(self, rec: ReceivedPdu) -> None:
        if self.config.kernel_times:
            rec = dataclasses.replace(rec, read_at=self._read_at)
        if self.config.keep_records:
            self._records.append(rec)
        if self._record_file and rec.command == "submit_sm":
            self._record_file.write(json.dumps(rec.to_json()) + "\n")
            self._dirty_record = True

    def _respond(self, conn: _Conn, command_id: int, status: int, seq: int, body: bytes) -> None:
        conn.outbuf += _HEADER.pack(16 + len(body), command_id, status, seq) + body

    def _handle(
        self, conn: _Conn, now: float, command_id: int, status: int, seq: int, body: bytes
    ) -> None:
        if command_id == _SUBMIT_SM:
            self._submit(conn, now, seq, body)
            return
        name = get_command_name(command_id) or f"0x{command_id:08x}"
        if command_id in _BINDS:
            system_id, p = _cstring(body, 0)
            password, _ = _cstring(body, p)
            self._record(ReceivedPdu(now, conn.id, system_id, name, seq, status))
            cfg = self.config
            if system_id != cfg.system_id:
                result = ESME_RINVSYSID
            elif password != cfg.password:
                result = ESME_RINVPASWD
            else:
                result = ESME_ROK
                conn.system_id = system_id
                conn.mode = _BINDS[command_id]
            resp_body = (cfg.system_id.encode() + b"\0") if result == ESME_ROK else b""
            self._respond(conn, command_id | 0x80000000, result, seq, resp_body)
            return
        self._record(ReceivedPdu(now, conn.id, conn.system_id, name, seq, status))
        if command_id == _ENQUIRE_LINK:
            self._respond(conn, command_id | 0x80000000, ESME_ROK, seq, b"")
        elif command_id == _UNBIND:
            self._respond(conn, command_id | 0x80000000, ESME_ROK, seq, b"")
            self._flush(conn)
            self._close(conn)
        elif command_id & 0x80000000:
            pass  # deliver_sm_resp, enquire_link_resp, generic_nack: recorded, nothing to do
        else:
            self._respond(conn, 0x80000000, ESME_RINVCMDID, seq, b"")

    def _new_id(self, n: int, fmt: str) -> str:
        # Upper-case hex with leading zeros and zero-padded decimal: the client must normalise.
        return f"{n:08X}" if fmt == "hex" else f"{n:010d}"

    def _submit(self, conn: _Conn, now: float, seq: int, body: bytes) -> None:
        cfg = self.config
        fields = _parse_submit(body)
        conn.submits += 1
        self.submit_count += 1
        result = ESME_ROK
        message_id: str | None = None
        if conn.mode not in ("transmitter", "transceiver"):
            result = ESME_RINVBNDSTS
        elif cfg.drop_after is not None and conn.submits >= cfg.drop_after:
            self._record(
                ReceivedPdu(now, conn.id, conn.system_id, "submit_sm", seq, error=-1, **fields)
            )
            self._flush(conn)
            self._close(conn)
            return
        elif cfg.window is not None and conn.outstanding >= cfg.window:
            result = ESME_RMSGQFUL
        else:
            if cfg.tps is not None:
                window = self._accepted
                while window and window[0] <= now - 1.0:
                    window.popleft()
                if len(window) >= cfg.tps:
                    result = ESME_RTHROTTLED
            if result == ESME_ROK and (cfg.transient_error_rate or cfg.permanent_error_rate):
                r = self._random.random()
                if r < cfg.transient_error_rate:
                    result = self._random.choice((ESME_RSYSERR, ESME_RX_T_APPN))
                elif r < cfg.transient_error_rate + cfg.permanent_error_rate:
                    result = ESME_RINVDSTADR
            if result == ESME_ROK:
                if cfg.tps is not None:
                    self._accepted.append(now)
                n = next(self._ids)
                message_id = self._new_id(n, cfg.message_id_format)
                if cfg.receipt_delay is not None and fields["registered_delivery"] & 0x01:
                    self._schedule(
                        now + cfg.receipt_delay,
                        self._receipt_sender(conn, n, now, fields),
                    )
        self._record(
            ReceivedPdu(
                now,
                conn.id,
                conn.system_id,
                "submit_sm",
                seq,
                message_id=message_id,
                error=None if result == ESME_ROK else result,
                **fields,
            )
        )
        resp_body = (message_id.encode() + b"\0") if message_id is not None else b""
        if cfg.latency > 0:
            conn.outstanding += 1
            if conn.outstanding > conn.max_outstanding:
                conn.max_outstanding = conn.outstanding
                self.max_outstanding = max(self.max_outstanding, conn.outstanding)

            def answer(conn: _Conn = conn) -> None:
                conn.outstanding -= 1
                if conn.id in self._conns:
                    self._respond(conn, _SUBMIT_SM_RESP, result, seq, resp_body)

            self._schedule(now + cfg.latency, answer)
        else:
            self.max_outstanding = max(self.max_outstanding, 1)
            self._respond(conn, _SUBMIT_SM_RESP, result, seq, resp_body)

    def _schedule(self, due: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (due, next(self._timer_seq), fn))

    def _receipt_sender(
        self, conn: _Conn, n: int, submitted: float, fields: dict[str, Any]
    ) -> Callable[[], None]:
        def send() -> None:
            target = conn if conn.id in self._conns else self._receiver_for(conn.system_id)
            if target is None:
                return
            cfg = self.config
            states, weights = zip(*cfg.receipt_mix.items(), strict=True)
            stat = self._random.choices(states, weights)[0]
            # An SMSC does not deliver past the validity the sender gave: the receipt says so.
            until = smpptime.parse(
                fields["validity_period"], datetime.fromtimestamp(submitted, UTC)
            )
            if until is not None and datetime.now(UTC) > until:
                stat = "EXPIRED"
            rid = self._new_id(n, cfg.receipt_id_format)
            err = "000" if stat == "DELIVRD" else "001"
            kwargs: dict[str, Any] = {
                "client": None,
                "sequence": next(self._receipt_seq),
                "source_addr_ton": 1,
                "source_addr_npi": 1,
                "source_addr": fields["destination_addr"],
                "dest_addr_ton": 5,
                "dest_addr_npi": 0,
                "destination_addr": fields["source_addr"],
                "esm_class": 0x04,  # SMSC delivery receipt
                "data_coding": 0,
            }
            if cfg.receipt_form in ("tlv", "both"):
                kwargs["receipted_message_id"] = rid
                kwargs["message_state"] = _STATES[stat]
                if stat != "DELIVRD":
                    kwargs["network_error_code"] = b"\x03\x00\x01"
            if cfg.receipt_form in ("text", "both"):
                sub = datetime.fromtimestamp(submitted, UTC).strftime("%y%m%d%H%M")
                done = datetime.now(UTC).strftime("%y%m%d%H%M")
                dlvrd = "001" if stat == "DELIVRD" else "000"
                kwargs["short_message"] = (
                    f"id:{rid} sub:001 dlvrd:{dlvrd} submit date:{sub} done date:{done} "
                    f"stat:{stat} err:{err} text:"
                ).encode()
            pdu = smpp.make_pdu("deliver_sm", **kwargs)
            pdu.sequence = kwargs["sequence"]  # smpplib's kwargs don't override the property
            target.outbuf += pdu.generate()
            answers = stat == "DELIVRD" and cfg.reply_rate and _first_part(fields)
            if answers and self._random.random() < cfg.reply_rate:
                self._schedule(
                    time.time() + cfg.reply_delay, self._reply_sender(conn.system_id, fields)
                )

        return send

    def _reply_sender(self, system_id: str, fields: dict[str, Any]) -> Callable[[], None]:
        def send() -> None:
            target = self._receiver_for(system_id)
            if target is None:
                return  # no bind can take it: a real SMSC would retry later; this one drops
            texts, weights = zip(*self.config.reply_mix.items(), strict=True)
            text = self._random.choices(texts, weights)[0]
            if text == OTHER:
                text = self._random.choice(OTHER_REPLIES)
            if is_gsm7(text):
                body, coding = gsm_encode(text), 0
            else:
                body, coding = text.encode("utf-16-be"), DC_UCS2
            seq = next(self._reply_seq) | 0x40000000  # apart from the receipts' numbers
            pdu = smpp.make_pdu(
                "deliver_sm",
                client=None,
                sequence=seq,
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=fields["destination_addr"],
                dest_addr_ton=fields["source_addr_ton"],
                dest_addr_npi=fields["source_addr_npi"],
                destination_addr=fields["source_addr"],
                esm_class=0,
                data_coding=coding,
                short_message=body,
            )
            pdu.sequence = seq
            target.outbuf += pdu.generate()
            self._replies.append(
                SentReply(
                    time.time(),
                    system_id,
                    fields["destination_addr"],
                    fields["source_addr"],
                    text,
                    coding,
                )
            )

        return send

    def _receiver_for(self, system_id: str) -> _Conn | None:
        for c in self._conns.values():
            if c.system_id == system_id and c.mode in ("receiver", "transceiver"):
                return c
        return None


def _first_part(fields: Mapping[str, Any]) -> bool:
    """Whether a submit_sm is a whole message or its first part (UDH or SAR), so a long
    message is answered once, not once a part."""
    seqnum = fields["tlvs"].get(_SAR_SEQNUM)
    if seqnum is not None:
        return seqnum == b"\x01"
    sm = fields["short_message"]
    if fields["esm_class"] & ESM_UDHI and len(sm) >= 6 and sm[1] in (0x00, 0x08):
        return sm[2 + sm[2]] == 1  # the concatenation IE ends with the part number
    return True


def run_many(
    configs: Mapping[str, tuple[SimulatorConfig, int]], host: str = "127.0.0.1"
) -> dict[str, SmscSimulator]:
    """Start one simulator per carrier (name -> (config, port)); stop each when done."""
    started: dict[str, SmscSimulator] = {}
    try:
        for name, (config, port) in configs.items():
            sim = SmscSimulator(config, host, port)
            sim.start()
            started[name] = sim
    except Exception:
        for sim in started.values():
            sim.stop()
        raise
    return started
