"""The fan-out at national scale on PostgreSQL: --rows generated subscribers (default
20,000,000), one alert approved for the whole province, the real fan-out job
(`workers.jobs.fan_out`, run by a `loa worker --control` process: `broadcast.deliveries.fan_out`
committing and enqueuing chunk by chunk) while one real sender (`loa worker --carrier viettel`)
sends to an SMSC simulator with no rate limit for --send-seconds.

Measured, from the approval (the fan-out job enqueued):
- `first_chunk_s`: the first queued row visible to another connection (the first chunk
  committed: the "first submit" proxy, target ≤ 1 s), and `first_submit_s`: the first
  submit_sm at the simulator;
- `fanout_s` and `rows_per_s`: snapshot + numbering + enqueue of every row (the job's end);
- `rss_mb`: every process involved (control worker, sender, simulator, Redis, the private
  database's PostgreSQL backends, this script), sampled from /proc once a second: first, median
  and peak, so "flat" can be read off;
- `db_bytes_per_million`: pg_total_relation_size of deliveries (heap, indexes, TOAST) per
  million deliveries; `redis_used_mb`: Redis memory holding the queued jobs and batch marks.
Baseline in the same run and the same database: one bare `INSERT … SELECT` of the same rows
into a copy of the deliveries table with the same indexes (what the database alone does).

The subscribers are written by COPY (the importer's bulk writer, as benchmarks/audience_count.py
generates them: three carriers, every commune, 2 % ported numbers) into a private database
created and dropped by the script. Bounded: at most 50,000,000 rows, --timeout seconds for the
fan-out (past it the fan-out is stopped and the rows written so far are measured: `complete`
false, `deliveries` and `rows_per_s` of that part). Progress on stderr; the last stdout line is
one JSON object.

    .venv/bin/python benchmarks/fanout_scale.py                    # 20,000,000
    .venv/bin/python benchmarks/fanout_scale.py --rows 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audience_count import SHARES, generate  # noqa: E402
from pipeline import LOA, read_records, start_simulator, wait_workers  # noqa: E402
from scratch import ADMIN  # noqa: E402

from broadcast import keys  # noqa: E402
from broadcast.areas import load_configured_areas  # noqa: E402
from broadcast.bootstrap import sync_carriers  # noqa: E402
from broadcast.db import Database  # noqa: E402
from broadcast.models import (  # noqa: E402
    Alert,
    AlertCategory,
    AlertStatus,
    Area,
    Carrier,
    Role,
    User,
)
from broadcast.redis_server import PrivateRedis  # noqa: E402
from broadcast.settings import load_settings  # noqa: E402

MAX_ROWS = 50_000_000
SENDER = "viettel"
TEXT = "Canh bao: mua lon, nguy co lu quet. Di chuyen len cao. UBND tinh Ha Tinh."


def log(msg: str) -> None:
    print(f"[fanout {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class RssSampler(threading.Thread):
    """Resident memory of named processes, from /proc (psutil) once a second."""

    def __init__(self, pids: Any) -> None:
        super().__init__(daemon=True, name="rss")
        self.pids = pids  # callable -> {name: [pid, ...]}
        self.samples: dict[str, list[int]] = defaultdict(list)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            with contextlib.suppress(Exception):
                for name, pids in self.pids().items():
                    total = 0
                    for pid in pids:
                        with contextlib.suppress(psutil.Error):
                            total = max(total, psutil.Process(pid).memory_info().rss)
                    if total:
                        self.samples[name].append(total)

    def summary(self) -> dict[str, dict[str, float]]:
        mb = 1024 * 1024
        return {
            name: {
                "first": round(v[0] / mb, 1),
                "median": round(statistics.median(v) / mb, 1),
                "peak": round(max(v) / mb, 1),
                "samples": len(v),
            }
            for name, v in self.samples.items()
        }


def seed_alert(db: Database) -> int:
    """An alert for the whole province on the generated carriers, awaiting approval."""
    with db.session() as s:
        user = User(username="bench", password_hash="x", role=Role.DRAFTER)
        s.add(user)
        s.flush()
        province = s.scalar(select(Area).where(Area.parent_id.is_(None)).order_by(Area.id))
        carriers = list(s.scalars(select(Carrier).where(Carrier.code.in_(list(SHARES)))))
        alert = Alert(identifier=f"bench-scale-{uuid.uuid4().hex[:6]}", title="scale", body=TEXT,
                      category=AlertCategory.INFORMATION, status=AlertStatus.PENDING_APPROVAL,
                      brandname="UBND HaTinh", created_by=user.id, waive_daily_cap=True,
                      waive_quiet_hours=True)  # fmt: skip
        alert.areas = [province]
        alert.carriers = carriers
        s.add(alert)
        s.flush()
        return alert.id


def approve(db: Database, conn: redis.Redis, alert_id: int, timeout: int) -> Job:
    """The approval as the console does it (status, then the fan-out job on the control
    queue), with the job timeout the console uses for a fan-out."""
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        alert.status = AlertStatus.APPROVED
        alert.approved_at = datetime.now(UTC)
    return Queue(keys.CONTROL_QUEUE, connection=conn).enqueue(
        keys.FAN_OUT_JOB,
        alert_id,
        job_id=keys.fan_out_job_id(alert_id),
        job_timeout=keys.FAN_OUT_JOB_TIMEOUT,
    )


def first_queued(dsn: str, alert_id: int, timeout: float) -> float:
    """time.time() when a queued row of the alert is first visible (committed)."""
    end = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < end:
            row = conn.execute(
                "SELECT 1 FROM deliveries WHERE alert_id = %s LIMIT 1", (alert_id,)
            ).fetchone()
            if row:
                return time.time()
            time.sleep(0.01)
    raise SystemExit("no chunk committed in time")


def bare_insert(db: Database, alert_id: int) -> tuple[float, int]:
    """The baseline: every active-list subscriber as one row, one INSERT … SELECT into a copy
    of deliveries with its indexes and defaults (no numbering, no enqueue)."""
    with db.session() as s:
        s.execute(text("SET LOCAL jit = off"))
        s.execute(text("CREATE TABLE bare_deliveries (LIKE deliveries INCLUDING ALL)"))
        start = time.perf_counter()
        rows = s.execute(
            text(
                "INSERT INTO bare_deliveries (alert_id, carrier_id, msisdn, area_id, batch_no,"
                " state, parts, parts_final, attempts, queued_at)"
                " SELECT DISTINCT ON (s.msisdn) :a, l.carrier_id, s.msisdn, s.area_id, 0,"
                " 'queued', 1, 0, 0, now()"
                " FROM subscribers s JOIN subscriber_lists l ON l.id = s.list_id"
                " WHERE l.status = 'active' ORDER BY s.msisdn, l.activated_at DESC"
            ),
            {"a": alert_id},
        ).rowcount
        seconds = time.perf_counter() - start
    with db.session() as s:
        s.execute(text("DROP TABLE bare_deliveries"))
    return seconds, rows


def sizes(db: Database) -> dict[str, int]:
    with db.session() as s:
        row = s.execute(
            text(
                "SELECT pg_total_relation_size('deliveries'), pg_relation_size('deliveries'),"
                " pg_indexes_size('deliveries'), (SELECT count(*) FROM deliveries)"
            )
        ).one()
    return {"total": row[0], "heap": row[1], "indexes": row[2], "rows": row[3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--send-seconds", type=float, default=30.0, help="the sender runs so long")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds for the fan-out")
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        parser.error(f"--rows must be between 1 and {MAX_ROWS:,}")
    dbname = f"loa_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    dsn = ADMIN.rsplit("/", 1)[0] + "/" + dbname
    tmp = Path(tempfile.mkdtemp(prefix="loa-scale-"))
    procs: dict[str, subprocess.Popen[Any]] = {}
    redis_server = PrivateRedis(tmp / "redis").start()
    db = Database(dsn)
    sampler: RssSampler | None = None
    result: dict[str, Any] = {"benchmark": "fanout_scale", "rows": args.rows}
    try:
        sim, port = start_simulator(SENDER, tmp / f"{SENDER}.jsonl")
        procs["simulator"] = sim
        env = {**os.environ, "LOA_DATABASE_URL": dsn, "LOA_REDIS_URL": redis_server.url,
               "LOA_INSTANCE_PATH": str(tmp / "instance"), "LOA_LOG_LEVEL": "WARNING",
               f"LOA_CARRIERS__{SENDER.upper()}__GATEWAY__PORT": str(port),
               f"LOA_CARRIERS__{SENDER.upper()}__MPS": "1000000"}  # fmt: skip
        settings = load_settings(env)
        db.upgrade()
        with db.session() as s:
            sync_carriers(s, settings)
            load_configured_areas(s, settings)
        log(f"generating {args.rows:,} subscribers by COPY")
        start = time.perf_counter()
        lists = generate(db, args.rows)
        result["generate_s"] = round(time.perf_counter() - start, 1)
        with db.session() as s:
            s.execute(text("ANALYZE"))
        alert_id = seed_alert(db)
        conn = redis.Redis.from_url(redis_server.url)
        with (tmp / "control.log").open("ab") as out:
            procs["control worker"] = subprocess.Popen(
                [*LOA, "worker", "--control"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        with (tmp / "sender.log").open("ab") as out:
            procs["sender"] = subprocess.Popen(
                [*LOA, "worker", "--carrier", SENDER], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_workers(conn, 2)
        time.sleep(1.0)  # the control worker's start-up reconcile

        def pids() -> dict[str, list[int]]:
            named = {name: [p.pid] for name, p in procs.items() if p.poll() is None}
            named["redis"] = [
                p.pid
                for p in psutil.process_iter(["cmdline"])
                if f":{redis_server.port}" in " ".join(p.info["cmdline"] or [])
            ]
            named["script"] = [os.getpid()]
            with psycopg.connect(ADMIN, autocommit=True) as c:
                named["postgres backend (largest)"] = [
                    r[0]
                    for r in c.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)
                    )
                ]
            return named

        sampler = RssSampler(pids)
        sampler.start()
        t0 = time.time()
        job = approve(db, conn, alert_id, args.timeout)
        log(f"approved alert {alert_id}: fan-out of {sum(lists.values()):,} subscribers")
        t_first = first_queued(dsn, alert_id, 60)
        result["first_chunk_s"] = round(t_first - t0, 3)
        log(f"first chunk committed after {t_first - t0:.3f} s")
        stopped_sender = False
        end = time.monotonic() + args.timeout
        status = None
        while time.monotonic() < end:
            status = job.get_status(refresh=True)
            if status in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED):
                break
            if not stopped_sender and time.time() - t0 > args.send_seconds:
                procs["sender"].terminate()
                procs["sender"].wait(30)
                stopped_sender = True
                log("sender stopped")
            time.sleep(0.2)
        t_end = time.time()
        result["complete"] = status == JobStatus.FINISHED
        if status in (JobStatus.FAILED, JobStatus.STOPPED):
            raise SystemExit(f"fan-out job {status} after {t_end - t0:.0f} s: see {tmp}")
        if not result["complete"]:
            # Past --timeout: stop the fan-out where it is and report the rows written so far
            # (the rate is that of a partial run; extrapolate the rest).
            log(f"fan-out still running after {args.timeout} s: stopping it")
            procs["control worker"].kill()
            procs["control worker"].wait(30)
        if not stopped_sender:
            while time.time() - t0 < args.send_seconds:
                time.sleep(0.2)
            procs["sender"].terminate()
            procs["sender"].wait(30)
        sampler.halt.set()
        sampler.join()
        written = job.return_value() if result["complete"] else None
        result["fanout_s"] = round(t_end - t0, 1)
        size = sizes(db)
        result["deliveries"] = size["rows"]
        result["rows_per_s"] = round(size["rows"] / (t_end - t0))
        result["job"] = written
        records = [r for r in read_records(tmp / f"{SENDER}.jsonl") if r["error"] is None]
        result["first_submit_s"] = (
            round(min(r["time"] for r in records) - t0, 3) if records else None
        )
        result["submits_in_send_window"] = len(records)
        per_m = 1_000_000 / max(size["rows"], 1)
        result["db_bytes_per_million"] = {
            k: round(v * per_m) for k, v in size.items() if k != "rows"
        }
        result["db_total_gb"] = round(size["total"] / 1e9, 2)
        info = conn.info("memory")
        result["redis_used_mb"] = round(info["used_memory"] / 1024 / 1024, 1)
        result["redis_batch_marks"] = conn.hlen(keys.alert_batches_key(alert_id))
        result["rss_mb"] = sampler.summary()
        log("baseline: bare INSERT … SELECT of the same rows")
        bare_s, bare_rows = bare_insert(db, alert_id)
        result["baseline"] = {"rows": bare_rows, "seconds": round(bare_s, 1),
                              "rows_per_s": round(bare_rows / bare_s)}  # fmt: skip
        result["ratio_to_bare"] = round(result["rows_per_s"] / result["baseline"]["rows_per_s"], 3)
        result["first_chunk_within_1s"] = result["first_chunk_s"] <= 1.0
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result))
        shutil.rmtree(tmp, ignore_errors=True)  # kept when the run failed: its workers' logs
    finally:
        if sampler is not None:
            sampler.halt.set()
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        redis_server.stop()
        db.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
