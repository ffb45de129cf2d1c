"""Template helpers: labels for statuses and roles, the test-alert marker, local times."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from broadcast.models import (
    AlertCategory,
    AlertStatus,
    DeliveryState,
    ImportKind,
    ImportStatus,
    MsgType,
    NetworkState,
    Role,
)

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
    AlertCategory.EXERCISE: _l("Drill (exercise)"),
}
NETWORK_LABELS = {
    NetworkState.NORMAL: _l("Normal"),
    NetworkState.DEGRADED: _l("Degraded"),
    NetworkState.DOWN: _l("Down"),
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
DELIVERY_STATE_LABELS = {
    DeliveryState.PENDING: _l("Waiting to be queued"),
    DeliveryState.QUEUED: _l("Queued"),
    DeliveryState.SUBMITTED: _l("Sent, awaiting receipt"),
    DeliveryState.DELIVERED: _l("Delivered"),
    DeliveryState.UNDELIVERABLE: _l("Undeliverable"),
    DeliveryState.EXPIRED: _l("Expired"),
    DeliveryState.REJECTED: _l("Rejected"),
    DeliveryState.CANCELLED: _l("Cancelled"),
}
# The `stat:` word of a failed delivery receipt (smpp_gateway.receipts.STAT_WORDS).
RECEIPT_WORDS = {
    "UNDELIV": _l("The carrier could not deliver it to the phone"),
    "EXPIRED": _l("It expired at the carrier before reaching the phone"),
    "REJECTD": _l("The carrier refused it"),
    "DELETED": _l("The carrier deleted it"),
    "UNKNOWN": _l("The carrier reported an unknown outcome"),
}
# The reasons workers write in Delivery.last_error (workers/sender.py, broadcast/deliveries.py).
_RECEIPT = re.compile(r"^receipt (?P<word>[A-Z]+)(?: err (?P<code>\S+))?$")
_GAVE_UP = re.compile(r"^gave up after (?P<n>\d+) attempts: (?P<error>.*)$", re.S)
_TOO_LONG = re.compile(r"^(?P<parts>\d+) parts exceed the carrier limit of (?P<limit>\d+)")
_SMSC_STATUS = re.compile(r"^ESME_[A-Z0-9_]+")
_FIXED_REASONS = {
    "expired: validity passed before it was sent": _l(
        "The alert's validity ended before it was sent"
    ),
    "expired: validity passed without a receipt": _l(
        "The alert's validity ended with no delivery receipt"
    ),
}


def label_of(mapping: dict[Any, Any], value: Any) -> str:
    """The label of an enum member or its value in one of the tables above."""
    for key, label in mapping.items():
        if key == value or getattr(key, "value", None) == value:
            return str(label)
    return str(getattr(value, "value", value))


# The fields an audit entry's before/after and a refusal name, as the forms call them.
FIELD_LABELS: dict[str, Any] = {
    "title": _l("Title"),
    "body": _l("Message text"),
    "event": _l("Event"),
    "instruction": _l("Instruction"),
    "web": _l("Web address"),
    "category": _l("Category"),
    "area_codes": _l("Areas"),
    "areas": _l("Areas"),
    "carrier_codes": _l("Carriers"),
    "carriers": _l("Carriers"),
    "carrier": _l("Carrier"),
    "brandname": _l("Sender brandname"),
    "schedule_at": _l("Send at"),
    "expires_at": _l("Expires at"),
    "reply_keywords": _l("Reply keywords"),
    "reason": _l("Reason"),
    "kind": _l("Kind"),
    "version": _l("Version"),
    "quiet_hours": _l("Quiet hours"),
    "username": _l("Username"),
    "password": _l("Password"),
    "role": _l("Role"),
    "name": _l("Name"),
    "msisdn": _l("Phone number"),
    "active": _l("Active"),
    "day_of_month": _l("Day of the month (1–28)"),
    "at_time": _l("Local time"),
    "lead_days": _l("Lead time (days)"),
    "file": _l("File"),
    "note": _l("Note"),
    "state": _l("State"),
    "status": _l("Status"),
    "rows": _l("Rows"),
    "recipients": _l("Recipients"),
    "waive_quiet_hours": _l("Waive quiet hours"),
    "waive_daily_cap": _l("Waive the daily cap"),
    "urgency": _l("Urgency"),
    "severity": _l("Severity"),
    "certainty": _l("Certainty"),
    "fold": _l("Send without diacritics (không dấu)"),
    "next_at": _l("Next drill"),
    "display_name": _l("Display name"),
    "mps": _l("Allowed rate/s"),
}
# Values that are codes, said in words by the field they belong to.
_VALUE_LABELS: dict[str, dict[Any, Any]] = {}
_TIME_FIELDS = frozenset({"schedule_at", "expires_at", "next_at", "drill_at"})


def audit_details(values: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An audit entry's before/after as (field, value) pairs a person reads: fields and coded
    values (status, category, role, CAP values) in words, yes/no, times local, text as text
    (never \\u escapes), counts in the reader's number format, lists joined."""
    if not values:
        return []
    if not _VALUE_LABELS:
        _VALUE_LABELS.update(
            status=STATUS_LABELS,
            category=CATEGORY_LABELS,
            role=ROLE_LABELS,
            state=NETWORK_LABELS,
            urgency=CAP_VALUE_LABELS,
            severity=CAP_VALUE_LABELS,
            certainty=CAP_VALUE_LABELS,
        )

    def shown(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return str(_("Yes") if value else _("No"))
        if value is None:
            return "—"
        if key in _VALUE_LABELS and isinstance(value, str):
            return label_of(_VALUE_LABELS[key], value)
        if key in _TIME_FIELDS and isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return value
            from broadcast.web.context import services

            zone = ZoneInfo(services().settings.timezone)
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return aware.astimezone(zone).strftime("%d/%m/%Y %H:%M")
        if isinstance(value, int | float) and not key.endswith("id") and key != "version":
            return str(format_decimal(value))
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            return ", ".join(str(v) for v in value)
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    return [
        (str(FIELD_LABELS.get(str(key), key)), shown(str(key), value))
        for key, value in values.items()
    ]


def failure_reason(text: str | None) -> str:
    """Why a delivery failed, in words in the reader's language; a text from a peer that
    Loa does not know is shown as it came."""
    if not text:
        return ""
    fixed = _FIXED_REASONS.get(text)
    if fixed is not None:
        return str(fixed)
    if match := _RECEIPT.match(text):
        words = RECEIPT_WORDS.get(match["word"])
        if words is None:
            return text
        if match["code"]:
            return _("%(reason)s (error code %(code)s)", reason=words, code=match["code"])
        return str(words)
    if match := _GAVE_UP.match(text):
        return _(
            "Gave up after %(attempts)s attempts: %(error)s",
            attempts=match["n"],
            error=failure_reason(match["error"]),
        )
    if match := _TOO_LONG.match(text):
        return _(
            "%(parts)s parts, more than the carrier allows (%(limit)s)",
            parts=match["parts"],
            limit=match["limit"],
        )
    if _SMSC_STATUS.match(text):
        return _("The carrier's SMSC refused it: %(status)s", status=text)
    return text


# Audit log actions (broadcast.audit.record callers), as a person reads them.
AUDIT_ACTION_LABELS = {
    "login": _l("Logged in"),
    "login.failed": _l("Failed login"),
    "login.throttled": _l("Login attempts held back"),
    "logout": _l("Logged out"),
    "user.create": _l("User created"),
    "user.update": _l("User changed"),
    "user.set_role": _l("User's role changed"),
    "user.set_password": _l("Password set"),
    "token.create": _l("API token created"),
    "token.revoke": _l("API token revoked"),
    "carrier.create": _l("Carrier added"),
    "brandname.add": _l("Brandname added"),
    "brandname.activate": _l("Brandname enabled"),
    "brandname.deactivate": _l("Brandname disabled"),
    "test_recipient.add": _l("Test recipient added"),
    "test_recipient.remove": _l("Test recipient removed"),
    "areas.load": _l("Areas loaded"),
    "subscribers.purge": _l("Old subscriber lists purged"),
    "import.list": _l("Subscriber list imported"),
    "import.counts": _l("Subscriber counts imported"),
    "import.rejects_download": _l("Refused rows downloaded"),
    "alert.create": _l("Alert drafted"),
    "alert.update": _l("Alert edited"),
    "alert.submit": _l("Alert sent for approval"),
    "alert.withdraw": _l("Alert taken back to draft"),
    "alert.approve": _l("Alert approved"),
    "alert.schedule": _l("Alert approved and scheduled"),
    "alert.reject": _l("Alert rejected"),
    "alert.start": _l("Sending started"),
    "alert.pause": _l("Sending paused"),
    "alert.resume": _l("Sending resumed"),
    "alert.cancel": _l("Alert cancelled"),
    "alert.complete": _l("Sending completed"),
    "alert.export": _l("Report exported"),
    "alert.export_help": _l("Requests for help exported"),
    "carrier.network_status": _l("Network status reported"),
    "drill_schedule.create": _l("Recurring drill scheduled"),
    "drill_schedule.deactivate": _l("Recurring drill stopped"),
    "drill_schedule.run": _l("Drill alert made for approval"),
    "drill_schedule.missed": _l("Drill missed"),
    "drill_schedule.failed": _l("Drill alert could not be made"),
}

AUDIT_OBJECT_LABELS = {
    "alert": _l("Alert"),
    "api_token": _l("API token"),
    "area": _l("Area"),
    "brandname": _l("Brandname"),
    "carrier": _l("Carrier"),
    "drill_schedule": _l("Recurring drill"),
    "import": _l("Import"),
    "subscriber_list": _l("Subscriber list"),
    "test_recipient": _l("Test recipient"),
    "user": _l("User"),
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
    "empty_file": _l("The file is empty (no header, no rows or no sheet): nothing was imported."),
    "file_too_large": _l(
        "The file is larger than the limit of %(limit_mb)s MB: split it, or save it as CSV."
    ),
    "wrong_file_type": _l(
        "The file is not what its name says, or not a readable CSV file or workbook. Save it "
        "again as .xlsx, or export it as CSV, and upload it again."
    ),
    "malformed_file": _l(
        "The file is broken part-way and could not be read; nothing was imported. Save it "
        "again from Excel, or as CSV."
    ),
    "sheet_not_found": _l("The workbook has no sheet “%(sheet)s”; its sheets: %(sheets)s."),
    "unknown_layout": _l(
        "No column of the file could be recognised as the phone numbers (or the areas and "
        "counts); columns found: %(found)s. Name the columns as the import guide says."
    ),
    "no_valid_rows": _l(
        "Not one of the %(rows)s rows of the file is valid: nothing was changed, the current "
        "list is kept."
    ),
    "too_many_rows": _l("The file has more than %(limit)s rows: split it into several files."),
    "unknown_carrier": _l("Unknown carrier “%(carrier)s”."),
}


def import_problem(code: str | None, details: dict[str, Any] | None, fallback: str) -> str:
    """The reason an import failed or was refused, translated when the code is known."""
    message = IMPORT_PROBLEMS.get(code or "")
    if message is None:
        return fallback
    values = {
        key: format_decimal(value)
        if isinstance(value, int | float)
        else ", ".join(map(str, value))
        if isinstance(value, list | tuple)
        else value
        for key, value in (details or {}).items()
    }
    limit_bytes = (details or {}).get("limit_bytes")
    if isinstance(limit_bytes, int):
        values["limit_mb"] = format_decimal(round(limit_bytes / 1048576))
    try:
        return str(message) % values
    except (KeyError, TypeError, ValueError):  # details of another shape: say it untranslated
        return fallback


# Shown in both languages whatever the locale: nobody may mistake a test for a real alert.
TEST_MARK = "THỬ NGHIỆM / TEST"
DRILL_MARK = "DIỄN TẬP / DRILL"


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

    _label = label_of

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
    app.jinja_env.filters["delivery_state_label"] = lambda v: _label(DELIVERY_STATE_LABELS, v)
    app.jinja_env.filters["failure_reason"] = failure_reason
    app.jinja_env.filters["audit_details"] = audit_details
    app.jinja_env.filters["audit_object_label"] = lambda v: _label(AUDIT_OBJECT_LABELS, v)
    app.jinja_env.filters["audit_action_label"] = lambda v: _label(AUDIT_ACTION_LABELS, v)
    app.jinja_env.filters["category_label"] = lambda v: _label(CATEGORY_LABELS, v)
    app.jinja_env.filters["role_label"] = lambda v: _label(ROLE_LABELS, v)
    app.jinja_env.filters["network_label"] = lambda v: _label(NETWORK_LABELS, v)
    app.jinja_env.globals["import_problem"] = import_problem
    app.jinja_env.globals.update(
        get_locale=get_locale,
        TEST_MARK=TEST_MARK,
        DRILL_MARK=DRILL_MARK,
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
