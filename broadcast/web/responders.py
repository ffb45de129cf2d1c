"""Responders the console and the API share: exports, CAP XML, import views and rejects,
upload progress in scope, token lifetimes and the number normaliser.

The API modules and the console pages both call these, so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, abort, request, send_file, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from broadcast import alerts as core
from broadcast import audit, cap, registry, replies
from broadcast.errors import Reason
from broadcast.models import AlertCategory, Carrier, Import, Role
from broadcast.web import alertio, uploads
from broadcast.web.context import services
from broadcast.web.security import client_ip
from subscriber_import.numbers import normalise_one


def _audit_export(alert_id: int, fmt: str) -> None:
    with services().database.session() as session:
        audit.record(
            session,
            actor=current_user.db_user(session),
            action="alert.export",
            object_type="alert",
            object_id=alert_id,
            after={"format": fmt},
            ip=client_ip(),
        )


def report_response(alert_id: int, fmt: str) -> Response:
    """CSV and XLSX streamed as the database is read (constant memory; the download starts
    at once). Headers, words and local times in the request's language and the instance's
    time zone."""
    svc = services()
    db, timezone = svc.database, svc.settings.timezone
    with db.session() as session:
        alert = core.get_alert(session, alert_id)  # 404 before anything streams
        drill = alert.category == AlertCategory.EXERCISE
    _audit_export(alert_id, fmt)
    # A drill's report says so in its name (and its summary sheet): nobody files it as real.
    name = f"loa-{'drill' if drill else 'alert'}-{alert_id}-report.{fmt}"
    if fmt == "csv":

        def generate() -> Any:
            with db.session() as session:
                yield "\ufeff"  # a BOM: spreadsheet programs then read the file as UTF-8
                yield from alertio.report_csv(session, alert_id, timezone)

        return Response(
            stream_with_context(generate()),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def workbook() -> Any:
        with db.session() as session:
            yield from alertio.report_xlsx(session, core.get_alert(session, alert_id), timezone)

    return Response(
        stream_with_context(workbook()),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def cap_response(alert_id: int) -> Response:
    """CAP 1.2 XML of an alert, any status, for the people who may read alerts."""
    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        xml = alertio.cap_document(
            session, alert, host=request.host, timezone=svc.settings.timezone
        )
    return Response(
        xml,
        mimetype=cap.CAP_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="loa-alert-{alert_id}.cap.xml"'},
    )


def help_response(alert_id: int) -> Response:
    """The numbers that asked for help, with their commune: CSV for rescue teams, headers in
    the reader's language, audited with the number of rows handed out."""
    svc = services()
    headers = [
        _("Phone number"),
        _("Carrier"),
        _("Commune code"),
        _("Commune"),
        _("Reply"),
        _("Received at (local time)"),
    ]
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        text, count = alertio.help_csv(
            replies.help_rows(session, alert), headers, svc.settings.timezone
        )
        audit.record(
            session,
            actor=current_user.db_user(session),
            action="alert.export_help",
            object_type="alert",
            object_id=alert_id,
            after={"format": "csv", "rows": count},
            ip=client_ip(),
        )
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="loa-alert-{alert_id}-help.csv"'},
    )


def import_view(row: Import, carrier_code: str) -> dict[str, Any]:
    report = dict(row.report or {})
    report.pop("rejects_csv", None)  # a server path: not for the client
    if current_user.role == Role.CARRIER:
        # Which carrier also holds these numbers is that carrier's data: the count only.
        report.pop("conflicts_by_carrier", None)
    return {
        "id": row.id,
        "carrier": carrier_code,
        "kind": getattr(row.kind, "value", row.kind),
        "status": getattr(row.status, "value", row.status),
        "filename": row.filename,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "error": row.error,
        "report": report,
        "has_rejects": row.rejects_path is not None and Path(row.rejects_path).is_file(),
    }


def visible_import(session: Session, import_id: int) -> tuple[Import, str]:
    """The import if the user may see it; another carrier's import is 'not found'."""
    row = session.get(Import, import_id)
    if row is None:
        abort(404)
    carrier = session.get_one(Carrier, row.carrier_id)
    if current_user.role == Role.CARRIER and current_user.carrier_id != row.carrier_id:
        abort(404)
    return row, carrier.code


def progress_in_scope(token: str) -> dict[str, Any]:
    """An upload's progress, if the user may see it (another carrier's upload: 404)."""
    state = uploads.progress_of(services(), token)
    if state is None:
        abort(404)
    if current_user.role == Role.CARRIER and state.get("carrier") != current_user.carrier_code:
        abort(404)
    return state


def rejects_response(import_id: int) -> Response:
    """The import's rejected rows as the CSV the importer wrote (cells that could start a
    formula are already quoted there); the download is audited (the rows hold numbers)."""
    with services().database.session() as session:
        row, _code = visible_import(session, import_id)
        path = Path(row.rejects_path) if row.rejects_path else None
        if path is None or not path.is_file():
            abort(
                404,
                description=Reason(
                    "no_rejects_file",
                    "import %(id)s has no rejected-rows file (a refused file keeps none, "
                    "and files are deleted after imports.retention_days)",
                    id=import_id,
                ),
            )
        audit.record(
            session,
            actor=current_user.db_user(session),
            action="import.rejects_download",
            object_type="import",
            object_id=import_id,
            ip=client_ip(),
        )
    return send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"loa-import-{import_id}-rejects.csv",
        max_age=0,
    )


def token_expiry_days(data: dict[str, Any]) -> int | None:
    """Days a new token lives: as asked (None: never), else web.token_expiry_days (0: never)."""
    if "expires_in_days" in data:
        return data["expires_in_days"]
    return services().settings.web.token_expiry_days or None


def number_normaliser() -> registry.Normaliser:
    """subscriber_import's normaliser on the number plan `create_app` loaded."""
    plan = services().number_plan
    return lambda value: normalise_one(value, plan)
