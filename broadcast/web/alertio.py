"""Input and output around the alert services, shared by the console and the API:
a draft from parsed input, the progress figures a watch page polls, report exports."""

from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import live
from broadcast.alerts import AlertDraft
from broadcast.models import Alert, AlertCategory, AlertStatus, Carrier, Delivery
from broadcast.policy import as_utc
from subscriber_import.report import defuse_cell

REPORT_COLUMNS = (
    "msisdn",
    "carrier",
    "state",
    "parts",
    "parts_final",
    "attempts",
    "last_error",
    "queued_at",
    "submitted_at",
    "final_at",
)


def draft_from(data: dict[str, Any]) -> AlertDraft:
    """An AlertDraft from schema-loaded input (API JSON or console form)."""
    return AlertDraft(
        title=data["title"],
        body=data["body"],
        category=AlertCategory(data["category"]),
        area_codes=tuple(data["areas"]),
        carrier_codes=tuple(data["carriers"]),
        brandname=data["brandname"],
        fold=bool(data.get("fold")),
        schedule_at=data.get("schedule_at"),
        expires_at=data.get("expires_at"),
        event=data.get("event", ""),
        urgency=data.get("urgency", "Unknown"),
        severity=data.get("severity", "Unknown"),
        certainty=data.get("certainty", "Unknown"),
        instruction=data.get("instruction", ""),
        web=data.get("web", ""),
    )


def _percent(done: int, total: int, *, finished: bool) -> float:
    """Rounded down to 0.1, and 100 only once the alert is over: 9,999 of 10,000 rows is
    99.9 %, and an alert whose fan-out is still writing rows is not done though every row
    written so far is."""
    if not total:
        return 100.0 if finished else 0.0
    tenths = 1000 * done // total
    return (tenths if finished else min(tenths, 999)) / 10


def progress(
    redis_client: Any, session: Session, alert: Alert, limits: Mapping[str, float]
) -> dict[str, Any]:
    """Per-carrier counters plus totals: what the watch page draws every second. The columns
    of a carrier (pending … cancelled) add up to its total. `limits`: Settings.rate_limits."""
    per_carrier = live.alert_progress(redis_client, session, alert.id, limits)
    over = AlertStatus(alert.status) in (AlertStatus.COMPLETED, AlertStatus.CANCELLED)
    total = done = 0
    rate = 0.0
    etas: list[float] = []
    for figures in per_carrier.values():
        finished = sum(figures[k] for k in live.FINAL_COLUMNS)
        figures["percent"] = _percent(finished, figures["total"], finished=over)
        total += figures["total"]
        done += finished
        rate += figures["rate_now"]
        if figures["eta_seconds"] is not None:
            etas.append(figures["eta_seconds"])
    return {
        "id": alert.id,
        "status": getattr(alert.status, "value", alert.status),
        "test": alert.category == AlertCategory.TEST,
        "carriers": per_carrier,
        "total": total,
        "done": done,
        "percent": _percent(done, total, finished=over),
        "rate_now": rate,
        "eta_seconds": max(etas) if etas and not over else None,
        "at": time.time(),
    }


def _report_rows(session: Session, alert_id: int, carrier_id: int | None) -> Iterator[tuple]:
    query = (
        select(
            Delivery.msisdn,
            Carrier.code,
            Delivery.state,
            Delivery.parts,
            Delivery.parts_final,
            Delivery.attempts,
            Delivery.last_error,
            Delivery.queued_at,
            Delivery.submitted_at,
            Delivery.final_at,
        )
        .join(Carrier, Carrier.id == Delivery.carrier_id)
        .where(Delivery.alert_id == alert_id)
        .order_by(Delivery.id)
        .execution_options(yield_per=5000)
    )
    if carrier_id is not None:
        query = query.where(Delivery.carrier_id == carrier_id)
    for row in session.execute(query):
        yield tuple(_cell(v) for v in row)


def _cell(value: Any) -> Any:
    """A report cell: enums as their value, times in ISO 8601, text never a live formula (an
    error text can carry what a peer sent; openpyxl would even store it as a formula)."""
    if hasattr(value, "isoformat"):
        return as_utc(value).isoformat()
    value = getattr(value, "value", value)
    return defuse_cell(value) if isinstance(value, str) else value


def report_csv(session: Session, alert_id: int, carrier_id: int | None = None) -> Iterator[str]:
    """The delivery report as CSV text chunks (streamed; never the whole report in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    for n, row in enumerate(_report_rows(session, alert_id, carrier_id), start=1):
        writer.writerow(row)
        if n % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def report_xlsx(session: Session, alert_id: int, carrier_id: int | None = None) -> Any:
    """The delivery report as an XLSX in a spooled temporary file (openpyxl write-only)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("deliveries")
    sheet.append(list(REPORT_COLUMNS))
    for row in _report_rows(session, alert_id, carrier_id):
        sheet.append(list(row))
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned
    workbook.save(out)
    out.seek(0)
    return out
