"""Alerts: draft, submit, approve or reject, control, derive, watch, export."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from broadcast import alerts as core
from broadcast import replies, templates
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
    ProgressQuery,
    RejectIn,
    RepliesOut,
    TemplateOut,
    TemplateQuery,
)
from broadcast.web.context import services
from broadcast.web.responders import cap_response, help_response, report_response
from broadcast.web.security import READ_ALERTS, RESCUE_EXPORTERS

DRAFTERS = tuple(sorted(core.DRAFT_ROLES, key=lambda r: r.value))
APPROVERS = tuple(core.APPROVE_ROLES)
CONTROLLERS = tuple(sorted(core.CONTROL_ROLES, key=lambda r: r.value))
AUTHORS = (Role.ADMIN, Role.APPROVER, Role.DRAFTER)
WRITE_ERRORS = (400, 401, 403, 404, 409, 422)


def _one(alert: Alert) -> dict[str, Any]:
    return AlertOut().dump(alert)


@bp.get("/alerts")
@document(
    "List alerts, newest first",
    roles=READ_ALERTS,
    tag="alerts",
    query=AlertListQuery,
    response=AlertOut,
    many=True,
    errors=(401, 403, 422),
)
def list_alerts() -> ResponseReturnValue:
    args = load_query(AlertListQuery())
    with services().database.session() as session:
        query = select(Alert).order_by(Alert.id.desc()).limit(args["limit"])
        if args["status"]:
            query = query.where(Alert.status == AlertStatus(args["status"]))
        return jsonify([_one(a) for a in session.scalars(query)])


@bp.post("/alerts")
@document(
    "Create a draft",
    roles=DRAFTERS,
    tag="alerts",
    body=AlertIn,
    response=AlertOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def create_alert() -> ResponseReturnValue:
    draft = alertio.draft_from(load_json(AlertIn()))
    with services().database.session() as session:
        alert = core.create_draft(session, draft, user=current_user.db_user(session))
        return jsonify(_one(alert)), 201


@bp.get("/alerts/<int:alert_id>")
@document("One alert", roles=READ_ALERTS, tag="alerts", response=AlertOut, errors=(401, 403, 404))
def get_alert(alert_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        return jsonify(_one(core.get_alert(session, alert_id)))


@bp.put("/alerts/<int:alert_id>")
@document(
    "Edit a draft (its author only)",
    roles=DRAFTERS,
    tag="alerts",
    body=AlertIn,
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def update_alert(alert_id: int) -> ResponseReturnValue:
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
@document(
    "Ask for approval (the author)",
    roles=AUTHORS,
    tag="alerts",
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def submit_alert(alert_id: int) -> ResponseReturnValue:
    return _act(alert_id, core.submit_for_approval)


@bp.post("/alerts/<int:alert_id>/withdraw")
@document(
    "Take a submitted alert back to draft (the author)",
    roles=AUTHORS,
    tag="alerts",
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def withdraw_alert(alert_id: int) -> ResponseReturnValue:
    return _act(alert_id, core.withdraw)


@bp.post("/alerts/<int:alert_id>/approve")
@document(
    "Approve (a second person); waivers for quiet hours and the daily cap",
    roles=APPROVERS,
    tag="alerts",
    body=ApproveIn,
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def approve_alert(alert_id: int) -> ResponseReturnValue:
    data = load_json(ApproveIn())
    return _act(alert_id, core.approve, settings=services().settings, **data)


@bp.post("/alerts/<int:alert_id>/reject")
@document(
    "Reject with a reason (back to draft)",
    roles=APPROVERS,
    tag="alerts",
    body=RejectIn,
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def reject_alert(alert_id: int) -> ResponseReturnValue:
    data = load_json(RejectIn())
    return _act(alert_id, core.reject, reason=data["reason"])


@bp.post("/alerts/<int:alert_id>/pause")
@document("Pause sending", roles=CONTROLLERS, tag="alerts", response=AlertOut, errors=WRITE_ERRORS)
def pause_alert(alert_id: int) -> ResponseReturnValue:
    return _act(alert_id, core.pause)


@bp.post("/alerts/<int:alert_id>/resume")
@document("Resume sending", roles=CONTROLLERS, tag="alerts", response=AlertOut, errors=WRITE_ERRORS)
def resume_alert(alert_id: int) -> ResponseReturnValue:
    response = _act(alert_id, core.resume)
    dispatch.resumed(services(), alert_id)
    return response


@bp.post("/alerts/<int:alert_id>/cancel")
@document(
    "Cancel (an approver or admin; the author for an unapproved alert)",
    roles=AUTHORS,
    tag="alerts",
    response=AlertOut,
    errors=WRITE_ERRORS,
)
def cancel_alert(alert_id: int) -> ResponseReturnValue:
    return _act(alert_id, core.cancel)


@bp.post("/alerts/<int:alert_id>/derive")
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
def derive_alert(alert_id: int) -> ResponseReturnValue:
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
@document(
    "Live progress per carrier and reach per area (poll every second)",
    roles=READ_ALERTS,
    tag="alerts",
    query=ProgressQuery,
    response=ProgressOut,
    errors=(401, 403, 404, 422),
)
def alert_progress(alert_id: int) -> ResponseReturnValue:
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
@document(
    "Replies people texted back, by keyword and by commune (poll while sending)",
    roles=READ_ALERTS,
    tag="alerts",
    response=RepliesOut,
    errors=(401, 403, 404),
)
def alert_replies(alert_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        alert = core.get_alert(session, alert_id)
        return jsonify(RepliesOut().dump(replies.summary(session, alert)))


@bp.get("/alerts/<int:alert_id>/help.csv")
@document(
    "Numbers that replied asking for help, with their commune: CSV for rescue teams (audited)",
    roles=RESCUE_EXPORTERS,
    tag="reports",
    produces="text/csv",
    errors=(401, 403, 404),
)
def help_csv(alert_id: int) -> ResponseReturnValue:
    return help_response(alert_id)


@bp.get("/alerts/<int:alert_id>/report.csv")
@document(
    "Delivery report, CSV (streamed)",
    roles=READ_ALERTS,
    tag="reports",
    produces="text/csv",
    errors=(401, 403, 404),
)
def report_csv(alert_id: int) -> ResponseReturnValue:
    return report_response(alert_id, "csv")


@bp.get("/alerts/<int:alert_id>/report.xlsx")
@document(
    "Delivery report, XLSX (streamed; a summary sheet first)",
    roles=READ_ALERTS,
    tag="reports",
    produces="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    errors=(401, 403, 404),
)
def report_xlsx(alert_id: int) -> ResponseReturnValue:
    return report_response(alert_id, "xlsx")


@bp.get("/templates")
@document(
    "Alert templates (correction and all-clear among them)",
    roles=READ_ALERTS,
    tag="alerts",
    query=TemplateQuery,
    response=TemplateOut,
    many=True,
    errors=(401, 403, 422),
)
def list_templates() -> ResponseReturnValue:
    language = load_query(TemplateQuery())["language"]
    return jsonify(TemplateOut(many=True).dump(templates.catalogue(language)))


@bp.get("/alerts/<int:alert_id>/cap.xml")
@document(
    "The alert as CAP 1.2 XML",
    roles=READ_ALERTS,
    tag="reports",
    produces="application/cap+xml",
    errors=(401, 403, 404),
)
def alert_cap(alert_id: int) -> ResponseReturnValue:
    return cap_response(alert_id)
