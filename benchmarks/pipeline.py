"""End to end: approval → fan-out → sender processes → SMSC simulators → every response stored.

Phase A (throughput): N recipients over 5 carriers, no rate limit, PostgreSQL (a private
database), one `loa worker --carrier` process per carrier plus the control worker, simulators
answering at once (`loa simulator --record`, one process per carrier). Measured from the
moment the fan-out job is enqueued to the moment no row is pending or queued (watched on the
live counters in Redis, confirmed by the database: polling the database would take its CPU
from the run). Baseline: bare
smpplib with a hand-written window against one of the same simulators, in the same run.

Phase B (limits): 300, 200, 100, 50 and 20 segments/s, with 1, 2 and 3 sender processes per
carrier, on an idle machine and with `--hogs` CPU-spinning processes beside (batches of
`--limited-batch-size`, so every process of a carrier has work); from the simulators' arrival
times, stamped by the kernel (`loa simulator --kernel-times`, the simulators at nice -10 where
allowed: a real SMSC does not share our CPU): the share of its limit each carrier got while it
had work, the most submit_sm in any sliding one-second window (every arrival starts a window;
a carrier taking long messages as one PDU, message_payload, receives half as many PDUs as
segments), the shortest span of limit + 1 arrivals, the same two as the simulator read them
(`_read`: with its own scheduling delay). Every run records the load average before and
after; the workers' warnings go to `workers-<run>.log` in the run's directory, and the
messages a sender wrote later than its slot allows (it warns once a batch) are counted per
carrier.

Progress on stderr; the last stdout line is one JSON object with `ratio`, `first_submit_s`,
`ceiling` (processes -> idle|hog -> {load_average, carrier -> {share, worst_1s, tightest_s,
worst_1s_read, tightest_read_s, written_late}}), `lost` and `duplicates`.

    .venv/bin/python benchmarks/pipeline.py [--recipients 200000] [--window 50]
    .venv/bin/python benchmarks/pipeline.py --skip-throughput --two-parts   # phase B only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
import smpplib.client
from rq import Queue, Worker
from sqlalchemy import select

from broadcast import keys, live
from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.models import (
    UNSENT_DELIVERY_STATES,
    Alert,
    AlertCategory,
    AlertStatus,
    Area,
    Carrier,
    DeliveryState,
    ListStatus,
    Role,
    SubscriberList,
    User,
)
from broadcast.redis_server import PrivateRedis
from broadcast.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wire import Capture, submit_times

CARRIERS = {  # code: (system_id, password, phase-B limit, sender processes in phase B)
    "viettel": ("loa_viettel", "demo-vt", 300, 3),
    "vinaphone": ("loa_vina", "demo-vn", 200, 1),
    "mobifone": ("loa_mobi", "demo-mb", 100, 1),
    "vietnamobile": ("loa_vnm", "demo-vnm", 50, 1),
    "gmobile": ("loa_gm", "demo-gm", 20, 1),
}
TEXT = "Canh bao: mua lon, nguy co lu quet. Di chuyen len cao. UBND tinh Ha Tinh."
TEXT_TWO_PARTS = (  # 200 GSM-7 characters: 153 + 47
    "Canh bao: mua lon keo dai, nguy co lu quet va sat lo dat o cac xa vung nui. "
    "Nguoi dan di chuyen len cao, khong qua suoi, theo doi thong tin cua chinh quyen dia "
    "phuong va goi 112 khi can cuu ho."
)
LOA = [sys.executable, "-c", "from broadcast.cli import main; main()"]
# Spins on a core until its parent is gone: a benchmark interrupted at any point (even between
# starting a hog and keeping its handle) leaves no hog behind on a shared machine.
SPIN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"


LATE_WARNING = re.compile(r"(\w+): (\d+) messages left more than")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def start_simulator(
    code: str, record: Path, *, kernel_times: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """`loa simulator --record` for one carrier; phase B's stamp arrivals with the kernel's
    receive times, so the simulator's own scheduling on a loaded machine is not counted."""
    system_id, password, *_ = CARRIERS[code]
    proc = subprocess.Popen(
        [*LOA, "simulator", "--port", "0", "--system-id", system_id, "--password", password,
         "--record", str(record), *(["--kernel-times"] if kernel_times else [])],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if kernel_times:
        smsc_priority(proc.pid)
    return proc, int(line.rsplit(":", 1)[1])


def smsc_priority(pid: int) -> None:
    """A real SMSC does not share our CPU: the simulators of the pacing runs get a better
    scheduling priority (nice -10, where allowed), so the kernel stamps their arrivals before
    a backlog forms (waiting data of one bind is merged and carries the latest stamp)."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, -10)
    except PermissionError:
        log("simulators at normal priority (no permission to raise it)")


def bare_smpplib(port: int, code: str, count: int, window: int) -> float:
    system_id, password, *_ = CARRIERS[code]
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id=system_id, password=password)
    sent = received = 0
    started = time.perf_counter()
    while received < count:
        while sent < count and sent - received < window:
            client.send_message(
                source_addr_ton=5, source_addr_npi=0, source_addr="UBND HaTinh",
                dest_addr_ton=1, dest_addr_npi=1, destination_addr=f"8400{sent:07d}",
                esm_class=0, data_coding=0, registered_delivery=1,
                short_message=TEXT.encode(),
            )  # fmt: skip
            sent += 1
        pdu = client.read_pdu()
        if pdu.command == "submit_sm_resp":
            received += 1
    elapsed = time.perf_counter() - started
    client.unbind()
    client.disconnect()
    return count / elapsed


def make_database(admin_url: str) -> tuple[Database, str]:
    name = f"loa_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    db = Database(url)
    db.upgrade()
    return db, name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def approve(db: Database, conn: redis.Redis, alert_id: int) -> None:
    """The approval: the alert becomes approved and its fan-out is queued, as the console does.
    (Seeded pending, so a control worker's start-up reconcile cannot start it early.)"""
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        alert.status = AlertStatus.APPROVED
        alert.approved_at = datetime.now(UTC)
    Queue(keys.CONTROL_QUEUE, connection=conn).enqueue(
        keys.FAN_OUT_JOB, alert_id, job_id=keys.fan_out_job_id(alert_id)
    )


def seed_alert(db: Database, audience: dict[str, list[str]], label: str, text: str = TEXT) -> int:
    """New active list versions holding exactly `audience` (COPY), and an alert awaiting
    approval."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "bench"))
        if user is None:
            user = User(username="bench", password_hash="x", role=Role.DRAFTER)
            s.add(user)
            s.flush()
        province = s.scalar(select(Area).where(Area.parent_id.is_(None)).order_by(Area.id))
        carriers = []
        lists: dict[str, int] = {}
        for code in audience:
            carrier = s.scalar(select(Carrier).where(Carrier.code == code))
            carriers.append(carrier)
            old = s.scalars(select(SubscriberList).where(SubscriberList.carrier_id == carrier.id))
            old = list(old)
            for row in old:
                row.status = ListStatus.SUPERSEDED
            lst = SubscriberList(
                carrier_id=carrier.id,
                version=len(old) + 1,
                status=ListStatus.ACTIVE,
                activated_at=datetime.now(UTC),
            )
            s.add(lst)
            s.flush()
            lists[code] = lst.id
        alert = Alert(identifier=f"bench-{label}-{uuid.uuid4().hex[:6]}", title=label, body=text,
                      category=AlertCategory.INFORMATION, status=AlertStatus.PENDING_APPROVAL,
                      brandname="UBND HaTinh", created_by=user.id, waive_daily_cap=True,
                      waive_quiet_hours=True)  # fmt: skip
        alert.areas = [province]
        alert.carriers = carriers
        s.add(alert)
        s.flush()
        alert_id = alert.id
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy("COPY subscribers (list_id, msisdn, id) FROM STDIN") as copy:
            for code, numbers in audience.items():
                for position, n in enumerate(numbers, 1):
                    copy.write_row((lists[code], n, position))
        raw.commit()
    finally:
        raw.close()
    return alert_id


def worker_env(
    base: dict[str, str], mps: dict[str, int], window: int, batch_size: int | None = None
) -> dict[str, str]:
    env = dict(base)
    if batch_size:
        env["LOA_DELIVERY__BATCH_SIZE"] = str(batch_size)
    for code in CARRIERS:
        env[f"LOA_CARRIERS__{code.upper()}__MPS"] = str(mps[code])
        env[f"LOA_CARRIERS__{code.upper()}__WINDOW"] = str(window)
    return env


def start_workers(
    env: dict[str, str], processes: dict[str, int], log_to: Path | None = None
) -> list[subprocess.Popen[bytes]]:
    """The control worker and `processes[code]` sender processes per carrier; their logs
    (warnings) to stderr, or appended to `log_to`."""
    out = log_to.open("ab") if log_to else None
    procs = [subprocess.Popen([*LOA, "worker", "--control"], env=env, stderr=out)]
    for code, n in processes.items():
        procs += [
            subprocess.Popen([*LOA, "worker", "--carrier", code], env=env, stderr=out)
            for _ in range(n)
        ]
    if out:
        out.close()
    return procs


def wait_workers(conn: Any, procs: list[subprocess.Popen[bytes]]) -> float:
    """Until every worker process has registered with RQ (binds open, listening); returns the
    seconds it took. Sixteen interpreters importing the application on two loaded cores take
    a while: 30 s plus 10 s a process, and a process that died says so at once."""
    started = time.monotonic()
    end = started + 30 + 10 * len(procs)
    while time.monotonic() < end:
        if Worker.count(connection=conn) >= len(procs):
            return time.monotonic() - started
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise SystemExit(f"a worker exited while starting: {dead[0]}")
        time.sleep(0.2)
    raise SystemExit(f"only {Worker.count(connection=conn)} of {len(procs)} workers started")


def load_average() -> float:
    """The one-minute load average (the machine is shared: every figure carries it)."""
    return round(os.getloadavg()[0], 2)


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_sent(db: Database, conn: redis.Redis, alert_id: int, total: int, timeout: float) -> float:
    """Until every row has left pending/queued; returns time.time() at that moment.

    Watched on the live counters in Redis (what the console shows; a sender moves them just
    after each bulk write) 20 times a second, and confirmed by the database once they say
    so: a count over the alert's rows, repeated until it agrees. Polling the database
    itself took a share of its CPU from the measured run, counted against Loa: the open rows
    five times a second were 0.15 busy backends of PostgreSQL on average (pg_stat_activity
    sampled every 20 ms, December 2), a GROUP BY over every row before that a sixth of a core
    (pg_stat_statements: 60 ms a poll at 60,000 rows)."""
    end = time.monotonic() + timeout
    states = {s.value for s in DeliveryState}
    unsent = {s.value for s in UNSENT_DELIVERY_STATES}
    last_log = 0.0
    written = open_rows = 0
    while time.monotonic() < end:
        pipe = conn.pipeline(transaction=False)
        for code in CARRIERS:
            pipe.hgetall(keys.alert_counters_key(alert_id, code))
        counts: Counter[str] = Counter()
        for counters in pipe.execute():
            for name, n in counters.items():
                if name.decode() in states:
                    counts[name.decode()] += int(n)
        written = sum(counts.values())
        open_rows = sum(counts[s] for s in unsent)
        if written >= total and not open_rows:
            with db.session() as s:
                stored = [c for per in live.state_counts(s, alert_id).values() for c in per.items()]
            written = sum(n for _, n in stored)
            open_rows = sum(n for state, n in stored if state in unsent)
            if written == total and not open_rows:
                return time.time()
            time.sleep(0.2)  # the counters ran ahead of the database: ask it again
        if time.monotonic() - last_log >= 2:
            log(f"  {written - open_rows:,}/{total:,} responses stored")
            last_log = time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"timed out with {open_rows} rows open")


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def max_in_window(times: list[float], width: float = 1.0) -> int:
    times = sorted(times)
    best = start = 0
    for i, t in enumerate(times):
        while times[start] <= t - width:
            start += 1
        best = max(best, i - start + 1)
    return best


def tightest(times: list[float], limit: int) -> float | None:
    """The shortest span of `limit + 1` consecutive arrivals (None with fewer): at least 1 s
    means no second above the limit; the slots put `window` (1 + the margin) between them,
    so `window` minus this is the arrival jitter the margin had to absorb."""
    times = sorted(times)
    spans = [b - a for a, b in zip(times, times[limit:], strict=False)]
    return round(min(spans), 4) if spans else None


def cpu_hogs(count: int) -> list[subprocess.Popen[bytes]]:
    """Processes spinning on the CPU beside the workers: an operator's busy machine."""
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]


def limited_run(
    db: Database,
    conn: redis.Redis,
    env: dict[str, str],
    tmp: Path,
    limits: dict[str, int],
    processes: int,
    args: argparse.Namespace,
    *,
    hogs: int,
) -> tuple[dict[str, Any], int, int]:
    """One alert over every carrier at its limit for `--limited-seconds`, `processes` senders
    per carrier: per carrier the achieved share of the limit and the worst sliding second of
    arrivals at the simulator (every arrival starts a window); then lost and duplicates."""
    label = f"{processes}p-{'hog' if hogs else 'idle'}"
    per_msg = 2 if args.two_parts else 1
    text = TEXT_TWO_PARTS if args.two_parts else TEXT
    audience = {
        code: [f"84{3 + i}{processes}{hogs}{n:06d}"
               for n in range(int(limits[code] * args.limited_seconds / per_msg))]
        for i, code in enumerate(CARRIERS)
    }  # fmt: skip
    marks = {code: len(read_records(tmp / f"{code}.jsonl")) for code in CARRIERS}
    settings = load_settings(env)
    segments_per_pdu = {
        code: per_msg if settings.carrier(code).gateway.concatenation == "payload" else 1
        for code in CARRIERS
    }
    alert_id = seed_alert(db, audience, label, text)
    total = sum(len(v) for v in audience.values())
    worker_log = tmp / f"workers-{label}.log"
    workers = start_workers(
        worker_env(env, limits, args.window, args.limited_batch_size),
        dict.fromkeys(CARRIERS, processes),
        worker_log,
    )
    hogged: list[subprocess.Popen[bytes]] = []
    ports = {code: int(env[f"LOA_CARRIERS__{code.upper()}__GATEWAY__PORT"]) for code in CARRIERS}
    capture = Capture(tmp / f"wire-{label}.pcap", list(ports.values())) if args.wire else None
    try:
        startup = wait_workers(conn, workers)
        hogged = cpu_hogs(hogs)  # beside the run, not in the way of 16 interpreters starting
        if capture:
            capture.start()
        time.sleep(0.5)
        load_before = load_average()
        approve(db, conn, alert_id)
        wait_sent(db, conn, alert_id, total, timeout=args.limited_seconds * 10 + 120)
        load_after = load_average()
    finally:
        stop_workers(workers)
        if capture:
            capture.stop()
        for hog in hogged:
            hog.kill()
            hog.wait()
    log(f"phase B {label}: {len(workers)} workers started in {startup:.1f} s, "
        f"load average {load_before} before, {load_after} after")  # fmt: skip
    figures: dict[str, Any] = {"load_average": [load_before, load_after]}
    wire = submit_times(capture.path, list(ports.values())) if capture else {}
    # Messages a sender wrote later than its slot allows (it tells the limiter, which logs
    # them when they left); the senders warn once a batch.
    late = Counter[str]()
    if worker_log.exists():
        for found in LATE_WARNING.finditer(worker_log.read_text(errors="replace")):
            late[found[1]] += int(found[2])
    lost = duplicates = 0
    for code in CARRIERS:
        recs = read_records(tmp / f"{code}.jsonl")[marks[code] :]
        accepted = [r for r in recs if r["error"] is None]
        times = sorted(r["time"] for r in accepted)
        read = sorted(r["read_at"] for r in accepted)
        pdu_limit = limits[code] // segments_per_pdu[code]
        wanted = set(audience[code])
        got = Counter(r["destination"] for r in accepted)
        lost += len(wanted - set(got))
        duplicates += sum(n - per_msg for d, n in got.items() if d in wanted and n > per_msg)
        span = times[-1] - times[0] if len(times) > 1 else 0
        # A carrier taking long messages as one PDU (message_payload) is charged per segment.
        rate = (len(times) - 1) * segments_per_pdu[code] / span if span else 0.0
        # Arrivals as the kernel stamped them (the SMSC's view), and as the simulator read them.
        figures[code] = {
            "share": round(rate / limits[code], 4),
            "worst_1s": max_in_window(times),
            "tightest_s": tightest(times, pdu_limit),
            "worst_1s_read": max_in_window(read),
            "tightest_read_s": tightest(read, pdu_limit),
            "written_late": late[code],
        }
        f = figures[code]
        on_wire = ""
        if capture:
            # Arrivals as the wire carried them: no receiver's scheduling, no merged stamps.
            sent = wire[ports[code]]
            if len(sent) != len(times):
                log(f"phase B {label}: {code}: {len(sent)} submit_sm on the wire, "
                    f"{len(times)} accepted")  # fmt: skip
            f["worst_1s_wire"] = max_in_window(sent)
            f["tightest_wire_s"] = tightest(sent, pdu_limit)
            on_wire = f" (on the wire: {f['worst_1s_wire']}, {f['tightest_wire_s']} s)"
        log(f"phase B {label}: {code}: {rate:,.1f}/s of {limits[code]} "
            f"({rate / limits[code]:.1%}), worst sliding second {f['worst_1s']} of {pdu_limit} "
            f"PDUs (as read: {f['worst_1s_read']}), {pdu_limit + 1} PDUs in at least "
            f"{f['tightest_s']} s (as read: {f['tightest_read_s']} s){on_wire}, "
            f"{f['written_late']} written late")  # fmt: skip
    return figures, lost, duplicates


def throughput_phase(
    db: Database,
    conn: redis.Redis,
    env: dict[str, str],
    tmp: Path,
    sims: dict[str, tuple[subprocess.Popen[str], int]],
    args: argparse.Namespace,
    result: dict[str, Any],
) -> tuple[int, int]:
    """Phase A and the bare smpplib baseline; returns lost and duplicates."""
    unlimited = dict.fromkeys(CARRIERS, 1_000_000)
    # -- phase A: throughput ------------------------------------------------------------
    per = args.recipients // len(CARRIERS)
    audience = {code: [f"84{3 + i}{n:08d}" for n in range(per)] for i, code in enumerate(CARRIERS)}
    alert_id = seed_alert(db, audience, "throughput")
    log(f"phase A: {per * len(CARRIERS):,} recipients seeded")
    workers = start_workers(worker_env(env, unlimited, args.window), dict.fromkeys(CARRIERS, 1))
    try:
        wait_workers(conn, workers)
        time.sleep(0.5)
        result["load_average_before"] = load_average()
        t0 = time.time()
        approve(db, conn, alert_id)
        t_end = wait_sent(db, conn, alert_id, per * len(CARRIERS), timeout=1800)
    finally:
        stop_workers(workers)
    result["load_average_after"] = load_average()
    loa_rate = per * len(CARRIERS) / (t_end - t0)
    log(f"phase A: Loa end to end {loa_rate:,.0f} msg/s ({t_end - t0:.1f} s)")
    first = None
    lost = duplicates = 0
    for code in CARRIERS:
        recs = [r for r in read_records(tmp / f"{code}.jsonl") if r["error"] is None]
        got = Counter(r["destination"] for r in recs)
        wanted = set(audience[code])
        lost += len(wanted - set(got))
        duplicates += sum(n - 1 for d, n in got.items() if d in wanted)
        times = [r["time"] for r in recs if r["destination"] in wanted]
        if times:
            first = min(first or times[0], min(times))
    result["loa_msgs_per_s"] = round(loa_rate, 1)
    result["first_submit_s"] = round(first - t0, 3) if first else None

    # -- baseline: bare smpplib, same simulator, same run ---------------------------------
    bare = bare_smpplib(sims["viettel"][1], "viettel", args.baseline_count, args.window)
    log(f"baseline: bare smpplib window {args.window}: {bare:,.0f} msg/s")
    result["smpplib_msgs_per_s"] = round(bare, 1)
    result["ratio"] = round(loa_rate / bare, 3)
    return lost, duplicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--baseline-count", type=int, default=40_000)
    parser.add_argument("--limited-seconds", type=float, default=10.0)
    parser.add_argument(
        "--limited-batch-size",
        type=int,
        default=100,
        help="phase B's batch size: small, so the sender processes of a carrier share its work",
    )
    parser.add_argument("--skip-limited", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true", help="phase B (and C) only")
    parser.add_argument(
        "--hogs",
        type=int,
        default=os.cpu_count() or 1,
        help="CPU-spinning processes beside the workers in the loaded runs",
    )
    parser.add_argument("--two-parts", action="store_true", help="phase B sends 2-part messages")
    parser.add_argument(
        "--wire",
        action="store_true",
        help="phase B also times arrivals on the wire: a tcpdump of the loopback (root)",
    )
    parser.add_argument(
        "--first-audience", type=int, default=0, help="also time the first submit for this many"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LOA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )  # fmt: skip
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="loa-bench-"))
    sims: dict[str, tuple[subprocess.Popen[str], int]] = {}
    redis_server = PrivateRedis(tmp / "redis").start()
    db, dbname = make_database(args.pg_url)
    workers: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {"benchmark": "pipeline", "recipients": args.recipients}
    try:
        for code in CARRIERS:
            sims[code] = start_simulator(code, tmp / f"{code}.jsonl")
        env = {**os.environ, "LOA_DATABASE_URL": db.url.replace("+psycopg", ""),
               "LOA_REDIS_URL": redis_server.url, "LOA_INSTANCE_PATH": str(tmp / "instance"),
               "LOA_LOG_LEVEL": "WARNING"}  # fmt: skip
        for code, (_, port) in sims.items():
            env[f"LOA_CARRIERS__{code.upper()}__GATEWAY__PORT"] = str(port)
        settings = load_settings(env)
        with db.session() as s:
            sync_carriers(s, settings)
            load_configured_areas(s, settings)

        conn = redis.Redis.from_url(redis_server.url)

        lost = duplicates = 0
        unlimited = dict.fromkeys(CARRIERS, 1_000_000)
        if not args.skip_throughput:
            lost, duplicates = throughput_phase(db, conn, env, tmp, sims, args, result)

        # -- phase B: limits, 1, 2 and 3 sender processes per carrier, idle and with CPU hogs --
        ceiling: dict[str, dict[str, dict[str, Any]]] = {}
        if not args.skip_limited:
            # Simulators that stamp arrivals with the kernel's receive times.
            for code, (proc, _) in sims.items():
                proc.terminate()
                proc.wait(10)
                sims[code] = start_simulator(code, tmp / f"{code}.jsonl", kernel_times=True)
                env[f"LOA_CARRIERS__{code.upper()}__GATEWAY__PORT"] = str(sims[code][1])
            limits = {code: c[2] for code, c in CARRIERS.items()}
            for load in ("idle", "hog"):
                for count in (1, 2, 3):
                    figures, lost_b, dup_b = limited_run(
                        db,
                        conn,
                        env,
                        tmp,
                        limits,
                        count,
                        args,
                        hogs=args.hogs if load == "hog" else 0,
                    )
                    lost += lost_b
                    duplicates += dup_b
                    ceiling.setdefault(str(count), {})[load] = figures
        # -- phase C: time to first submit with a big audience -----------------------------
        if args.first_audience:
            code = "viettel"
            audience_c = {code: [f"8497{n:07d}" for n in range(args.first_audience)]}
            mark = len(read_records(tmp / f"{code}.jsonl"))
            alert_c = seed_alert(db, audience_c, "first")
            log(f"phase C: {args.first_audience:,} recipients seeded")
            workers = start_workers(worker_env(env, unlimited, args.window), {code: 1})
            wait_workers(conn, workers)
            time.sleep(0.5)
            t0 = time.time()
            approve(db, conn, alert_c)
            first_c = None
            end = time.monotonic() + 120
            while first_c is None and time.monotonic() < end:
                recs = read_records(tmp / f"{code}.jsonl")[mark:]
                times = [r["time"] for r in recs if r["destination"].startswith("8497")]
                first_c = min(times) if times else None
                time.sleep(0.05)
            conn.set(keys.alert_control_key(alert_c), "cancelled")
            stop_workers(workers)
            workers = []
            result["first_submit_audience"] = args.first_audience
            result["first_submit_big_s"] = round(first_c - t0, 3) if first_c else None
            log(f"phase C: first submit after {result['first_submit_big_s']} s")
        result["ceiling"] = ceiling
        result["lost"] = lost
        result["duplicates"] = duplicates
    finally:
        stop_workers(workers)
        for proc, _ in sims.values():
            proc.terminate()
            proc.wait(10)
        db.dispose()
        drop_database(args.pg_url, dbname)
        redis_server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
