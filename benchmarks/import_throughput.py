"""Import throughput: a generated N-row CSV list into PostgreSQL (and SQLite) through
subscriber_import.service.import_file, against a bare baseline measured in the same run
(pandas.read_csv of the same file + COPY of the same rows into a bare table).

The PostgreSQL pair (baseline, then ours) runs --repeat times, each in a fresh database, and
`ratio` is median(ours) / median(baseline): the machine is shared, one pair is noisy.
Peak memory is measured in a child process importing --rss-rows rows (the kernel's high-water
mark of it and of the process the imports' fork server starts for the import,
subscriber_import.isolation). The cost of that child process is measured too: each repeat also
imports the file with the work run inline (the same code without the child process, patched in
here only), `inline_runs_s` against `postgres_runs_s`.
Progress goes to stderr; the last stdout line is one JSON object.

    .venv/bin/python benchmarks/import_throughput.py --rows 1000000 --rss-rows 2000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcast.areas import load_configured_areas  # noqa: E402
from broadcast.bootstrap import sync_carriers  # noqa: E402
from broadcast.db import Database  # noqa: E402
from broadcast.settings import load_settings  # noqa: E402
from subscriber_import import isolation, service  # noqa: E402
from subscriber_import.service import import_file  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    prefixes = np.array(["091", "094", "088", "083", "0162", "+84 98", "086", "032"])
    pick = rng.integers(0, len(prefixes), rows)
    body = rng.permutation(10_000_000)[: rows % 10_000_000] if rows <= 10_000_000 else None
    body = rng.integers(0, 10_000_000, rows) if body is None or len(body) < rows else body
    numbers = np.char.add(prefixes[pick], np.char.zfill(body.astype(str), 7))
    areas = rng.choice(np.array(["18073", "18100", "18406", "Xã Can Lộc", "18094", ""]), rows)
    pd.DataFrame({"Số thuê bao": numbers, "Huyện": areas}).to_csv(path, index=False)


def settings_for(url: str, instance: Path):  # type: ignore[no-untyped-def]
    return load_settings({"LOA_INSTANCE_PATH": str(instance)}, overrides={"database_url": url})


def prepare(url: str, instance: Path):  # type: ignore[no-untyped-def]
    settings = settings_for(url, instance)
    db = Database(settings.sqlalchemy_url)
    db.upgrade()
    with db.session() as session:
        sync_carriers(session, settings)
        load_configured_areas(session, settings)
    return db, settings


def baseline_pg(conninfo: str, path: Path) -> float:
    start = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    data = frame.to_csv(sep="\t", header=False, index=False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE bare (msisdn text, area text)")
        with cur.copy("COPY bare (msisdn, area) FROM STDIN") as copy:
            copy.write(data)
        conn.commit()
    return time.perf_counter() - start


def ours(url: str, instance: Path, path: Path) -> tuple[float, dict]:
    db, settings = prepare(url, instance)
    start = time.perf_counter()
    report = import_file(
        db, settings, carrier_code="vinaphone", kind="list", path=path,
        progress=lambda done, total: log(f"  {done:,} rows"),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    db.dispose()
    return seconds, report.to_json()


def inline(url: str, instance: Path, path: Path) -> tuple[float, dict]:
    """`ours` with the import's work run in this process instead of a forked child."""
    isolated = service.run_limited
    service.run_limited = lambda work, progress=None, **_: work(progress)  # type: ignore[assignment]
    try:
        return ours(url, instance, path)
    finally:
        service.run_limited = isolated


