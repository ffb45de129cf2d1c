"""Soak and chaos: one large broadcast through every carrier while things break on a schedule.

Everything runs as it would in production, each part in its own process on 127.0.0.1: one
`loa simulator` per carrier (receipts, the demo's latencies and error rates, every submit_sm
recorded to a JSON-lines file), one `loa worker --carrier CODE` per carrier, one
`loa worker --control` (fan-out and the periodic reconcile), a private Redis server and a
private PostgreSQL database (or SQLite). The alert is drafted, submitted and approved by two
people through `broadcast.alerts`, and its fan-out enqueued as the console does.

While the broadcast has work left, one chaos event every `--chaos-interval` seconds, in turn:
- kill -9 of a sender worker (restarted 2 s later, as systemd's Restart=always would);
- a dropped SMSC link: the carrier's simulator process is stopped and started on its port;
- a Redis restart (PrivateRedis.restart: same port, empty), followed by `loa reconcile`;
- a PostgreSQL restart: the soak's own cluster (PrivatePostgres: initdb/pg_ctl on a port of
  its own, never the shared server) stopped (sessions cut) and started again --pg-down
  seconds later (PostgreSQL runs only; SQLite has no server to restart).
The script also acts as the supervisor: a worker that exits on its own is restarted and the
exit is listed (`unexpected_exits`), since that is a finding in itself.

Once nothing is pending or queued and the receipts have settled, rows still `submitted` are
those whose receipts a restarted SMSC took with it: they expire at the alert's expiry, so the
script moves the expiry to now and runs `loa reconcile`, as an operator's clock would.

The last stdout line is one JSON object: recipients, final states, lost (must be 0),
duplicates against their bound, peak RSS per process, achieved rate per carrier against its
limit (from the SMSC's own arrival times), elapsed times and the chaos events. The baseline,
measured in the same run, is the ideal send time at the configured limits.

    .venv/bin/python benchmarks/soak.py --recipients 20000
    .venv/bin/python benchmarks/soak.py                      # 1,000,000 at ~2,500/s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
from rq import Queue
from sqlalchemy import func, select, update

from broadcast import alerts, keys
from broadcast.bootstrap import init_database
from broadcast.cli.demo_data import SHARES, build_files, demo_passwords, ensure_users
from broadcast.cli.ops import DEMO_RECEIPT_MIX, DEMO_SMSC
from broadcast.db import Database
from broadcast.models import (
    Alert,
    AlertCategory,
    Carrier,
    Delivery,
    ListStatus,
    Subscriber,
    SubscriberList,
    User,
)
from broadcast.postgres_server import PrivatePostgres
from broadcast.redis_server import PrivateRedis, free_port
from broadcast.settings import Settings, load_settings
from subscriber_import.service import import_file

PROVINCE = "42"
BODY = "UBND tinh Ha Tinh: dien tap canh bao bao. Nguoi dan theo doi thong tin tren dai phat thanh."
FLUSH_SIZE = 500  # CarrierSender's default flush_size: accepted outcomes held before a write
RESTART_DELAY = 2.0  # config/systemd/loa-worker@.service: RestartSec=2
CHAOS_KINDS = ("kill_sender", "drop_link", "restart_redis", "restart_postgres")
FINAL = ("delivered", "undeliverable", "expired", "rejected", "cancelled")


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loa_command() -> list[str]:
    loa = Path(sys.executable).with_name("loa")
    return (
        [str(loa)]
        if loa.exists()
        else [sys.executable, "-c", "from broadcast.cli import main; main()"]
    )


# --- processes -------------------------------------------------------------------------------


@dataclass
class Child:
    """One child process we own, restartable under the same name."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    expected_down: bool = False

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.expected_down = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill9(self) -> None:
        assert self.proc is not None
        self.expected_down = True
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.expected_down = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def carrier_of(name: str) -> str:
    """ "sender:viettel#2" -> "viettel"."""
    return name.split(":", 1)[1].split("#", 1)[0]


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class RssSampler(threading.Thread):
    """Peak resident memory per named process, sampled once a second (psutil)."""

    def __init__(self, pids: Any, interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pids = pids  # callable -> {name: [pid, ...]}
        self.interval = interval
        self.peak: dict[str, int] = defaultdict(int)
        self.loads: list[float] = []  # 1-minute load average: the 2 cores are shared
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        self.loads.append(os.getloadavg()[0])
        try:
            named = self.pids()
        except Exception:  # a failed sample (Redis down) is skipped
            return
        for name, pids in named.items():
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    rss = psutil.Process(pid).memory_info().rss
                    self.peak[name] = max(self.peak[name], rss)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Soak:
    args: argparse.Namespace
    workdir: Path
    limits: dict[str, int] = field(default_factory=dict)
    sims: dict[str, Child] = field(default_factory=dict)
    senders: dict[str, Child] = field(default_factory=dict)
    control: Child | None = None
    redis_server: PrivateRedis | None = None
    redis_pid: int | None = None
    pg_name: str | None = None
    pg: PrivatePostgres | None = None
    database: Database | None = None
    settings: Settings | None = None
    env: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    restarts_due: dict[str, float] = field(default_factory=dict)
    t0: float = 0.0
    t0_wall: float = 0.0
    alert_id: int = 0

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2) if self.t0 else 0.0

    # -- set-up -----------------------------------------------------------------------------

    def carrier_limits(self) -> dict[str, int]:
        """The aggregate rate split by each carrier's share of the audience, so that every
        carrier needs about the same time (at least 5/s each)."""
        return {code: max(5, round(self.args.rate * share)) for code, share in SHARES.items()}

    def setup(self) -> None:
        args = self.args
        self.limits = self.carrier_limits()
        self.redis_server = PrivateRedis(self.workdir / "redis").start()
        self.redis_pid = redis.Redis.from_url(self.redis_server.url).info("server")["process_id"]
        if args.sqlite:
            db_url = ""
        else:
            self.pg = PrivatePostgres().start()
            self.pg_name = f"loa_soak_{uuid.uuid4().hex[:8]}"
            db_url = self.pg.create_database(self.pg_name)
        ports = {code: free_port() for code in self.limits}
        env = {
            **os.environ,
            "LOA_INSTANCE_PATH": str(self.workdir / "instance"),
            "LOA_DATABASE_URL": db_url,
            "LOA_REDIS_URL": self.redis_server.url,
            "LOA_LOG_LEVEL": "WARNING",
            "LOA_DELIVERY__LEASE_SECONDS": str(args.lease_seconds),
            "LOA_DELIVERY__RECONCILE_INTERVAL": str(args.reconcile_interval),
            "LOA_DELIVERY__BATCH_SIZE": str(args.batch_size),
            "LOA_DELIVERY__RETRY_BACKOFF_INITIAL": "1.0",
            "LOA_DELIVERY__RETRY_BACKOFF_MAX": "10.0",
        }
        for code, limit in self.limits.items():
            prefix = f"LOA_CARRIERS__{code.upper()}__"
            env[prefix + "MPS"] = str(limit)
            env[prefix + "GATEWAY__PORT"] = str(ports[code])
            env[prefix + "GATEWAY__RESPONSE_TIMEOUT"] = "5.0"
        self.env = env
        self.settings = load_settings(env)
        self.database = Database(self.settings.sqlalchemy_url)
        log(f"database {self.settings.sqlalchemy_url}, redis {self.redis_server.url}")
        init_database(self.database, self.settings, admin_password=None)
        ensure_users(self.database, demo_passwords(self.settings.instance_path))
        self.load_subscribers()
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        for carrier in self.settings.carriers:
            self.sims[carrier.code] = Child(
                f"simulator:{carrier.code}",
                self.simulator_argv(carrier.code, ports[carrier.code]),
                env,
                logs / f"simulator-{carrier.code}.log",
            )
            count = args.processes if self.limits[carrier.code] >= 500 else 1
            for i in range(1, count + 1):
                name = f"sender:{carrier.code}" + (f"#{i}" if i > 1 else "")
                self.senders[name] = Child(
                    name,
                    [*loa_command(), "worker", "--carrier", carrier.code],
                    env,
                    logs / f"{name.replace(':', '-').replace('#', '-')}.log",
                )
        self.control = Child("control", [*loa_command(), "worker", "--control"], env,
                             logs / "control.log")  # fmt: skip
        for code, sim in self.sims.items():
            sim.start()
            wait_port(ports[code])
        for child in [*self.senders.values(), self.control]:
            child.start()

    def simulator_argv(self, code: str, port: int) -> list[str]:
        carrier = self.settings.carrier(code)  # type: ignore[union-attr]
        gw = carrier.gateway
        behaviour = DEMO_SMSC.get(code, {})
        mix = ",".join(f"{k}={v}" for k, v in DEMO_RECEIPT_MIX.items())
        argv = [
            *loa_command(), "simulator", "--port", str(port),
            "--system-id", gw.system_id, "--password", gw.password,
            "--latency", str(behaviour.get("latency", 0.0)),
            "--receipt-delay", str(self.args.receipt_delay),
            "--receipt-mix", mix,
            "--receipt-id-format", "dec" if gw.receipt_id_format == "dec" else "hex",
            "--error-rate", str(behaviour.get("transient_error_rate", 0.0)),
            "--permanent-error-rate", str(behaviour.get("permanent_error_rate", 0.0)),
            "--record", str(self.workdir / f"records-{code}.jsonl"),
        ]  # fmt: skip
        return argv

    def load_subscribers(self) -> None:
        """The demo generator's carrier files, through the real importer."""
        started = time.monotonic()
        assert self.settings is not None and self.database is not None
        files = build_files(
            self.settings, self.database, self.workdir / "lists", self.args.recipients
        )
        for carrier, list_path, _counts in files:
            report = import_file(
                self.database, self.settings, carrier_code=carrier, kind="list", path=list_path
            )
            list_path.unlink()
            log(f"imported {carrier}: {report.accepted:,} numbers")
        log(f"subscribers loaded in {time.monotonic() - started:.1f} s")

    def start_alert(self) -> int:
        assert self.database is not None and self.settings is not None
        with self.database.session() as s:
            drafter = s.scalar(select(User).where(User.username == "drafter"))
            approver = s.scalar(select(User).where(User.username == "approver"))
            draft = alerts.AlertDraft(
                title="Soak: dien tap canh bao",
                body=BODY,
                category=AlertCategory.WARNING,
                area_codes=(PROVINCE,),
                carrier_codes=self.settings.carrier_codes,
                brandname="UBND HaTinh",
                expires_at=datetime.now(UTC) + timedelta(hours=6),
            )
            alert = alerts.create_draft(s, draft, user=drafter)
            alerts.submit_for_approval(s, alert.id, user=drafter)
            alerts.approve(s, alert.id, user=approver, version=alert.version,
                           waive_quiet_hours=True, waive_daily_cap=True,
                           settings=self.settings)  # fmt: skip
            alert_id = alert.id
        with redis.Redis.from_url(self.settings.redis_url) as conn:
            Queue(keys.CONTROL_QUEUE, connection=conn).enqueue(
                keys.FAN_OUT_JOB, alert_id, job_id=keys.fan_out_job_id(alert_id)
            )
        return alert_id

    # -- watching ---------------------------------------------------------------------------

    def counts(self) -> Counter[str]:
        assert self.database is not None
        with self.database.session() as s:
            rows = s.execute(
                select(Delivery.state, func.count())
                .where(Delivery.alert_id == self.alert_id)
                .group_by(Delivery.state)
            ).all()
        return Counter({st.value: n for st, n in rows})

    def busy_carriers(self) -> list[str]:
        """Carriers with queued rows, the one with most first."""
        assert self.database is not None
        with self.database.session() as s:
            rows = s.execute(
                select(Carrier.code, func.count())
                .select_from(Delivery)
                .join(Carrier, Carrier.id == Delivery.carrier_id)
                .where(Delivery.alert_id == self.alert_id, Delivery.state == "queued")
                .group_by(Carrier.code)
                .order_by(func.count().desc())
            ).all()
        return [code for code, _ in rows]

    def alert_status(self) -> str:
        assert self.database is not None
        with self.database.session() as s:
            return s.scalar(select(Alert.status).where(Alert.id == self.alert_id)).value

    def pids(self) -> dict[str, list[int]]:
        named: dict[str, list[int]] = {"soak (this script)": [os.getpid()]}
        for child in [*self.sims.values(), *self.senders.values(), self.control]:
            if child is not None and child.pid is not None:
                named[child.name] = [child.pid]
        if self.redis_pid:
            named["redis-server"] = [self.redis_pid]
        if self.pg is not None:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(self.pg.url, autocommit=True, connect_timeout=2) as conn,
            ):
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.pg_name,)
                ).fetchall()
                if rows:
                    named["postgres backend (largest)"] = [pid for (pid,) in rows]
        return named

    def supervise(self) -> None:
        """Restart workers that died (ours after a delay, like systemd; others as found)."""
        now = time.monotonic()
        for child in [*self.senders.values(), self.control]:
            assert child is not None and child.proc is not None
            code = child.proc.poll()
            if code is None:
                continue
            if child.name not in self.restarts_due:
                if not child.expected_down:
                    tail = child.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                    self.exits.append({"t": self.now(), "process": child.name, "code": code,
                                       "log_tail": tail})  # fmt: skip
                    log(f"{child.name} exited by itself with code {code}: {tail[-1:]}")
                self.restarts_due[child.name] = now + RESTART_DELAY
            elif now >= self.restarts_due[child.name]:
                del self.restarts_due[child.name]
                child.start()

    # -- chaos ------------------------------------------------------------------------------

    def chaos(self, number: int) -> None:
        kinds = CHAOS_KINDS if self.pg is not None else CHAOS_KINDS[:-1]
        kind = kinds[number % len(kinds)]
        # Strike where there is work: the carriers that still have queued rows, in turn.
        busy = self.busy_carriers() or sorted(self.limits, key=lambda c: -self.limits[c])[:1]
        code = busy[(number // len(kinds)) % len(busy)]
        event: dict[str, Any] = {"t": self.now(), "event": kind}
        if kind == "kill_sender":
            alive = [c for n, c in self.senders.items() if carrier_of(n) == code and c.pid]
            if not alive:
                return
            child = alive[0]
            child.kill9()
            event["target"] = child.name
        elif kind == "drop_link":
            sim = self.sims[code]
            sim.stop(5)
            sim.start()
            wait_port(self.settings.carrier(code).gateway.port)  # type: ignore[union-attr]
            event["target"] = sim.name
            event["down_s"] = round(self.now() - event["t"], 2)
        elif kind == "restart_postgres":
            assert self.pg is not None
            self.pg.restart(down=self.args.pg_down)
            event["down_s"] = round(self.now() - event["t"], 2)
        else:
            assert self.redis_server is not None
            self.redis_server.restart()
            self.redis_pid = redis.Redis.from_url(self.redis_server.url).info("server")[
                "process_id"
            ]
            event["down_s"] = round(self.now() - event["t"], 2)
            done = subprocess.run(
                [*loa_command(), "reconcile", "--json"],
                env=self.env, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            lines = done.stdout.strip().splitlines()
            event["reconcile"] = (
                json.loads(lines[-1])
                if done.returncode == 0 and lines
                else (f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
            )
        log(f"chaos at {event['t']:.1f} s: {event}")
        self.events.append(event)

    def run(self) -> dict[str, Any]:
        args = self.args
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.alert_id = self.start_alert()
        log(f"alert #{self.alert_id} approved, fan-out queued; limits {self.limits}")
        deadline = self.t0 + args.deadline
        next_chaos = self.t0 + args.chaos_interval
        chaos_n = 0
        settle = max(10.0, 3 * args.receipt_delay + 5)
        last_counts: Counter[str] = Counter()
        quiet_since: float | None = None
        last_poll = 0.0
        sending_done_at: float | None = None
        counts: Counter[str] = Counter()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            self.supervise()
            now = time.monotonic()
            if now - last_poll < 3:
                continue
            last_poll = now
            counts = self.counts()
            status = self.alert_status()
            open_rows = counts["pending"] + counts["queued"]
            log(f"{self.now():7.1f} s  {status:<9} " + " ".join(
                f"{k}={v:,}" for k, v in sorted(counts.items())))  # fmt: skip
            if status == "completed":
                break
            fanned = status == "sending" and sum(counts.values()) > 0
            if fanned and open_rows == 0:
                sending_done_at = sending_done_at or now
                if counts != last_counts:
                    quiet_since = now
                elif quiet_since is not None and now - quiet_since >= settle:
                    break  # receipts settled: what is left waits for expiry
            else:
                quiet_since = None
            last_counts = counts
            if args.chaos_interval > 0 and now >= next_chaos and (not fanned or open_rows):
                try:
                    self.chaos(chaos_n)
                except Exception as exc:  # the soak goes on; the event says what failed
                    log(f"chaos event {chaos_n} failed: {exc!r}")
                    self.events.append({"t": self.now(), "event": "failed", "error": repr(exc)})
                chaos_n += 1
                next_chaos = time.monotonic() + args.chaos_interval
        send_s = (sending_done_at or time.monotonic()) - self.t0
        awaiting = self.counts()["submitted"]
        expired_step: dict[str, Any] = {"submitted_before": awaiting}
        if self.alert_status() != "completed" and time.monotonic() < deadline:
            expired_step.update(self.expire_now())
        return {"send_s": round(send_s, 1), "expiry_step": expired_step,
                "deadline_hit": time.monotonic() >= deadline}  # fmt: skip

    def expire_now(self) -> dict[str, Any]:
        """Receipts lost with a restarted SMSC never come: the alert's expiry ends those rows."""
        assert self.database is not None
        with self.database.session() as s:
            s.execute(
                update(Alert)
                .where(Alert.id == self.alert_id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        done = subprocess.run(
            [*loa_command(), "reconcile", "--json"],
            env=self.env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        lines = done.stdout.strip().splitlines()
        report = json.loads(lines[-1]) if done.returncode == 0 and lines else done.stderr[-300:]
        log(f"expiry step: reconcile {report}; alert {self.alert_status()}")
        return {"reconcile": report, "status_after": self.alert_status()}

    # -- the end ----------------------------------------------------------------------------

    def stop_all(self) -> None:
        for child in [*self.senders.values(), self.control, *self.sims.values()]:
            if child is not None:
                with contextlib.suppress(Exception):
                    child.stop()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.database is not None:
            self.database.dispose()
        if self.pg is not None:
            self.pg.close()  # the cluster and its folder

    def audience(self) -> int:
        """Numbers in the carriers' active lists: what the snapshot should have made rows of."""
        assert self.database is not None
        with self.database.session() as s:
            return int(s.scalar(
                select(func.count())
                .select_from(Subscriber)
                .join(SubscriberList, SubscriberList.id == Subscriber.list_id)
                .where(SubscriberList.status == ListStatus.ACTIVE)
            ))  # fmt: skip

    def rows(self) -> list[tuple[str, str, str]]:
        assert self.database is not None
        with self.database.session() as s:
            return [
                (code, msisdn, state.value)
                for code, msisdn, state in s.execute(
                    select(Carrier.code, Delivery.msisdn, Delivery.state)
                    .join(Carrier, Carrier.id == Delivery.carrier_id)
                    .where(Delivery.alert_id == self.alert_id)
                )
            ]


def read_records(path: Path) -> tuple[list[float], Counter[str], set[str]]:
    """Arrival times of every submit_sm, accepted counts per number, numbers seen at all."""
    times: list[float] = []
    accepted: Counter[str] = Counter()
    seen: set[str] = set()
    if not path.exists():
        return times, accepted, seen
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a stop mid-write
            times.append(rec["time"])
            seen.add(rec["destination"])
            if rec["error"] is None:
                accepted[rec["destination"]] += 1
    times.sort()
    return times, accepted, seen


def windows_over(times: list[float], limit: int, width: float = 1.0) -> tuple[int, list[float]]:
    """The most arrivals in any window [t, t + width), and the start times of windows over
    `limit` (two pointers over sorted times)."""
    best = lo = 0
    over: list[float] = []
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        n = hi - lo + 1
        best = max(best, n)
        if n > limit and (not over or times[lo] - over[-1] >= width):
            over.append(times[lo])
    return best, over


def last_event(events: list[dict[str, Any]], t: float) -> str | None:
    before = [e for e in events if e["t"] <= t]
    if not before:
        return None
    e = before[-1]
    return f"{e['event']} {e.get('target', '')} at {e['t']} s".replace("  ", " ")


def analyse(soak: Soak, outcome: dict[str, Any], rss: dict[str, int]) -> dict[str, Any]:
    settings = soak.settings
    assert settings is not None
    rows = soak.rows()
    expected = soak.audience()
    states = Counter(state for _, _, state in rows)
    per_carrier_rows: dict[str, Counter[str]] = defaultdict(Counter)
    for code, _, state in rows:
        per_carrier_rows[code][state] += 1
    rates: dict[str, Any] = {}
    duplicates: dict[str, int] = {}
    ghosts = strangers = 0
    limits_ok = True
    for carrier in settings.carriers:
        code = carrier.code
        times, accepted, seen = read_records(soak.workdir / f"records-{code}.jsonl")
        duplicates[code] = sum(n - 1 for n in accepted.values() if n > 1)
        mine = {m: st for c, m, st in rows if c == code}
        # A row that claims the SMSC took it (submitted or a receipt's state) must be there.
        ghosts += sum(
            1 for m, st in mine.items()
            if st in ("submitted", "delivered", "undeliverable") and m not in accepted
        )  # fmt: skip
        strangers += len(seen - mine.keys())
        peak, over = windows_over(times, soak.limits[code])
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        limit = soak.limits[code]
        limits_ok &= peak <= limit
        rates[code] = {
            "limit": limit,
            "submits": len(times),
            "accepted": sum(accepted.values()),
            "achieved_per_s": round(len(times) / span, 1) if span else None,
            "max_in_1s": peak,
            "within_limit": peak <= limit,
            # When (s after the alert was approved) a window went over, and the chaos event
            # just before it.
            "over_limit_at": [
                {
                    "t": round(t - soak.t0_wall, 2),
                    "after": last_event(soak.events, t - soak.t0_wall),
                }
                for t in over[:10]
            ],
        }
    kills = [e for e in soak.events if e["event"] == "kill_sender"]
    drops = [e for e in soak.events if e["event"] == "drop_link"]

    def crash_bound(name: str) -> int:
        code = carrier_of(name)
        c = settings.carrier(code)
        block = max(1, min(100, soak.limits[code] // 25, c.window * c.binds))
        return c.window * c.binds + FLUSH_SIZE + block

    crashed = [e["target"] for e in kills] + [
        x["process"] for x in soak.exits if x["process"].startswith("sender:")
    ]
    bounds: Counter[str] = Counter({code: 0 for code in soak.limits})
    for name in crashed:
        bounds[carrier_of(name)] += crash_bound(name)
    for e in drops:
        code = carrier_of(e["target"])
        c = settings.carrier(code)
        bounds[code] += c.window * c.binds
    bound = sum(bounds.values())
    within = all(duplicates[c] <= bounds[c] for c in duplicates)
    open_rows = {s: n for s, n in states.items() if s not in FINAL}
    ideal = max(
        (sum(per_carrier_rows[c].values()) / soak.limits[c] for c in per_carrier_rows),
        default=0.0,
    )
    return {
        "recipients": len(rows),
        "audience_expected": expected,
        "final_states": {s: n for s, n in sorted(states.items()) if s in FINAL},
        "open_at_end": open_rows,
        "lost": (expected - len(rows)) + ghosts,
        "lost_detail": {
            "rows_missing": expected - len(rows),
            "final_without_smsc": ghosts,
            "numbers_not_in_audience": strangers,
        },
        "receipts_lost_with_smsc": outcome["expiry_step"].get("submitted_before", 0),
        "duplicates": sum(duplicates.values()),
        "duplicates_bound": bound,
        "duplicates_per_carrier": duplicates,
        "duplicates_bound_per_carrier": dict(bounds),
        "duplicates_within_bound": within,
        "duplicates_bound_rule": (
            "per sender crash: window*binds + flush_size (500) + one limiter block; "
            "per dropped link: window*binds; per PostgreSQL restart: 0 (a sender keeps its "
            "outcomes in memory and writes them once the database is back)"
        ),
        "limits_respected": limits_ok,
        "rates": rates,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sorted(rss.items())},
        "send_s": outcome["send_s"],
        "baseline_ideal_send_s": round(ideal, 1),
        "chaos": soak.events,
        "unexpected_exits": soak.exits,
        "deadline_hit": outcome["deadline_hit"],
        "expiry_step": outcome["expiry_step"],
        "alert_status": soak.alert_status(),
        "per_carrier_states": {c: dict(v) for c, v in sorted(per_carrier_rows.items())},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipients", type=int, default=1_000_000)
    p.add_argument(
        "--rate", type=int, default=2500, help="aggregate messages/s, split by audience share"
    )
    p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    p.add_argument("--deadline", type=float, help="hard limit in seconds (default: 6x ideal + 180)")
    p.add_argument(
        "--chaos-interval", type=float, help="seconds between events; 0 = none (default: ideal/9)"
    )
    p.add_argument("--receipt-delay", type=float, default=1.0)
    p.add_argument(
        "--pg-down", type=float, default=3.0, help="seconds PostgreSQL stays down per restart"
    )
    p.add_argument("--lease-seconds", type=int, default=20)
    p.add_argument("--reconcile-interval", type=float, default=15.0)
    p.add_argument("--batch-size", type=int, default=500, help="delivery.batch_size")
    p.add_argument(
        "--processes", type=int, default=1, help="sender processes per carrier of >= 500/s"
    )
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, records)")
    args = p.parse_args(argv)
    ideal = args.recipients / args.rate
    if args.deadline is None:
        args.deadline = 6 * ideal + 180
    if args.chaos_interval is None:
        args.chaos_interval = max(8.0, ideal / 9)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A `kill` stops the soak as Ctrl-C does: its workers, simulators, Redis and PostgreSQL
    # cluster are stopped on the way out (a background job started by a script ignores SIGINT).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="loa-soak-"))
    log(f"work folder {workdir}; {args.recipients:,} recipients at ~{args.rate:,}/s; "
        f"deadline {args.deadline:.0f} s; chaos every {args.chaos_interval:.0f} s")  # fmt: skip
    soak = Soak(args, workdir)
    sampler = RssSampler(soak.pids)
    started = time.monotonic()
    summary: dict[str, Any] = {}
    try:
        soak.setup()
        setup_s = time.monotonic() - started
        sampler.start()
        outcome = soak.run()
        sampler.halt.set()
        sampler.join(5)
        for child in [*soak.senders.values(), soak.control, *soak.sims.values()]:
            if child is not None:
                child.stop()  # simulators flush their record files as they stop
        summary = analyse(soak, outcome, dict(sampler.peak))
        summary = {
            "benchmark": "soak",
            "backend": "sqlite" if args.sqlite else "postgresql",
            "recipients_requested": args.recipients,
            **summary,
            "setup_s": round(setup_s, 1),
            "elapsed_s": round(time.monotonic() - started, 1),
            "cpus": os.cpu_count(),
            "load_average_1m": {
                "mean": round(sum(sampler.loads) / max(1, len(sampler.loads)), 2),
                "max": round(max(sampler.loads, default=0.0), 2),
            },
        }
    finally:
        sampler.halt.set()
        soak.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, ensure_ascii=False))
    ok = summary.get("lost") == 0 and not summary.get("open_at_end")
    ok = ok and summary.get("duplicates_within_bound", False)
    return 0 if ok and summary.get("limits_respected") else 1


if __name__ == "__main__":
    sys.exit(main())
