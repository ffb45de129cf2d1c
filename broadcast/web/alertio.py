"""Input and output around the alert services, shared by the console and the API:
a draft from parsed input, the progress figures a watch page polls, report exports, and the
CAP document (one builder for the API, the console and the public feed)."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

import xlsxwriter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from broadcast import cap, keys, live, network, reach
from broadcast.alerts import AlertDraft
from broadcast.models import (
    FAILED_DELIVERY_STATES,
    Alert,
    AlertCategory,
    AlertStatus,
    Area,
    Carrier,
    Delivery,
    DeliveryState,
)
from broadcast.policy import as_utc
from broadcast.replies import keywords_from
from broadcast.web.templating import (
    CATEGORY_LABELS,
    DELIVERY_STATE_LABELS,
    STATUS_LABELS,
    failure_reason,
    label_of,
)
from subscriber_import.report import defuse_cell

FINAL_KEYS = ("delivered", "failed", "cancelled")
# The reach by area is one GROUP BY over the alert's deliveries: ~0.5 s on PostgreSQL and
# 1–2 s on SQLite for a million rows. Every watcher polls each second, so the answer is shared
# through Redis for REACH_CACHE_FACTOR times what it took (at least a second): the database
# spends at most a fifth of its time on it, however many people watch.
REACH_CACHE_FACTOR = 5


def cap_document(session: Session, alert: Alert, *, host: str, timezone: str) -> bytes:
    """The alert as CAP 1.2 XML; an Update or Cancel references its original. The CAP sender
    is `loa@<host>`, the host the reader reached us by (without its port)."""
    original = session.get(Alert, alert.references_id) if alert.references_id else None
    return cap.to_cap_xml(
        alert,
        sender=f"loa@{host.split(':')[0]}",
        references=original,
        sender_name=alert.brandname,
        timezone=timezone,
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
        reply_keywords=keywords_from(data.get("reply_keywords")),
    )


def _percent(done: int, total: int, *, finished: bool) -> float:
    """Rounded down to 0.1, and 100 only once the alert is over: 9,999 of 10,000 rows is
    99.9 %, and an alert whose fan-out is still writing rows is not done though every row
    written so far is."""
    if not total:
        return 100.0 if finished else 0.0
    tenths = 1000 * done // total
    return (tenths if finished else min(tenths, 999)) / 10


def failure_reasons(session: Session, alert_id: int) -> list[tuple[str, int]]:
    """Why recipients of an alert failed, from the database: (reason in words, recipients),
    most frequent first; texts that read the same are added together."""
    reasons: Counter[str] = Counter()
    for error, count in session.execute(
        select(Delivery.last_error, func.count())
        .where(Delivery.alert_id == alert_id, Delivery.state.in_(FAILED_DELIVERY_STATES))
        .group_by(Delivery.last_error)
    ):
        reasons[failure_reason(error) or _("No reason given")] += count
    return reasons.most_common()


def progress(
    redis_client: Any,
    session: Session,
    alert: Alert,
    limits: Mapping[str, float],
    *,
    history: bool = False,
) -> dict[str, Any]:
    """Per-carrier counters plus totals: what the watch page draws every second. The columns
    of a carrier (pending … cancelled) add up to its total. Reached and failed totals and the
    failure reasons come from the database. `areas` ranks the areas by share reached,
    `network` lists the targeted areas a chosen carrier reports degraded or down. Each call
    adds a point to the chart's series (once a second at most); `history` returns the
    recorded series as well. `limits`: Settings.rate_limits."""
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
    at = time.time()
    if not over:  # a finished alert's chart ends where its sending did
        live.record_point(redis_client, alert.id, at=at, rate=rate, done=done)
    reached = sum(f["delivered"] for f in per_carrier.values())
    failed = sum(f["failed"] for f in per_carrier.values())
    figures = {
        "reached": reached,
        "failed": failed,
        "failure_reasons": [
            {"reason": reason, "count": count}
            for reason, count in (failure_reasons(session, alert.id) if failed else [])
        ],
    }
    if history:
        figures["history"] = live.series(redis_client, alert.id)
    return {
        **figures,
        "id": alert.id,
        "status": getattr(alert.status, "value", alert.status),
        "test": alert.category == AlertCategory.TEST,
        "drill": alert.category == AlertCategory.EXERCISE,
        "carriers": per_carrier,
        "total": total,
        "done": done,
        "percent": _percent(done, total, finished=over),
        "rate_now": rate,
        "eta_seconds": max(etas) if etas and not over else None,
        "at": at,
        "areas": area_reach(redis_client, session, alert.id),
        "network": network.affected(
            session,
            area_codes=[a.code for a in alert.areas],
            carrier_codes=[c.code for c in alert.carriers],
        ),
    }


def area_reach(redis_client: Any, session: Session, alert_id: int) -> list[dict[str, Any]]:
    """reach.area_progress, shared by every watcher for a moment (see REACH_CACHE_FACTOR)."""
    key = keys.alert_reach_key(alert_id)
    cached = redis_client.get(key)
    if cached is not None:
        return list(json.loads(cached))
    started = time.monotonic()
    rows = reach.area_progress(session, alert_id)
    took_ms = int(1000 * (time.monotonic() - started))
    redis_client.set(key, json.dumps(rows), px=max(1000, REACH_CACHE_FACTOR * took_ms))
    return rows


# --- delivery reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportColumn:
    header: Any  # lazy gettext: read in the request's language
    width: int
    kind: str = "text"  # text | int | time


REPORT_COLUMNS = (
    ReportColumn(_l("Phone number"), 14),
    ReportColumn(_l("Carrier"), 14),
    ReportColumn(_l("Commune code"), 10),
    ReportColumn(_l("Commune"), 24),
    ReportColumn(_l("Status"), 22),
    ReportColumn(_l("Message parts"), 8, "int"),
    ReportColumn(_l("Parts with a final receipt"), 10, "int"),
    ReportColumn(_l("Attempts"), 8, "int"),
    ReportColumn(_l("Failure reason"), 40),
    ReportColumn(_l("Queued at"), 20, "time"),
    ReportColumn(_l("Sent at"), 20, "time"),
    ReportColumn(_l("Final at"), 20, "time"),
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def zone_label(timezone: str) -> str:
    """The zone as a reader needs it next to a time: "Asia/Ho_Chi_Minh, UTC+07:00"."""
    offset = datetime.now(ZoneInfo(timezone)).strftime("%z")
    return f"{timezone}, UTC{offset[:3]}:{offset[3:]}"


def report_headers(timezone: str) -> list[str]:
    """The report's column headers in the request's language, times with their zone."""
    zone = zone_label(timezone)
    return [
        _("%(column)s (%(zone)s)", column=c.header, zone=zone)
        if c.kind == "time"
        else str(c.header)
        for c in REPORT_COLUMNS
    ]


def _report_rows(
    session: Session, alert_id: int, carrier_id: int | None, timezone: str
) -> Iterator[list[Any]]:
    """One list per recipient: the area its delivery row recorded at the snapshot (none for a
    test or drill recipient), times as naive local times, states and reasons in words, text
    cells defused."""
    d, a = Delivery, aliased(Area)
    query = (
        select(
            d.msisdn,
            Carrier.name,
            a.code,
            a.name,
            d.state,
            d.parts,
            d.parts_final,
            d.attempts,
            d.last_error,
            d.queued_at,
            d.submitted_at,
            d.final_at,
        )
        .join(Carrier, Carrier.id == d.carrier_id)
        .outerjoin(a, a.id == d.area_id)
        .where(d.alert_id == alert_id)
        .order_by(d.id)
        .execution_options(yield_per=5000)
    )
    if carrier_id is not None:
        query = query.where(d.carrier_id == carrier_id)
    zone = ZoneInfo(timezone)
    states = {state: label_of(DELIVERY_STATE_LABELS, state) for state in DeliveryState}
    reasons: dict[str | None, str] = {}  # a few distinct texts: translate each once
    for row in session.execute(query):
        msisdn, carrier, code, name, state, parts, final, attempts, error, *times = row
        if error not in reasons:
            reasons[error] = defuse_cell(failure_reason(error))
        yield [
            defuse_cell(msisdn),
            defuse_cell(carrier),
            code or "",
            defuse_cell(name or ""),
            states[DeliveryState(state)],
            parts,
            final,
            attempts,
            reasons[error],
            *(as_utc(t).astimezone(zone).replace(tzinfo=None) if t else None for t in times),
        ]


def report_csv(
    session: Session, alert_id: int, timezone: str, carrier_id: int | None = None
) -> Iterator[str]:
    """The delivery report as CSV text chunks (streamed; never the whole report in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(report_headers(timezone))
    for n, row in enumerate(_report_rows(session, alert_id, carrier_id, timezone), start=1):
        writer.writerow([v.strftime(TIME_FORMAT) if isinstance(v, datetime) else v for v in row])
        if n % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def report_summary(session: Session, alert: Alert, timezone: str) -> dict[str, Any]:
    """The figures of the summary sheet: totals per carrier and per state, failure reasons
    with their counts (in words; texts that read the same are added together)."""
    per = session.execute(
        select(Carrier.name, Delivery.state, func.count())
        .join(Carrier, Carrier.id == Delivery.carrier_id)
        .where(Delivery.alert_id == alert.id)
        .group_by(Carrier.name, Delivery.state)
    ).all()
    carriers: dict[str, Counter[str]] = {}
    states: Counter[DeliveryState] = Counter()
    for name, state, count in per:
        state = DeliveryState(state)
        states[state] += count
        figures = carriers.setdefault(name, Counter())
        figures["total"] += count
        if state == DeliveryState.DELIVERED:
            figures["delivered"] += count
        elif state in FAILED_DELIVERY_STATES:
            figures["failed"] += count
        elif state == DeliveryState.CANCELLED:
            figures["cancelled"] += count
        else:
            figures["open"] += count
    zone = ZoneInfo(timezone)

    def local(moment: datetime | None) -> datetime | None:
        return as_utc(moment).astimezone(zone).replace(tzinfo=None) if moment else None

    return {
        "title": alert.title,
        "identifier": alert.identifier,
        "category": label_of(CATEGORY_LABELS, alert.category),
        "test": AlertCategory(alert.category) == AlertCategory.TEST,
        "drill": AlertCategory(alert.category) == AlertCategory.EXERCISE,
        "status": label_of(STATUS_LABELS, alert.status),
        "areas": ", ".join(f"{a.name} ({a.code})" for a in alert.areas),
        "times": [
            (_("Created"), local(alert.created_at)),
            (_("Approved"), local(alert.approved_at)),
            (_("Sending started"), local(alert.started_at)),
            (_("Completed"), local(alert.completed_at)),
            (_("Cancelled"), local(alert.cancelled_at)),
        ],
        "carriers": dict(sorted(carriers.items())),
        "states": [(label_of(DELIVERY_STATE_LABELS, s), states[s]) for s in DeliveryState],
        "reasons": failure_reasons(session, alert.id),
        "zone": zone_label(timezone),
    }


def _summary_sheet(book: Any, summary: dict[str, Any]) -> None:
    """The first sheet, for an official to attach to the report to the province."""
    sheet = book.add_worksheet(_("Summary"))
    bold = book.add_format({"bold": True})
    title = book.add_format({"bold": True, "font_size": 14})
    when = book.add_format({"num_format": "dd/mm/yyyy hh:mm:ss", "align": "left"})
    count = book.add_format({"num_format": "#,##0"})
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 5, 16)
    row = 0

    def line(label: Any, value: Any = None, fmt: Any = None) -> None:
        nonlocal row
        sheet.write_string(row, 0, str(label), bold)
        if isinstance(value, datetime):
            sheet.write_datetime(row, 1, value, fmt or when)
        elif isinstance(value, int):
            sheet.write_number(row, 1, value, fmt or count)
        elif value is not None:
            sheet.write_string(row, 1, defuse_cell(str(value)))
        row += 1

    sheet.write_string(row, 0, _("Alert delivery report"), title)
    row += 2
    line(_("Alert"), summary["title"])
    line(_("Identifier"), summary["identifier"])
    line(_("Category"), summary["category"])
    kind = _("Drill") if summary["drill"] else _("Test") if summary["test"] else _("Live")
    line(_("Test or live"), kind)
    line(_("Status"), summary["status"])
    line(_("Areas"), summary["areas"])
    for label, moment in summary["times"]:
        if moment is not None:
            line(_("%(column)s (%(zone)s)", column=label, zone=summary["zone"]), moment)
    row += 1
    heads = [_("Carrier"), _("Recipients"), _("Delivered"), _("Failed"), _("Cancelled")]
    heads.append(_("Not final yet"))
    for col, head in enumerate(heads):
        sheet.write_string(row, col, head, bold)
    row += 1
    totals: Counter[str] = Counter()
    keys = ("total", "delivered", "failed", "cancelled", "open")
    for name, figures in summary["carriers"].items():
        sheet.write_string(row, 0, defuse_cell(name))
        for col, key in enumerate(keys, start=1):
            sheet.write_number(row, col, figures[key], count)
            totals[key] += figures[key]
        row += 1
    sheet.write_string(row, 0, _("Total"), bold)
    for col, key in enumerate(keys, start=1):
        sheet.write_number(row, col, totals[key], count)
    row += 2
    sheet.write_string(row, 0, _("Status"), bold)
    sheet.write_string(row, 1, _("Recipients"), bold)
    row += 1
    for label, value in summary["states"]:
        line(label, value)
    row += 1
    sheet.write_string(row, 0, _("Failure reason"), bold)
    sheet.write_string(row, 1, _("Recipients"), bold)
    row += 1
    if not summary["reasons"]:
        sheet.write_string(row, 0, _("No failures"))
    for reason, value in summary["reasons"]:
        line(defuse_cell(reason), value)