def _high_water_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def child(url: str, instance: str, path: str) -> None:
    # The import runs in a process of the imports' fork server (a grandchild, never reaped by
    # this one, so RUSAGE_CHILDREN misses it): its kernel high-water mark is sampled instead.
    isolation.warm_up()
    stop, peaks = threading.Event(), [0.0]

    def sample() -> None:
        while not stop.wait(0.01):
            for proc in psutil.Process().children(recursive=True):
                with contextlib.suppress(OSError, IndexError, psutil.Error):
                    peaks[0] = max(peaks[0], _high_water_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        seconds, report = ours(url, Path(instance), Path(path))
    finally:
        stop.set()
        sampler.join()
    # VmHWM, not RUSAGE_SELF: Linux carries the peak of the process this one was exec'd from
    # (a fork of the big benchmark process) into RUSAGE_SELF.
    own = _high_water_mb(os.getpid())
    forked = peaks[0]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": round(max(own, forked), 1),
                "parent_rss_mb": round(own, 1),
                "import_child_rss_mb": round(forked, 1),
                "accepted": report["accepted"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rss-rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    isolation.warm_up()  # as an imports worker does at start: the first run does not pay it
    work = Path(tempfile.mkdtemp(prefix="loa-bench-"))
    dbnames: list[str] = []
    result: dict = {"rows": args.rows}
    try:
        csv_path = work / "list.csv"
        log(f"writing {args.rows:,} rows to {csv_path}")
        make_csv(csv_path, args.rows)
        bases: list[float] = []
        runs: list[float] = []
        inlines: list[float] = []
        for i in range(args.repeat):
            dbname = f"loa_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            dbnames.append(dbname)
            conninfo = ADMIN.rsplit("/", 1)[0] + "/" + dbname
            url = conninfo.replace("postgresql://", "postgresql+psycopg://")
            log(f"run {i + 1}/{args.repeat} baseline: pandas.read_csv + COPY into a bare table")
            bases.append(baseline_pg(conninfo, csv_path))
            log(f"  {bases[-1]:.2f} s")
            log(f"run {i + 1}/{args.repeat} ours on PostgreSQL")
            seconds, report = ours(url, work / f"pg{i}", csv_path)
            runs.append(seconds)
            log(f"  {seconds:.2f} s, {report['accepted']:,} accepted")
            log(f"run {i + 1}/{args.repeat} ours inline (no child process), fresh database")
            inline_db = f"loa_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{inline_db}"')
            dbnames.append(inline_db)
            inline_url = url.rsplit("/", 1)[0] + "/" + inline_db
            inlines.append(inline(inline_url, work / f"inline{i}", csv_path)[0])
            log(f"  {inlines[-1]:.2f} s")
        base, pg_seconds = statistics.median(bases), statistics.median(runs)
        result.update(
            baseline_runs_s=[round(x, 2) for x in bases],
            postgres_runs_s=[round(x, 2) for x in runs],
            ratios=[round(o / b, 2) for o, b in zip(runs, bases, strict=True)],
            inline_runs_s=[round(x, 2) for x in inlines],
            child_overhead_s=round(pg_seconds - statistics.median(inlines), 2),
        )
        log("ours on SQLite")
        lite_seconds, _ = ours(f"sqlite:///{work / 'loa.db'}", work / "lite", csv_path)
        log(f"  {lite_seconds:.2f} s")
        result.update(
            baseline_s=round(base, 2),
            postgres_s=round(pg_seconds, 2),
            sqlite_s=round(lite_seconds, 2),
            ratio=round(pg_seconds / base, 2),
            sqlite_ratio=round(lite_seconds / base, 2),
            rows_per_s_postgres=round(args.rows / pg_seconds),
            rows_per_s_sqlite=round(args.rows / lite_seconds),
            rows_per_s_baseline=round(args.rows / base),
            accepted=report["accepted"],
        )
        big = work / "big.csv"
        log(f"peak memory: {args.rss_rows:,} rows imported into PostgreSQL in a child process")
        make_csv(big, args.rss_rows)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("TRUNCATE subscribers, subscriber_lists, imports CASCADE")
        out = subprocess.run(
            [sys.executable, __file__, "--child", url, str(work / "rss"), str(big)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        measured = json.loads(out.stdout.strip().splitlines()[-1])
        result.update(rss_rows=args.rss_rows, peak_rss_mb=measured["peak_rss_mb"],
                      parent_rss_mb=measured["parent_rss_mb"],
                      import_child_rss_mb=measured["import_child_rss_mb"],
                      rss_import_s=round(measured["seconds"], 2))  # fmt: skip
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            for dbname in dbnames:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        for item in sorted(work.rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
        work.rmdir()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
