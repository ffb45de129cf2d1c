"""Template helpers: labels for statuses and roles, the test-alert marker, local times."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from broadcast.models import AlertCategory, AlertStatus, ImportKind, ImportStatus, MsgType, Role

STATUS_LABELS = {
    AlertStatus.DRAFT: _l("Draft"),
    AlertStatus.PENDING_APPROVAL: _l("Awaiting approval"),
    AlertStatus.APPROVED: _l("Approved"),
    AlertStatus.SCHEDULED: _l("Scheduled"),
    AlertStatus.SENDING: _l("Sending"),
    AlertStatus.PAUSED: _l("Paused"),
    AlertStatus.COMPLETED: _l("Completed"),
    AlertStatus.CANCELLED: _l("Cancelled"),
}
CATEGORY_LABELS = {
    AlertCategory.EMERGENCY: _l("Emergency"),
    AlertCategory.WARNING: _l("Warning"),
    AlertCategory.INFORMATION: _l("Information"),
    AlertCategory.TEST: _l("Test"),
}
ROLE_LABELS = {
    Role.ADMIN: _l("Administrator"),
    Role.DRAFTER: _l("Drafter"),
    Role.APPROVER: _l("Approver"),
    Role.CARRIER: _l("Carrier"),
    Role.AUDITOR: _l("Auditor"),
}
IMPORT_STATUS_LABELS = {
    ImportStatus.RUNNING: _l("Running"),
    ImportStatus.SUCCEEDED: _l("Imported"),
    ImportStatus.REJECTED: _l("Refused"),
    ImportStatus.FAILED: _l("Failed"),
}
IMPORT_KIND_LABELS = {
    ImportKind.LIST: _l("Subscriber list"),
    ImportKind.COUNTS: _l("Counts per area"),
}
# The figures of an import report (subscriber_import.report.ImportReport), in display order.
REPORT_LABELS = {
    "rows": _l("Rows in the file"),
    "accepted": _l("Accepted"),
    "converted": _l("Converted from 11-digit numbers"),
    "duplicates": _l("Duplicates"),
    "conflicts": _l("Also on another carrier's list"),
    "possible_ported": _l("Possibly ported (another carrier's range)"),
    "replaced_count": _l("Numbers in the replaced list"),
    "version": _l("List version"),
    "as_of": _l("As of"),
    "seconds": _l("Seconds"),
}
# CAP 1.2 fields and values: the XML keeps the standard's English tokens, people read these.
CAP_FIELD_LABELS = {
    "urgency": _l("Urgency"),
    "severity": _l("Severity"),
    "certainty": _l("Certainty"),
}
CAP_VALUE_LABELS = {
    "Immediate": _l("Immediate (act now)"),
    "Expected": _l("Expected (act within the hour)"),
    "Future": _l("Future (act in the near future)"),
    "Past": _l("Past (no action needed)"),
    "Extreme": _l("Extreme"),
    "Severe": _l("Severe"),
    "Moderate": _l("Moderate"),
    "Minor": _l("Minor"),
    "Observed": _l("Observed"),
    "Likely": _l("Likely"),
    "Possible": _l("Possible"),
    "Unlikely": _l("Unlikely"),
    "Unknown": _l("Unknown"),
}
MSG_TYPE_LABELS = {
    MsgType.ALERT: _l("Alert"),
    MsgType.UPDATE: _l("Update"),
    MsgType.CANCEL: _l("Cancel"),
}
# How a message is encoded, in words first; the technical name follows in brackets.
ENCODING_LABELS = {"gsm7": _l("without diacritics"), "ucs2": _l("with diacritics")}
ENCODING_NAMES = {"gsm7": "GSM 7-bit", "ucs2": "UCS-2"}
# Why a row was refused (subscriber_import.numbers.Reason, and duplicates).
REASON_LABELS = {
    "empty": _l("Empty cell"),
    "invalid": _l("Not a number"),
    "not_mobile": _l("Not a Vietnamese mobile number"),
    "landline": _l("Landline number"),
    "too_short": _l("Too few digits"),
    "too_long": _l("Too many digits"),
    "unknown_area": _l("Unknown area"),
    "old_area": _l("Count for a former district or a split unit"),
    "invalid_count": _l("Invalid count"),
    "invalid_date": _l("Invalid date"),
    "duplicate": _l("Duplicate"),
}
# Why an import ended without a list, by its error code (subscriber_import.errors), for the
# console in the reader's language; other codes show the importer's own message.
IMPORT_PROBLEMS = {
    "too_many_cells": _l(
        "The sheet has cells as far as %(corner)s: %(cells)s cells, more than the limit of "
        "%(limit)s. Delete the rows and columns outside the data, or save the sheet as CSV, "
        "then upload it again."
    ),
    "unsafe_file": _l(
        "The workbook unpacks to far more than its own size, or declares XML entities no "
        "workbook needs, so it was not read. Save it again from Excel, or as CSV."
    ),
    "out_of_memory": _l(
        "Reading the file needed more than %(limit_mb)s MB of memory, so the import was stopped "
        "and nothing was imported. Delete the cells outside the data, or save the sheet as CSV."
    ),
    "time_limit": _l(
        "The import took longer than %(limit_seconds)s seconds, so it was stopped and nothing "
        "was imported. Split the file, or save it as CSV."
    ),
    "import_stopped": _l(
        "The import stopped with the process running it, and nothing was imported. Upload the "
        "file again."
    ),
}


def import_problem(code: str | None, details: dict[str, Any] | None, fallback: str) -> str:
    """The reason an import failed or was refused, translated when the code is known."""
    message = IMPORT_PROBLEMS.get(code or "")
    if message is None:
        return fallback
    values = {
        key: format_decimal(value) if isinstance(value, int | float) else value
        for key, value in (details or {}).items()
    }
    try:
        return str(message) % values
    except (KeyError, TypeError, ValueError):  # details of another shape: say it untranslated
        return fallback


# Shown in both languages whatever the locale: nobody may mistake a test for a real alert.
TEST_MARK = "THỬ NGHIỆM / TEST"


def duration_text(seconds: float | None) -> str:
    """An expected sending time, rounded up the way a person says it (static/i18n.js says it
    the same way from the same messages)."""
    if seconds is None:
        return "—"
    whole = max(0, math.ceil(seconds))
    if whole < 60:
        return _("%(seconds)s s", seconds=whole)
    if whole < 3600:
        return _("%(minutes)s min %(seconds)s s", minutes=whole // 60, seconds=whole % 60)
    return _("%(hours)s h %(minutes)s min", hours=whole // 3600, minutes=whole % 3600 // 60)


def browser_texts() -> dict[str, Any]:
    """What static/i18n.js needs to say numbers, durations and rates as the server does."""
    locale = get_locale()
    return {
        "locale": "vi-VN" if locale is None or locale.language == "vi" else "en-US",
        "s": _("%(seconds)s s"),
        "min_s": _("%(minutes)s min %(seconds)s s"),
        "h_min": _("%(hours)s h %(minutes)s min"),
        "rate": _("%(rate)s/s"),
        "encodings": {key: str(label) for key, label in ENCODING_LABELS.items()},
    }


def init_templating(app: Flask) -> None:
    settings = app.extensions["loa"].settings
    tz = ZoneInfo(settings.timezone)
    carrier_names = {c.code: c.name for c in settings.carriers}
    # Which carriers are simulated is not said: a carrier user sees no other carrier's name.
    simulated = bool(settings.simulated_carriers)

    def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A stored time (UTC; an ISO string from AlertOut) in the province's local time."""
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(tz).strftime(fmt)

    def _label(mapping: dict[Any, Any], value: Any) -> str:
        for key, label in mapping.items():
            if key == value or getattr(key, "value", None) == value:
                return str(label)
        return str(getattr(value, "value", value))

    def number(value: Any) -> str:
        """A count in the reader's locale (vi: 99.935); '—' for none."""
        return "—" if value is None or value == "" else format_decimal(value)

    def rate(value: float | None) -> str:
        """Messages per second in the reader's words (vi: 300 tin/giây)."""
        return "—" if value is None else _("%(rate)s/s", rate=format_decimal(round(value)))

    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.filters["duration"] = duration_text
    app.jinja_env.filters["rate"] = rate
    app.jinja_env.filters["carrier_name"] = lambda code: carrier_names.get(code, code)
    app.jinja_env.filters["cap_field_label"] = lambda v: _label(CAP_FIELD_LABELS, v)
    app.jinja_env.filters["cap_label"] = lambda v: _label(CAP_VALUE_LABELS, v)
    app.jinja_env.filters["msg_type_label"] = lambda v: _label(MSG_TYPE_LABELS, v)
    app.jinja_env.filters["encoding_label"] = lambda v: (
        f"{_label(ENCODING_LABELS, v)} ({ENCODING_NAMES.get(v, v)})"
    )
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["import_status_label"] = lambda v: _label(IMPORT_STATUS_LABELS, v)
    app.jinja_env.filters["import_kind_label"] = lambda v: _label(IMPORT_KIND_LABELS, v)
    app.jinja_env.filters["reason_label"] = lambda v: _label(REASON_LABELS, v)
    app.jinja_env.filters["status_label"] = lambda v: _label(STATUS_LABELS, v)
    app.jinja_env.filters["category_label"] = lambda v: _label(CATEGORY_LABELS, v)
    app.jinja_env.filters["role_label"] = lambda v: _label(ROLE_LABELS, v)
    app.jinja_env.globals["import_problem"] = import_problem
    app.jinja_env.globals.update(
        get_locale=get_locale,
        TEST_MARK=TEST_MARK,
        Role=Role,
        AlertStatus=AlertStatus,
        REPORT_LABELS=REPORT_LABELS,
        browser_texts=browser_texts,
        SIMULATED_CARRIERS=simulated,
        CARRIER_NAMES=carrier_names,
    )

    @app.context_processor
    def _user() -> dict[str, Any]:
        return {"me": current_user}