def _commune_ranking_sheet(book: Any, session: Session, alert: Alert) -> None:
    """The communes ranked by share reached, lowest first (reach.area_progress, as on the
    watch page): where the message is not getting through, for the report to the province."""
    sheet = book.add_worksheet(_("By commune"))
    bold = book.add_format({"bold": True})
    count = book.add_format({"num_format": "#,##0"})
    share = book.add_format({"num_format": "0.0"})
    heads = [_("Commune code"), _("Commune"), _("Recipients"), _("Delivered"), _("Failed")]
    heads.append(_("Share delivered (%)"))
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, 1, 28)
    sheet.set_column(2, 5, 14)
    for col, head in enumerate(heads):
        sheet.write_string(0, col, head, bold)
    for row, area in enumerate(reach.area_progress(session, alert.id), start=1):
        sheet.write_string(row, 0, area["code"])
        sheet.write_string(row, 1, defuse_cell(area["name"]))
        for col, key in enumerate(("total", "delivered", "failed"), start=2):
            sheet.write_number(row, col, area[key], count)
        reached = 100 * area["delivered"] / area["total"] if area["total"] else 0.0
        sheet.write_number(row, 5, round(reached, 1), share)
    sheet.freeze_panes(1, 0)


class _Sink(io.RawIOBase):
    """A write-only, unseekable file for zipfile: the bytes written since the last take()."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> Iterator[bytes]:
        if self.parts:
            data, self.parts = b"".join(self.parts), []
            yield data


_COLUMN_LETTERS = [chr(ord("A") + i) for i in range(len(REPORT_COLUMNS))]
_EXCEL_EPOCH = datetime(1899, 12, 30)
# Characters XML 1.0 cannot hold, and CR (an XML reader turns it into LF): OOXML's _xHHHH_.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_UNSAFE.sub(lambda m: f"_x{ord(m.group()):04X}_", xml_escape(text))


def _row_xml(r: int, values: list[Any], time_style: int) -> str:
    cells = []
    for letter, value in zip(_COLUMN_LETTERS, values, strict=True):
        if value is None or value == "":
            continue
        ref = f"{letter}{r}"
        if isinstance(value, datetime):
            serial = (value - _EXCEL_EPOCH).total_seconds() / 86400
            cells.append(f'<c r="{ref}" s="{time_style}"><v>{serial:.8f}</v></c>')
        elif isinstance(value, int):
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        else:
            cells.append(
                f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">'
                f"{_xml_text(value)}</t></is></c>"
            )
    return f'<row r="{r}">{"".join(cells)}</row>'


def _xlsx_skeleton(session: Session, alert: Alert, timezone: str) -> tuple[bytes, str, int]:
    """The workbook without its recipient rows, written by xlsxwriter: the summary sheet,
    the recipients sheet's header, styles and every other part. Returns the bytes, the part
    name of the recipients sheet and the style index of its times."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    _summary_sheet(book, report_summary(session, alert, timezone))
    _commune_ranking_sheet(book, session, alert)
    sheet = book.add_worksheet(_("Recipients"))
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for col, (column, header) in enumerate(
        zip(REPORT_COLUMNS, report_headers(timezone), strict=True)
    ):
        sheet.set_column(col, col, column.width)
        sheet.write_string(0, col, header, bold)
    sheet.write_blank(1, 0, None, when)  # the time style must exist in styles.xml
    sheet.freeze_panes(1, 0)
    book.close()
    part = f"xl/worksheets/sheet{book.worksheets().index(sheet) + 1}.xml"
    return buffer.getvalue(), part, int(when.xf_index)


