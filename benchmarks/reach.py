"""Reach by commune (`reach.area_progress`, the watch page's and the report's ranking) for one
alert of --rows deliveries (default 2,000,000) over every commune of the configured province, on
PostgreSQL, against a bare `SELECT area_id, count(*) … GROUP BY area_id` over the same rows in
the same run: the floor any per-commune answer pays.

The deliveries are written the way an alert writes them: --rows subscribers in one carrier's
active list (COPY, the importer's bulk writer; 3 % with no area), a draft over the whole
province and `deliveries.write_audience` (the fan-out's INSERT … SELECT). Their states are then
set as after a sending: 90 % delivered, 5 % undeliverable, 2 % expired, 3 % still submitted,
and ten communes at 40 % delivered (a base station down). Each query runs --repeat times; the
medians are reported, and the two answers' totals per commune must agree. Bounded: at most
5,000,000 rows and --timeout seconds per statement. Progress goes to stderr; the last stdout
line is one JSON object.

    .venv/bin/python benchmarks/reach.py --rows 2000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import province_database, timed  # noqa: E402

from broadcast import accounts, alerts, deliveries, reach  # noqa: E402
from broadcast.alerts import AlertDraft  # noqa: E402
from broadcast.db import Database  # noqa: E402
from broadcast.models import (  # noqa: E402
    AlertCategory,
    Area,
    Carrier,
    ListStatus,
    Role,
    SubscriberList,
)
from subscriber_import.service import _BulkWriter  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MAX_ROWS = 5_000_000
BARE = (
    "SELECT area_id, count(*) FROM deliveries"
    " WHERE alert_id = :a AND area_id IS NOT NULL GROUP BY area_id"
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def seed(db: Database, rows: int) -> tuple[int, int, float]:
    """(alert id, communes, seconds the fan-out took) for --rows deliveries of one alert."""
    rng = np.random.default_rng(7)
    with db.session() as session:
        communes = np.array(
            session.scalars(select(Area.id).where(Area.parent_id.is_not(None))).all(), np.int64
        )
        viettel = session.scalar(select(Carrier.id).where(Carrier.code == "viettel"))
        lst = SubscriberList(
            carrier_id=viettel,
            version=1,
            status=ListStatus.ACTIVE,
            row_count=rows,
            activated_at=datetime.now(UTC),
        )
        session.add(lst)
        session.flush()
        writer = _BulkWriter(session, lst.id)
        area_ids = rng.choice(communes, rows)
        area_ids[rng.random(rows) < 0.03] = -1  # no area
        writer.add(84960000000 + rng.permutation(10_000_000)[:rows].astype(np.int64), area_ids)
        writer.finish()
    log(f"  {rows:,} subscribers over {len(communes)} communes")
    with db.session() as session:
        drafter = accounts.create_user(
            session, username="bench", password="bench-password-1", role=Role.DRAFTER
        )
        alert = alerts.create_draft(
            session,
            AlertDraft(
                title="Bão số 3",
                body="Bão số 3 đổ bộ vào Hà Tĩnh đêm nay.",
                category=AlertCategory.EMERGENCY,
                area_codes=("42",),
                carrier_codes=("viettel",),
                brandname="UBND HaTinh",
            ),
            user=drafter,
        )
        start = time.perf_counter()
        written = deliveries.write_audience(session, alert, batch_size=500)
        fan_out_s = time.perf_counter() - start
        alert_id = alert.id
        down = [int(a) for a in communes[:10]]
        session.execute(
            text(
                "UPDATE deliveries SET state = CASE"
                " WHEN area_id = ANY(:down) AND id % 100 >= 40 THEN 'undeliverable'"
                " WHEN id % 100 < 90 THEN 'delivered'"
                " WHEN id % 100 < 95 THEN 'undeliverable'"
                " WHEN id % 100 < 97 THEN 'expired' ELSE 'submitted' END"
                " WHERE alert_id = :a"
            ),
            {"a": alert_id, "down": down},
        )
    log(f"  {sum(written.values()):,} deliveries written in {fan_out_s:.1f} s, states set")
    return alert_id, len(communes), fan_out_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per statement")
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        parser.error(f"--rows must be between 1 and {MAX_ROWS:,}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with province_database() as (db, _settings):
        log(f"seeding {args.rows:,} deliveries")
        alert_id, communes, fan_out_s = seed(db, args.rows)
        with db.session() as session:
            session.execute(text("ANALYZE"))
        with db.session() as session:
            session.execute(text(f"SET LOCAL statement_timeout = {args.timeout * 1000}"))
            bare_s, bare = timed(
                lambda: session.execute(text(BARE), {"a": alert_id}).all(), args.repeat
            )
            log(f"bare GROUP BY: {bare_s * 1000:.1f} ms, {len(bare)} communes")
            reach_s, ranked = timed(lambda: reach.area_progress(session, alert_id), args.repeat)
            log(f"area_progress: {reach_s * 1000:.1f} ms, {len(ranked)} communes")
        assert sorted(int(n) for _, n in bare) == sorted(r["total"] for r in ranked)
        lowest = ranked[0]
    print(
        json.dumps(
            {
                "rows": args.rows,
                "communes": communes,
                "listed": len(ranked),
                "with_area": sum(r["total"] for r in ranked),
                "fan_out_s": round(fan_out_s, 2),
                "repeat": args.repeat,
                "area_progress_s": round(reach_s, 4),
                "bare_group_by_s": round(bare_s, 4),
                "ratio": round(reach_s / max(bare_s, 1e-6), 2),
                "lowest": {k: lowest[k] for k in ("code", "total", "delivered", "failed")},
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
