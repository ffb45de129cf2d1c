"""Delivery report exports of --rows recipients (default 200,000) on PostgreSQL: time to the
first byte, total time and peak memory, for the XLSX as it was (openpyxl write-only, the whole
workbook built before a byte goes out: the baseline, kept verbatim below) and as it is now
(`alertio.report_xlsx`: streamed, with the summary sheet, areas and words), and for the
streamed CSV, in the same run on the same data. Time to first byte: until the export hands
out its first bytes (what the HTTP response then sends).

Each variant runs in a child process so its peak RSS (VmHWM) is its own; `rss_before_mb` is
the child's RSS once the app is built, before the export. Bounded: at most 1,000,000 rows, one
run per variant. Progress goes to stderr; the last stdout line is one JSON object.

    .venv/bin/python benchmarks/report_export.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import scratch_database, settings_for  # noqa: E402

from broadcast import accounts, alerts, deliveries  # noqa: E402
from broadcast.alerts import AlertDraft  # noqa: E402
from broadcast.areas import load_configured_areas  # noqa: E402
from broadcast.bootstrap import sync_carriers  # noqa: E402
from broadcast.db import Database  # noqa: E402
from broadcast.models import (  # noqa: E402
    AlertCategory,
    Area,
    Carrier,
    Delivery,
    ListStatus,
    Role,
    SubscriberList,
)
from broadcast.policy import as_utc  # noqa: E402
from subscriber_import.report import defuse_cell  # noqa: E402
from subscriber_import.service import _BulkWriter  # noqa: E402

MAX_ROWS = 1_000_000
CHUNK = 64 * 1024


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def seed(url: str, instance: str, rows: int) -> int:
    settings = settings_for(url, instance)
    db = Database(settings.sqlalchemy_url)
    db.upgrade()
    with db.session() as session:
        sync_carriers(session, settings)
        load_configured_areas(session, settings)
    rng = np.random.default_rng(5)
    with db.session() as session:
        areas = np.array(
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
        numbers = 84960000000 + rng.permutation(10_000_000)[:rows].astype(np.int64)
        writer.add(numbers, rng.choice(areas, rows))
        writer.finish()
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
        written = deliveries.write_audience(session, alert, batch_size=500)
        alert_id = alert.id
        # 90 % delivered, 7 % undeliverable, 3 % expired, all with times.
        session.execute(
            text(
                "UPDATE deliveries SET attempts = 1, parts_final = 1, queued_at = now(),"
                " submitted_at = now(), final_at = now(),"
                " state = CASE WHEN id % 100 < 90 THEN 'delivered'"
                " WHEN id % 100 < 97 THEN 'undeliverable' ELSE 'expired' END,"
                " last_error = CASE WHEN id % 100 < 90 THEN NULL"
                " WHEN id % 100 < 97 THEN 'receipt UNDELIV err 001'"
                " ELSE 'expired: validity passed without a receipt' END"
                " WHERE alert_id = :a"
            ),
            {"a": alert_id},
        )
    log(f"seeded {written} deliveries")
    db.dispose()
    return alert_id


# --- the baseline: the XLSX export as it was before this change (verbatim) ----------------


BEFORE_COLUMNS = (
    "msisdn", "carrier", "state", "parts", "parts_final", "attempts", "last_error",
    "queued_at", "submitted_at", "final_at",
)  # fmt: skip


def _before_cell(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return as_utc(value).isoformat()
    value = getattr(value, "value", value)
    return defuse_cell(value) if isinstance(value, str) else value


def before_xlsx(session: Any, alert_id: int) -> Any:
    from openpyxl import Workbook

    query = (
        select(
            Delivery.msisdn, Carrier.code, Delivery.state, Delivery.parts, Delivery.parts_final,
            Delivery.attempts, Delivery.last_error, Delivery.queued_at, Delivery.submitted_at,
            Delivery.final_at,
        )
        .join(Carrier, Carrier.id == Delivery.carrier_id)
        .where(Delivery.alert_id == alert_id)
        .order_by(Delivery.id)
        .execution_options(yield_per=5000)
    )  # fmt: skip
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("deliveries")
    sheet.append(list(BEFORE_COLUMNS))
    for row in session.execute(query):
        sheet.append([_before_cell(v) for v in row])
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    workbook.save(out)
    out.seek(0)
    return out


# --- one variant in a child process ---------------------------------------------------------


def rss_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def child(variant: str, url: str, instance: str, alert_id: int) -> None:
    import redis

    from broadcast.web import alertio, create_app

    settings = settings_for(url, instance)
    db = Database(settings.sqlalchemy_url)
    # The export never touches Redis; a client that is never used opens no connection.
    app = create_app(settings, database=db, redis_client=redis.Redis(host="127.0.0.1", port=1))
    before = rss_mb("VmRSS")
    size = 0
    with app.test_request_context("/", headers={"Accept-Language": "vi"}):
        start = time.perf_counter()
        with db.session() as session:
            if variant in ("csv", "xlsx_after"):
                if variant == "csv":
                    chunks = (
                        c.encode() for c in alertio.report_csv(session, alert_id, settings.timezone)
                    )
                else:
                    alert = alerts.get_alert(session, alert_id)
                    chunks = alertio.report_xlsx(session, alert, settings.timezone)
                first = next(chunks)
                ttfb = time.perf_counter() - start
                size = len(first) + sum(len(c) for c in chunks)
            else:
                data = before_xlsx(session, alert_id)
                first = data.read(CHUNK)
                ttfb = time.perf_counter() - start
                size = len(first)
                while block := data.read(CHUNK):
                    size += len(block)
                data.close()
        total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "ttfb_s": round(ttfb, 2),
                "total_s": round(total, 2),
                "bytes": size,
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(rss_mb("VmHWM"), 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per variant")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, url, instance, alert_id = args.child
        child(variant, url, instance, int(alert_id))
        return
    if not 0 < args.rows <= MAX_ROWS:
        parser.error(f"--rows must be between 1 and {MAX_ROWS:,}")
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="loa-bench-") as instance:
        log(f"seeding {args.rows:,} deliveries")
        alert_id = seed(url, instance, args.rows)
        result: dict[str, Any] = {"rows": args.rows}
        for variant in ("xlsx_before", "xlsx_after", "csv"):
            log(f"{variant} …")
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, url, instance, str(alert_id)],
                check=True,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            result[variant] = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"  {result[variant]}")
        before, after = result["xlsx_before"], result["xlsx_after"]
        result["xlsx_ttfb_speedup"] = round(before["ttfb_s"] / max(after["ttfb_s"], 0.01), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