def report_xlsx(
    session: Session, alert: Alert, timezone: str, carrier_id: int | None = None
) -> Iterator[bytes]:
    """The delivery report as an XLSX, streamed: the first bytes leave before the first row is
    read and memory stays flat whatever the size. xlsxwriter writes the workbook without the
    recipient rows (summary sheet, header, styles); the rows' XML is then written straight
    into the ZIP (zipfile on an unseekable stream: sizes go in data descriptors) as the
    database yields them. No maintained library streams an XLSX to a socket."""
    skeleton, recipients_part, time_style = _xlsx_skeleton(session, alert, timezone)
    sink = _Sink()
    with (
        zipfile.ZipFile(io.BytesIO(skeleton)) as source,
        zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename != recipients_part:
                out.writestr(info.filename, data)
                yield from sink.take()
                continue
            head, tail = data.decode().split('<row r="2"', 1)
            tail = tail[tail.index("</sheetData>") :]
            head = re.sub(r"<dimension ref=\"[^\"]*\"/>", "", head)  # the rows are not known yet
            with out.open(info.filename, "w", force_zip64=True) as stream:
                stream.write(head.encode())
                rows: list[str] = []
                for r, values in enumerate(
                    _report_rows(session, alert.id, carrier_id, timezone), start=2
                ):
                    rows.append(_row_xml(r, values, time_style))
                    if len(rows) == 1000:
                        stream.write("".join(rows).encode())
                        rows.clear()
                        yield from sink.take()
                stream.write(("".join(rows) + tail).encode())
            yield from sink.take()
    yield from sink.take()


def help_csv(
    rows: Iterable[Sequence[Any]], headers: Sequence[str], timezone: str
) -> tuple[str, int]:
    """The numbers that asked for help (broadcast.replies.help_rows) as CSV text for rescue
    teams, times in local time, every text cell defused like the delivery report (a reply is
    what a stranger typed); and the number of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    zone = ZoneInfo(timezone)
    count = 0
    for row in rows:
        writer.writerow(
            as_utc(v).astimezone(zone).strftime(TIME_FORMAT)
            if isinstance(v, datetime)
            else defuse_cell(v)
            if isinstance(v, str)
            else v
            for v in row
        )
        count += 1
    return buffer.getvalue(), count
