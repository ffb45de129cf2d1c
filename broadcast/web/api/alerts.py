"""Alerts: draft, submit, approve or reject, control, derive, watch, export."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, send_file, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from broadcast import alerts as core
from broadcast import audit, templates
from broadcast.models import Alert, AlertStatus, Role
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
    RejectIn,
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
    "New draft referencing this alert: update, correction or all-clear",
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
        )
        return jsonify(_one(alert)), 201


@bp.get("/alerts/<int:alert_id>/progress")
@roles_required(*READ_ALERTS)
@document(
    "Live progress per carrier (poll every second)",
    roles=READ_ALERTS,
    tag="alerts",
    response=ProgressOut,
    errors=(401, 403, 404),
)
def alert_progress(alert_id: int):  # type: ignore[no-untyped-def]
    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        return jsonify(
            ProgressOut().dump(
                alertio.progress(svc.redis, session, alert, svc.settings.rate_limits)
            )
        )


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
    """CSV streamed from the database; XLSX written by openpyxl in write-only mode."""
    db = services().database
    with db.session() as session:
        core.get_alert(session, alert_id)  # 404 before anything streams
    _audit_export(alert_id, fmt)
    name = f"loa-alert-{alert_id}-report.{fmt}"
    if fmt == "csv":

        def generate() -> Any:
            with db.session() as session:
                yield from alertio.report_csv(session, alert_id)

        return Response(
            stream_with_context(generate()),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    with db.session() as session:
        data = alertio.report_xlsx(session, alert_id)
    return send_file(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=name,
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
    "Delivery report, XLSX",
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
    """CAP 1.2 XML of an alert (an Update or Cancel references its original)."""
    from broadcast import cap

    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        original = core.get_alert(session, alert.references_id) if alert.references_id else None
        xml = cap.to_cap_xml(
            alert,
            sender=f"loa@{request.host.split(':')[0]}",
            references=original,
            sender_name=alert.brandname,
            timezone=svc.settings.timezone,
        )
    return Response(
        xml,
        mimetype="application/cap+xml",
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
