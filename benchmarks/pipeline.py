"""End to end: approval → fan-out → sender processes → SMSC simulators → every response stored.

Phase A (throughput): N recipients over 5 carriers, no rate limit, PostgreSQL (a private
database), one `loa worker --carrier` process per carrier plus the control worker, simulators
answering at once (`loa simulator --record`, one process per carrier). Measured from the
moment the fan-out job is enqueued to the moment no row is pending or queued. Baseline: bare
smpplib with a hand-written window against one of the same simulators, in the same run.

Phase B (limits): 300, 200, 100, 50 and 20 segments/s, 3 sender processes for the largest
carrier; from the simulators' arrival times: the share of its limit each carrier got while it
had work, and the messages above the limit in the worst one-second window.

Progress on stderr; the last stdout line is one JSON object with `ratio`, `achieved_share` and
`max_1s_over_limit` per carrier, `first_submit_s`, `lost` and `duplicates`.

    .venv/bin/python benchmarks/pipeline.py [--recipients 200000] [--window 50]
"""

from __future__ import annotations

import argparse
import json
import os
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
from sqlalchemy import func, select

from broadcast import keys
from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.models import (
    Alert,
    AlertCategory,
    AlertStatus,
    Area,
    Carrier,
    Delivery,
    DeliveryState,
    ListStatus,
    Role,
    SubscriberList,
    User,
)
from broadcast.redis_server import PrivateRedis
from broadcast.settings import load_settings

