"""The draft preview's audience count at province scale on PostgreSQL: the kept per-list,
per-area counts (what the console uses) against the scan of the subscribers it replaced
(`audience_counts(kept=False)`), in the same run and the same database.

--rows generated subscribers (default 2,000,000) are spread over three carriers' active lists
and every commune of Hà Tĩnh (some with no area, 2 % of the numbers in two lists: number
portability), written with COPY by the importer's own bulk writer, then counted the way the
import counts them (`refresh_area_counts`, timed: the import pays it once). Each count runs
--repeat times; the medians are reported. Bounded: at most 5,000,000 rows and --timeout
seconds per statement. Progress goes to stderr; the last stdout line is one JSON object.

    .venv/bin/python benchmarks/audience_count.py --rows 2000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import province_database, timed  # noqa: E402

from broadcast import audience  # noqa: E402
from broadcast.db import Database  # noqa: E402
from broadcast.models import Area, Carrier, ListStatus, SubscriberList  # noqa: E402
from subscriber_import.service import _BulkWriter  # noqa: E402

MAX_ROWS = 5_000_000
SHARES = {"viettel": 0.5, "vinaphone": 0.3, "mobifone": 0.2}
PREFIX = {"viettel": 84960000000, "vinaphone": 84910000000, "mobifone": 84930000000}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def generate(db: Database, rows: int) -> dict[str, int]:
    rng = np.random.default_rng(13)
    with db.session() as session:
        areas = np.array(
            session.scalars(select(Area.id).where(Area.parent_id.is_not(None))).all(),
            dtype=np.int64,
        )
        carriers = dict(session.execute(select(Carrier.code, Carrier.id)).all())
    written: dict[str, int] = {}
    shared = None
    for n, (code, share) in enumerate(SHARES.items()):
        count = int(rows * share)
        numbers = PREFIX[code] + rng.permutation(10_000_000)[:count].astype(np.int64)
        if shared is not None:  # 2 % ported: also in the previous carrier's (older) list
            numbers[: len(shared)] = shared
        shared = numbers[: count // 50].copy()
        area_ids = rng.choice(areas, count)
        area_ids[rng.random(count) < 0.03] = -1  # no area
        with db.session() as session:
            at = datetime.now(UTC) - timedelta(minutes=10 - n)
            lst = SubscriberList(
                carrier_id=carriers[code],
                version=1,
                status=ListStatus.ACTIVE,
                row_count=count,
                created_at=at,
                activated_at=at,
            )
            session.add(lst)
            session.flush()
            writer = _BulkWriter(session, lst.id)
            writer.add(numbers, area_ids)
            start = time.perf_counter()
            writer.finish()
            log(f"  {code}: {count:,} rows by COPY in {time.perf_counter() - start:.1f} s")
        written[code] = count
    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per statement")
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        parser.error(f"--rows must be between 1 and {MAX_ROWS:,}")
    with province_database() as (db, _settings):
        log(f"generating {args.rows:,} subscribers")
        lists = generate(db, args.rows)
        with db.session() as session:
            session.execute(text(f"SET LOCAL statement_timeout = {args.timeout * 1000}"))
            start = time.perf_counter()
            kept_rows = audience.refresh_area_counts(session)
            refresh_s = time.perf_counter() - start
        log(f"kept counts: {kept_rows:,} rows in {refresh_s:.2f} s")
        with db.session() as session:
            session.execute(text("ANALYZE"))
        carriers = list(SHARES)
        results: dict[str, dict[str, object]] = {}
        with db.session() as session:
            session.execute(text(f"SET LOCAL statement_timeout = {args.timeout * 1000}"))
            communes = session.scalars(
                select(Area.code).where(Area.parent_id.is_not(None)).order_by(Area.code)
            ).all()
            for name, areas in {
                "province": ["42"],
                "ten_communes": list(communes[:10]),
            }.items():
                counts = {}
                for mode in ("kept", "scan"):
                    seconds, got = timed(
                        lambda a=areas, m=mode: audience.audience_counts(
                            session,
                            area_codes=a,
                            carrier_codes=carriers,
                            test=False,
                            kept=m == "kept",
                        ),
                        args.repeat,
                    )
                    counts[mode] = got
                    results.setdefault(name, {})[f"{mode}_s"] = round(seconds, 4)
                    log(f"{name} {mode}: {seconds * 1000:.1f} ms {got}")
                assert counts["kept"] == counts["scan"], counts
                results[name]["audience"] = counts["kept"]
                results[name]["speedup"] = round(
                    float(results[name]["scan_s"]) / max(float(results[name]["kept_s"]), 1e-6),
                    1,
                )
    print(
        json.dumps(
            {
                "rows": args.rows,
                "lists": lists,
                "kept_count_rows": kept_rows,
                "refresh_s": round(refresh_s, 2),
                "repeat": args.repeat,
                **results,
                "target_s": 0.3,
                "province_within_target": float(results["province"]["kept_s"]) <= 0.3,
            }
        )
    )


if __name__ == "__main__":
    main()
