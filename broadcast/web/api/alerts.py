"""Alerts: draft, submit, approve or reject, control, derive, watch, export."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from broadcast import alerts as core
from broadcast import audit, replies, templates
from broadcast.models import Alert, AlertCategory, AlertStatus, Role
from broadcast.web import alertio, dispatch
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_json, load_query
from broadcast.web.api.schemas import (
    AlertIn,
    AlertListQuery,
    AlertOut,
    ApproveIn,
    DeriveIn,
    ProgressOut,
    ProgressQuery,
    RejectIn,
    RepliesOut,
    TemplateOut,
    TemplateQuery,
)
from broadcast.web.context import services
from broadcast.web.security import READ_ALERTS, client_ip, roles_required

DRAFTERS = tuple(sorted(core.DRAFT_ROLES, key=lambda r: r.value))
APPROVERS = tuple(core.APPROVE_ROLES)
CONTROLLERS = tuple(sorted(core.CONTROL_ROLES, key=lambda r: r.value))
AUTHORS = (Role.ADMIN, Role.APPROVER, Role.DRAFTER)
WRITE_ERRORS = (400, 401, 403, 404, 409, 422)
# Who may take the numbers that asked for help: phone numbers of people in need go to rescue
# teams through the province's leaders, not to every reader of alerts.
RESCUE_EXPORTERS = (Role.ADMIN, Role.APPROVER)


def _one(alert: Alert) -> dict[str, Any]:
    return AlertOut().dump(core.alert_summary(alert))


@bp.get("/alerts")
@roles_required(*READ_ALERTS)
@document(
    "List alerts, newest first",
    roles=READ_ALERTS,
    tag="alerts",
    query=AlertListQuery,
    response=AlertOut,
    many=True,
    errors=(401, 403, 422),
)
def list_alerts():  # type: ignore[no-untyped-def]
    args = load_query(AlertListQuery())
    with services().database.session() as session:
        query = select(Alert).order_by(Alert.id.desc()).limit(args["limit"])
        if args["status"]:
            query = query.where(Alert.status == AlertStatus(args["status"]))
        return jsonify([_one(a) for a in session.scalars(query)])


@bp.post("/alerts")
@roles_required(*DRAFTERS)
@document(
    "Create a draft",
    roles=DRAFTERS,
    tag="alerts",
    body=AlertIn,
    response=AlertOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def create_alert():  # type: ignore[no-untyped-def]
    draft = alertio.draft_from(load_json(AlertIn()))
    with services().database.session() as session:
        alert = core.create_draft(session, draft, user=current_user.db_user(session))
        return jsonify(_one(alert)), 201


@bp.get("/alerts/<int:alert_id>")
@roles_required(*READ_ALERTS)
@document("One alert", roles=READ_ALERTS, tag="alerts", response=AlertOut, errors=(401, 403, 404))
def get_alert(alert_id: int):  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        return jsonify(_one(core.get_alert(session, alert_id)))


@bp.put("/alerts/<int:alert_id>")
@roles_required(*DRAFTERS)
@document(
    "Edit a draft (its author only)",
    roles=DRAFTERS,
    tag="alerts",
    body=AlertIn,
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def update_alert(alert_id: int):  # type: ignore[no-untyped-def]
    draft = alertio.draft_from(load_json(AlertIn()))
    with services().database.session() as session:
        alert = core.update_draft(session, alert_id, draft, user=current_user.db_user(session))
        return jsonify(_one(alert))


def _act(alert_id: int, action: Any, **kwargs: Any) -> Any:
    svc = services()
    with svc.database.session() as session:
        alert = action(session, alert_id, user=current_user.db_user(session), **kwargs)
        body = _one(alert)
        status, schedule_at = AlertStatus(alert.status), alert.schedule_at
    dispatch.after_transition(svc, alert_id, status, schedule_at=schedule_at)
    return jsonify(body)


@bp.post("/alerts/<int:alert_id>/submit")
@roles_required(*AUTHORS)
@document(
    "Ask for approval (the author)",
    roles=AUTHORS,
    tag="alerts",
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def submit_alert(alert_id: int):  # type: ignore[no-untyped-def]
    return _act(alert_id, core.submit_for_approval)


@bp.post("/alerts/<int:alert_id>/withdraw")
@roles_required(*AUTHORS)
@document(
    "Take a submitted alert back to draft (the author)",
    roles=AUTHORS,
    tag="alerts",
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def withdraw_alert(alert_id: int):  # type: ignore[no-untyped-def]
    return _act(alert_id, core.withdraw)


@bp.post("/alerts/<int:alert_id>/approve")
@roles_required(*APPROVERS)
@document(
    "Approve (a second person); waivers for quiet hours and the daily cap",
    roles=APPROVERS,
    tag="alerts",
    body=ApproveIn,
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def approve_alert(alert_id: int):  # type: ignore[no-untyped-def]
    data = load_json(ApproveIn())
    return _act(alert_id, core.approve, settings=services().settings, **data)


@bp.post("/alerts/<int:alert_id>/reject")
@roles_required(*APPROVERS)
@document(
    "Reject with a reason (back to draft)",
    roles=APPROVERS,
    tag="alerts",
    body=RejectIn,
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def reject_alert(alert_id: int):  # type: ignore[no-untyped-def]
    data = load_json(RejectIn())
    return _act(alert_id, core.reject, reason=data["reason"])


@bp.post("/alerts/<int:alert_id>/pause")
@roles_required(*CONTROLLERS)
@document("Pause sending", roles=CONTROLLERS, tag="alerts", response=AlertOut, errors=WRITE_ERRORS)
def pause_alert(alert_id: int):  # type: ignore[no-untyped-def]
    return _act(alert_id, core.pause)


@bp.post("/alerts/<int:alert_id>/resume")
@roles_required(*CONTROLLERS)
@document("Resume sending", roles=CONTROLLERS, tag="alerts", response=AlertOut, errors=WRITE_ERRORS)
def resume_alert(alert_id: int):  # type: ignore[no-untyped-def]
    response = _act(alert_id, core.resume)
    dispatch.resumed(services(), alert_id)
    return response


@bp.post("/alerts/<int:alert_id>/cancel")
@roles_required(*AUTHORS)
@document(
    "Cancel (an approver or admin; the author for an unapproved alert)",
    roles=AUTHORS,
    tag="alerts",
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def cancel_alert(alert_id: int):  # type: ignore[no-untyped-def]
    return _act(alert_id, core.cancel)


@bp.post("/alerts/<int:alert_id>/derive")
@roles_required(*DRAFTERS)
@document(
    "New draft from this alert: update, correction, all-clear, or a resend to the numbers it "
    "did not reach (undeliverable, expired, rejected; `areas`, `carriers` narrow it)",
    roles=DRAFTERS,
    tag="alerts",
    body=DeriveIn,
    response=AlertOut,
    status=201,
    errors=WRITE_ERRORS,
)
def derive_alert(alert_id: int):  # type: ignore[no-untyped-def]
    data = load_json(DeriveIn())
    svc = services()
    with svc.database.session() as session:
        alert = core.derive(
            session,
            alert_id,
            kind=data["kind"],
            user=current_user.db_user(session),
            timezone=svc.settings.timezone,
            areas=data.get("areas"),
            carriers=data.get("carriers"),
        )
        return jsonify(_one(alert)), 201


@bp.get("/alerts/<int:alert_id>/progress")
@roles_required(*READ_ALERTS)
@document(
    "Live progress per carrier and reach per area (poll every second)",
    roles=READ_ALERTS,
    tag="alerts",
    query=ProgressQuery,
    response=ProgressOut,
    errors=(401, 403, 404, 422),
)
def alert_progress(alert_id: int):  # type: ignore[no-untyped-def]
    svc = services()
    history = load_query(ProgressQuery())["history"]
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        return jsonify(
            ProgressOut().dump(
                alertio.progress(
                    svc.redis, session, alert, svc.settings.rate_limits, history=history
                )
            )
        )


@bp.get("/alerts/<int:alert_id>/replies")
@roles_required(*READ_ALERTS)
@document(
    "Replies people texted back, by keyword and by commune (poll while sending)",
    roles=READ_ALERTS,
    tag="alerts",
    response=RepliesOut,
    errors=(401, 403, 404),
)
def alert_replies(alert_id: int):  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        alert = core.get_alert(session, alert_id)
        return jsonify(RepliesOut().dump(replies.summary(session, alert)))


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


@bp.get("/alerts/<int:alert_id>/help.csv")
@roles_required(*RESCUE_EXPORTERS)
@document(
    "Numbers that replied asking for help, with their commune: CSV for rescue teams (audited)",
    roles=RESCUE_EXPORTERS,
    tag="reports",
    produces="text/csv",
    errors=(401, 403, 404),
)
def help_csv(alert_id: int):  # type: ignore[no-untyped-def]
    return help_response(alert_id)


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


@bp.get("/alerts/<int:alert_id>/report.csv")
@roles_required(*READ_ALERTS)
@document(
    "Delivery report, CSV (streamed)",
    roles=READ_ALERTS,
    tag="reports",
    produces="text/csv",
    errors=(401, 403, 404),
)
def report_csv(alert_id: int):  # type: ignore[no-untyped-def]
    return report_response(alert_id, "csv")


@bp.get("/alerts/<int:alert_id>/report.xlsx")
@roles_required(*READ_ALERTS)
@document(
    "Delivery report, XLSX (streamed; a summary sheet first)",
    roles=READ_ALERTS,
    tag="reports",
    produces="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    errors=(401, 403, 404),
)
def report_xlsx(alert_id: int):  # type: ignore[no-untyped-def]
    return report_response(alert_id, "xlsx")


@bp.get("/templates")
@roles_required(*READ_ALERTS)
@document(
    "Alert templates (correction and all-clear among them)",
    roles=READ_ALERTS,
    tag="alerts",
    query=TemplateQuery,
    response=TemplateOut,
    many=True,
    errors=(401, 403, 422),
)
def list_templates():  # type: ignore[no-untyped-def]
    language = load_query(TemplateQuery())["language"]
    return jsonify(TemplateOut(many=True).dump(templates.catalogue(language)))


def cap_response(alert_id: int) -> Response:
    """CAP 1.2 XML of an alert, any status, for the people who may read alerts."""
    from broadcast import cap

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


@bp.get("/alerts/<int:alert_id>/cap.xml")
@roles_required(*READ_ALERTS)
@document(
    "The alert as CAP 1.2 XML",
    roles=READ_ALERTS,
    tag="reports",
    produces="application/cap+xml",
    errors=(401, 403, 404),
)
def alert_cap(alert_id: int):  # type: ignore[no-untyped-def]
    return cap_response(alert_id)