CARRIERS = {  # code: (system_id, password, phase-B limit, sender processes in phase B)
    "viettel": ("loa_viettel", "demo-vt", 300, 3),
    "vinaphone": ("loa_vina", "demo-vn", 200, 1),
    "mobifone": ("loa_mobi", "demo-mb", 100, 1),
    "vietnamobile": ("loa_vnm", "demo-vnm", 50, 1),
    "gmobile": ("loa_gm", "demo-gm", 20, 1),
}
TEXT = "Canh bao: mua lon, nguy co lu quet. Di chuyen len cao. UBND tinh Ha Tinh."
LOA = [sys.executable, "-c", "from broadcast.cli import main; main()"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def start_simulator(code: str, record: Path) -> tuple[subprocess.Popen[str], int]:
    system_id, password, *_ = CARRIERS[code]
    proc = subprocess.Popen(
        [*LOA, "simulator", "--port", "0", "--system-id", system_id, "--password", password,
         "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.rsplit(":", 1)[1])


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
    Queue(keys.CONTROL_QUEUE, connection=conn).enqueue(keys.FAN_OUT_JOB, alert_id)


def seed_alert(db: Database, audience: dict[str, list[str]], label: str) -> int:
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
        alert = Alert(identifier=f"bench-{label}-{uuid.uuid4().hex[:6]}", title=label, body=TEXT,
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


def worker_env(base: dict[str, str], mps: dict[str, int], window: int) -> dict[str, str]:
    env = dict(base)
    for code in CARRIERS:
        env[f"LOA_CARRIERS__{code.upper()}__MPS"] = str(mps[code])
        env[f"LOA_CARRIERS__{code.upper()}__WINDOW"] = str(window)
    return env


def start_workers(env: dict[str, str], processes: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    procs = [subprocess.Popen([*LOA, "worker", "--control"], env=env)]
    for code, n in processes.items():
        procs += [subprocess.Popen([*LOA, "worker", "--carrier", code], env=env) for _ in range(n)]
    return procs


def wait_workers(conn: Any, count: int, timeout: float = 60) -> None:
    """Until every worker process has registered with RQ (binds open, listening)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if Worker.count(connection=conn) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"only {Worker.count(connection=conn)} of {count} workers started")


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_sent(db: Database, alert_id: int, total: int, timeout: float) -> float:
    """Poll until every row has left pending/queued; returns time.time() at that moment."""
    end = time.monotonic() + timeout
    last = -1
    while time.monotonic() < end:
        with db.session() as s:
            rows = dict(
                s.execute(
                    select(Delivery.state, func.count())
                    .where(Delivery.alert_id == alert_id)
                    .group_by(Delivery.state)
                ).all()
            )
        open_rows = rows.get(DeliveryState.PENDING, 0) + rows.get(DeliveryState.QUEUED, 0)
        done = sum(rows.values()) - open_rows
        if sum(rows.values()) == total and open_rows == 0:
            return time.time()
        if done // 10000 != last // 10000:
            log(f"  {done:,}/{total:,} responses stored")
        last = done
        time.sleep(0.2)
    raise SystemExit(f"timed out with rows {rows}")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--baseline-count", type=int, default=40_000)
    parser.add_argument("--limited-seconds", type=float, default=10.0)
    parser.add_argument("--skip-limited", action="store_true")
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

        # -- phase A: throughput ------------------------------------------------------------
        per = args.recipients // len(CARRIERS)
        audience = {
            code: [f"84{3 + i}{n:08d}" for n in range(per)] for i, code in enumerate(CARRIERS)
        }
        alert_id = seed_alert(db, audience, "throughput")
        log(f"phase A: {per * len(CARRIERS):,} recipients seeded")
        unlimited = dict.fromkeys(CARRIERS, 1_000_000)
        workers = start_workers(worker_env(env, unlimited, args.window), dict.fromkeys(CARRIERS, 1))
        wait_workers(conn, len(workers))
        time.sleep(0.5)
        t0 = time.time()
        approve(db, conn, alert_id)
        t_end = wait_sent(db, alert_id, per * len(CARRIERS), timeout=1800)
        stop_workers(workers)
        workers = []
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

        # -- phase B: limits ----------------------------------------------------------------
        share: dict[str, float] = {}
        over: dict[str, int] = {}
        if not args.skip_limited:
            limits = {code: c[2] for code, c in CARRIERS.items()}
            seconds = args.limited_seconds
            audience_b = {
                code: [f"84{3 + i}9{n:07d}" for n in range(int(limits[code] * seconds))]
                for i, code in enumerate(CARRIERS)
            }
            marks = {code: len(read_records(tmp / f"{code}.jsonl")) for code in CARRIERS}
            alert_b = seed_alert(db, audience_b, "limits")
            total_b = sum(len(v) for v in audience_b.values())
            workers = start_workers(
                worker_env(env, limits, args.window), {c: v[3] for c, v in CARRIERS.items()}
            )
            wait_workers(conn, len(workers))
            time.sleep(0.5)
            approve(db, conn, alert_b)
            wait_sent(db, alert_b, total_b, timeout=args.limited_seconds * 10 + 120)
            stop_workers(workers)
            workers = []
            for code in CARRIERS:
                recs = read_records(tmp / f"{code}.jsonl")[marks[code] :]
                times = sorted(r["time"] for r in recs if r["error"] is None)
                wanted = set(audience_b[code])
                got = Counter(r["destination"] for r in recs if r["error"] is None)
                lost += len(wanted - set(got))
                duplicates += sum(n - 1 for d, n in got.items() if d in wanted)
                span = times[-1] - times[0] if len(times) > 1 else 0
                rate = (len(times) - 1) / span if span else 0.0
                share[code] = round(rate / limits[code], 4)
                over[code] = max(0, max_in_window(times) - limits[code])
                log(f"phase B: {code}: {rate:,.1f}/s of {limits[code]} "
                    f"({share[code]:.1%}), worst 1 s over limit: {over[code]}")  # fmt: skip
        # -- phase C: time to first submit with a big audience -----------------------------
        if args.first_audience:
            code = "viettel"
            audience_c = {code: [f"8497{n:07d}" for n in range(args.first_audience)]}
            mark = len(read_records(tmp / f"{code}.jsonl"))
            alert_c = seed_alert(db, audience_c, "first")
            log(f"phase C: {args.first_audience:,} recipients seeded")
            workers = start_workers(worker_env(env, unlimited, args.window), {code: 1})
            wait_workers(conn, len(workers))
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
        result["achieved_share"] = share
        result["max_1s_over_limit"] = over
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
