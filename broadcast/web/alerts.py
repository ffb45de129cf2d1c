"""Console pages for alerts: list, draft with live preview, read-back and approve, watch,
export.

Views parse the form, call broadcast.alerts and render; refusals come back as flashed
messages naming the field, and nothing changes. Approving and cancelling are two steps: the
first page reads back what will happen, only its final button acts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import zip_longest
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select

from broadcast import alerts as core
from broadcast import audience, network, replies, templates
from broadcast.errors import LoaError, PermissionDenied, Reason, VersionChanged
from broadcast.models import (
    Alert,
    AlertCategory,
    AlertStatus,
    Approval,
    Area,
    Brandname,
    Carrier,
    Role,
    User,
)
from broadcast.web import alertio, dispatch, previews
from broadcast.web.api.schemas import AlertIn, AlertOut
from broadcast.web.areas import area_group_labels
from broadcast.web.context import services
from broadcast.web.errors import refusal_text
from broadcast.web.responders import cap_response, help_response, report_response
from broadcast.web.security import READ_ALERTS, RESCUE_EXPORTERS, roles_required
from broadcast.web.templating import NETWORK_LABELS, STATUS_LABELS

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

DRAFTERS = tuple(core.DRAFT_ROLES)
CAP_CHOICES = {"urgency": core.URGENCY, "severity": core.SEVERITY, "certainty": core.CERTAINTY}


def _local_to_aware(value: str) -> str | None:
    """<input type=datetime-local> has no zone: it means the province's local time."""
    if not value:
        return None
    tz = ZoneInfo(services().settings.timezone)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=tz).isoformat()
    except ValueError:
        return value  # the schema refuses it, naming the field


def _form_input() -> dict[str, Any]:
    form = request.form
    return {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "category": form.get("category", ""),
        "areas": form.getlist("areas"),
        "carriers": form.getlist("carriers"),
        "brandname": form.get("brandname", ""),
        "fold": form.get("fold") == "1",
        "schedule_at": _local_to_aware(form.get("schedule_at", "")),
        "expires_at": _local_to_aware(form.get("expires_at", "")),
        "event": form.get("event", ""),
        "urgency": form.get("urgency", "Unknown"),
        "severity": form.get("severity", "Unknown"),
        "certainty": form.get("certainty", "Unknown"),
        "instruction": form.get("instruction", ""),
        "web": form.get("web", ""),
        "reply_keywords": _form_keywords(),
    }


def _form_keywords() -> list[dict[str, Any]]:
    """The reply keyword rows of the form; a row left empty is no keyword."""
    form = request.form
    helps = set(form.getlist("reply_help"))
    rows = zip_longest(form.getlist("reply_word"), form.getlist("reply_label"), fillvalue="")
    return [
        {"word": word, "label": label, "help": str(n) in helps}
        for n, (word, label) in enumerate(rows)
        if word.strip() or label.strip()
    ]


def _with_local(values: dict[str, Any]) -> dict[str, Any]:
    """Aware ISO times back into the local datetime-local values the form shows."""
    tz = ZoneInfo(services().settings.timezone)
    for key in ("schedule_at", "expires_at"):
        raw = values.get(key)
        try:
            moment = datetime.fromisoformat(raw) if raw else None
        except (TypeError, ValueError):
            moment = None
        if moment is not None and moment.tzinfo is not None:
            values[f"{key}_local"] = moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    return values


def _template_values(key: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A template's starting values, with the fields the drafter filled in so far (query
    arguments named after its placeholders), and those fields for the fill-in form."""
    template = templates.get(key)
    asked = [name for name in template.fields if name in templates.FIELD_LABELS]
    given = {name: request.args[name].strip() for name in asked if request.args.get(name)}
    fields = [
        {"name": name, "label": templates.FIELD_LABELS[name]["vi"], "value": given.get(name, "")}
        for name in asked
    ]
    return templates.prefill(key, **given), fields


GROUP_OVER = 12  # more children than this: grouped by level and searchable


def _form_context(session: Any, chosen: list[str] | None = None) -> dict[str, Any]:
    """The area tree of current areas; a node with many children has them grouped by level."""
    areas = session.scalars(select(Area).where(Area.retired_at.is_(None)).order_by(Area.path)).all()
    tree: list[dict[str, Any]] = []
    nodes: dict[int, dict[str, Any]] = {}
    for area in areas:
        node = {"code": area.code, "name": area.name, "level": area.level, "children": []}
        nodes[area.id] = node
        parent = nodes.get(area.parent_id) if area.parent_id else None
        (parent["children"] if parent else tree).append(node)
    labels = area_group_labels()
    picked = set(chosen or [])
    for node in nodes.values():
        if len(node["children"]) <= GROUP_OVER:
            continue
        by_level: dict[str, list[dict[str, Any]]] = {}
        for child in sorted(node["children"], key=lambda c: c["name"]):
            by_level.setdefault(child["level"], []).append(child)
        order = list(labels) + sorted(set(by_level) - set(labels))
        node["groups"] = [
            {
                "level": level,
                "label": labels.get(level, _("Other areas")),
                "children": by_level[level],
                "open": any(c["code"] in picked for c in by_level[level]),
            }
            for level in order
            if level in by_level
        ]
    return {
        "area_tree": tree,
        "carriers": session.scalars(
            select(Carrier).where(Carrier.active).order_by(Carrier.code)
        ).all(),
        "limits": services().settings.rate_limits,
        "brandnames": session.scalars(select(Brandname.name).where(Brandname.active)).all(),
        "categories": list(AlertCategory),
        "cap_choices": CAP_CHOICES,
        "templates": templates.catalogue("vi"),
    }


@bp.route("/")
@roles_required(*READ_ALERTS)
def index() -> ResponseReturnValue:
    with services().database.session() as session:
        rows = session.scalars(select(Alert).order_by(Alert.id.desc()).limit(200)).all()
        authors = dict(session.execute(select(User.id, User.username)).all())
        return render_template("alerts/index.html", alerts=rows, authors=authors)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*DRAFTERS)
def new() -> ResponseReturnValue:
    svc = services()
    values: dict[str, Any] = {
        "category": "warning",
        "carriers": [],
        "areas": [],
        "reply_keywords": [k.as_dict() for k in replies.DEFAULT_KEYWORDS],
    }
    template_fields: list[dict[str, str]] = []
    template_key = request.args.get("template", "")
    if request.method == "GET" and template_key:
        try:
            prefilled, template_fields = _template_values(template_key)
            values.update(prefilled)
        except LoaError as exc:
            flash(refusal_text(exc), "error")
            template_key = ""
    if request.method == "POST":
        values = _form_input()
        try:
            draft = alertio.draft_from(AlertIn().load(values))
            with svc.database.session() as session:
                alert = core.create_draft(session, draft, user=current_user.db_user(session))
                alert_id = alert.id
            flash(_("Draft saved."), "success")
            return redirect(url_for("alerts.show", alert_id=alert_id))
        except (LoaError, ValidationError) as exc:
            flash(refusal_text(exc), "error")
    with svc.database.session() as session:
        return render_template(
            "alerts/form.html",
            values=_with_local(values),
            alert=None,
            template_key=template_key,
            template_fields=template_fields,
            **_form_context(session, values.get("areas")),
        )


@bp.route("/<int:alert_id>/edit", methods=["GET", "POST"])
@roles_required(*DRAFTERS)
def edit(alert_id: int) -> ResponseReturnValue:
    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        summary = AlertOut().dump(alert)
    values: dict[str, Any] = {**summary, "areas": [a["code"] for a in summary["areas"]]}
    if request.method == "POST":
        values = _form_input()
        try:
            draft = alertio.draft_from(AlertIn().load(values))
            with svc.database.session() as session:
                core.update_draft(session, alert_id, draft, user=current_user.db_user(session))
            flash(_("Draft saved."), "success")
            return redirect(url_for("alerts.show", alert_id=alert_id))
        except (LoaError, ValidationError) as exc:
            flash(refusal_text(exc), "error")
    with svc.database.session() as session:
        return render_template(
            "alerts/form.html",
            values=_with_local(values),
            alert=summary,
            template_key="",
            template_fields=[],
            **_form_context(session, values.get("areas")),
        )


@bp.route("/<int:alert_id>")
@roles_required(*READ_ALERTS)
def show(alert_id: int) -> ResponseReturnValue:
    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        summary = AlertOut().dump(alert)
        people = dict(session.execute(select(User.id, User.username)).all())
        decisions = session.scalars(
            select(Approval).where(Approval.alert_id == alert_id).order_by(Approval.id)
        ).all()
        progress = alertio.progress(svc.redis, session, alert, svc.settings.rate_limits)
        # Before the fan-out the lists say who will receive it; after, the snapshot does.
        figures = (
            None if progress["total"] else previews.alert_audience(session, svc.settings, alert)
        )
        resends = session.scalars(
            select(Alert.id).where(Alert.resend_of_id == alert_id).order_by(Alert.id)
        ).all()
        offers = _resend_offers(session, alert, summary)
        # Replies are shown from approval on (and go on coming after the alert is sent).
        answers = replies.summary(session, alert) if alert.approved_at else None
    return render_template(
        "alerts/show.html",
        alert=summary,
        people=people,
        decisions=decisions,
        progress=progress,
        figures=figures,
        replies=answers,
        audience_total=progress["total"] or (figures or {}).get("audience_total"),
        can=_abilities(summary),
        cap_available="alerts.cap" in current_app.view_functions,
        status_labels={s.value: str(label) for s, label in STATUS_LABELS.items()},
        network_labels={s.value: str(label) for s, label in NETWORK_LABELS.items()},
        resends=resends,
        offers=offers,
    )


def _resend_offers(session: Any, alert: Alert, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Targeted areas whose carrier reports normal again after trouble since the alert went
    out, with the numbers the alert did not reach there: the moment to resend."""
    if not _abilities(summary)["resend"] or alert.approved_at is None:
        return []
    offers = []
    for row in network.restored(
        session,
        area_codes=[a.code for a in alert.areas],
        carrier_codes=[c.code for c in alert.carriers],
        since=alert.approved_at,
    ):
        left = audience.audience_counts(
            session,
            area_codes=[row["code"]],
            carrier_codes=[row["carrier"]],
            test=False,
            resend_of=alert.id,
        )[row["carrier"]]
        if left:
            offers.append({**row, "unreached": left})
    return offers


def _abilities(summary: dict[str, Any]) -> dict[str, bool]:
    """Which buttons to show; the services decide again (and refuse) when they are pressed."""
    allowed = set(summary["allowed_actions"])
    mine = summary["created_by"] == current_user.id
    role = current_user.role
    return {
        "edit": "submit" in allowed and mine,
        "submit": "submit" in allowed and mine,
        "withdraw": "withdraw" in allowed and mine,
        "decide": "approve" in allowed and role in core.APPROVE_ROLES and not mine,
        # Offered while the alert is out, shown by the watch page as the status moves on.
        "control": summary["status"] in WATCHED and role in core.CONTROL_ROLES,
        "cancel": "cancel" in allowed
        and (
            role in core.CONTROL_ROLES
            or (mine and summary["status"] in ("draft", "pending_approval"))
        ),
        "derive": summary["approved_at"] is not None and role in core.DRAFT_ROLES,
        "resend": summary["approved_at"] is not None
        and summary["status"] in ("completed", "cancelled")
        and role in core.DRAFT_ROLES,
        "export_help": role in RESCUE_EXPORTERS,
    }


WATCHED = frozenset({"approved", "scheduled", "sending", "paused"})


def _decidable(alert_id: int) -> Any:
    """The alert an approver is about to decide on, or the page to send them back to."""
    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        summary = AlertOut().dump(alert)
        if summary["created_by"] == current_user.id:
            raise PermissionDenied(
                Reason("own_alert_approve", "a drafter cannot approve their own alert")
            )
        if summary["status"] != AlertStatus.PENDING_APPROVAL.value:
            flash(_("This alert is not awaiting approval any more."), "error")
            return redirect(url_for("alerts.show", alert_id=alert_id))
        version = request.args.get("version", type=int)
        if version is None:
            flash(_("This page is out of date. Read the alert again before approving."), "error")
            return redirect(url_for("alerts.show", alert_id=alert_id))
        if version != alert.version:
            exc = VersionChanged(alert.id, read=version, current=alert.version)
            flash(refusal_text(exc), "error")
            return redirect(url_for("alerts.show", alert_id=alert_id))
        figures = previews.alert_audience(session, svc.settings, alert)
    return summary, figures


@bp.route("/<int:alert_id>/readback")
@roles_required(*core.APPROVE_ROLES)
def readback(alert_id: int) -> ResponseReturnValue:
    """Step one of approving: what will happen, read back, with the one button that sends."""
    found = _decidable(alert_id)
    if not isinstance(found, tuple):
        return found
    summary, figures = found
    waive_quiet_hours = request.args.get("waive_quiet_hours") == "1"
    waive_daily_cap = request.args.get("waive_daily_cap") == "1"
    codes = {note["code"] for note in figures["rules"]}
    return render_template(
        "alerts/readback.html",
        alert=summary,
        figures=figures,
        messages=(figures["audience_total"] or 0) * summary["parts"],
        waive_quiet_hours=waive_quiet_hours,
        waive_daily_cap=waive_daily_cap,
        refused_now="quiet_hours_now" in codes and not waive_quiet_hours,
    )


@bp.route("/<int:alert_id>/cancel/confirm")
@roles_required(*DRAFTERS)
def confirm_cancel(alert_id: int) -> ResponseReturnValue:
    """Cancelling stops what is not sent yet and cannot be undone: it is asked for twice."""
    svc = services()
    with svc.database.session() as session:
        alert = core.get_alert(session, alert_id)
        summary = AlertOut().dump(alert)
        progress = alertio.progress(svc.redis, session, alert, svc.settings.rate_limits)
    if not _abilities(summary)["cancel"]:
        flash(_("This alert cannot be cancelled by you now."), "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    return render_template("alerts/cancel.html", alert=summary, progress=progress)


ACTIONS: dict[str, tuple[Callable[..., Alert], tuple[Role, ...]]] = {
    "submit": (core.submit_for_approval, tuple(core.DRAFT_ROLES)),
    "withdraw": (core.withdraw, tuple(core.DRAFT_ROLES)),
    "approve": (core.approve, tuple(core.APPROVE_ROLES)),
    "reject": (core.reject, tuple(core.APPROVE_ROLES)),
    "pause": (core.pause, tuple(core.CONTROL_ROLES)),
    "resume": (core.resume, tuple(core.CONTROL_ROLES)),
    "cancel": (core.cancel, tuple(core.DRAFT_ROLES)),
}


@bp.route("/<int:alert_id>/<action>", methods=["POST"])
@roles_required(Role.DRAFTER, Role.APPROVER, Role.ADMIN)
def act(alert_id: int, action: str) -> ResponseReturnValue:
    if action not in ACTIONS:
        abort(404)
    service, roles = ACTIONS[action]
    if current_user.role not in roles:
        abort(403)
    svc = services()
    kwargs: dict[str, Any] = {}
    if action == "approve":
        # The version of the page the approver read; a page without one is not trusted.
        version = request.form.get("version", type=int)
        if version is None:
            flash(_("This page is out of date. Read the alert again before approving."), "error")
            return redirect(url_for("alerts.show", alert_id=alert_id))
        kwargs = {
            "version": version,
            "waive_quiet_hours": request.form.get("waive_quiet_hours") == "1",
            "waive_daily_cap": request.form.get("waive_daily_cap") == "1",
            "settings": svc.settings,
        }
    elif action == "reject":
        kwargs = {"reason": request.form.get("reason", "")}
    try:
        with svc.database.session() as session:
            alert = service(session, alert_id, user=current_user.db_user(session), **kwargs)
            status, schedule_at = AlertStatus(alert.status), alert.schedule_at
    except VersionChanged as exc:
        flash(refusal_text(exc), "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    except LoaError as exc:
        if isinstance(exc, PermissionDenied):
            raise
        flash(refusal_text(exc), "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    dispatch.after_transition(svc, alert_id, status, schedule_at=schedule_at)
    if action == "resume":
        dispatch.resumed(svc, alert_id)
    flash(_("Done: %(status)s.", status=str(STATUS_LABELS.get(status, status.value))), "success")
    return redirect(url_for("alerts.show", alert_id=alert_id))


@bp.route("/<int:alert_id>/resend")
@roles_required(*DRAFTERS)
def confirm_resend(alert_id: int) -> ResponseReturnValue:
    """Step one of a resend: how many numbers it would reach, per carrier, read back before
    the draft is made (areas=…&carriers=… narrow it)."""
    areas = request.args.getlist("areas") or None
    carriers = request.args.getlist("carriers") or None
    try:
        with services().database.session() as session:
            summary = AlertOut().dump(core.get_alert(session, alert_id))
            area_codes, carrier_codes, counts = core.resend_counts(
                session, alert_id, areas=areas, carriers=carriers
            )
            names = {
                code: name
                for code, name in session.execute(
                    select(Area.code, Area.name).where(Area.code.in_(area_codes))
                )
            }
    except LoaError as exc:
        flash(refusal_text(exc), "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    return render_template(
        "alerts/resend.html",
        alert=summary,
        areas=[(code, names.get(code, code)) for code in area_codes],
        carriers=carrier_codes,
        counts=counts,
        total=sum(counts.values()),
        narrowed=bool(areas or carriers),
    )


@bp.route("/<int:alert_id>/derive", methods=["POST"])
@roles_required(*DRAFTERS)
def derive(alert_id: int) -> ResponseReturnValue:
    svc = services()
    try:
        with svc.database.session() as session:
            alert = core.derive(
                session,
                alert_id,
                kind=request.form.get("kind", ""),
                user=current_user.db_user(session),
                timezone=svc.settings.timezone,
                areas=request.form.getlist("areas") or None,
                carriers=request.form.getlist("carriers") or None,
            )
            new_id = alert.id
    except LoaError as exc:
        if isinstance(exc, PermissionDenied):
            raise
        flash(refusal_text(exc), "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    flash(_("A new draft references the alert. Check it and ask for approval."), "success")
    return redirect(url_for("alerts.edit", alert_id=new_id))


@bp.route("/<int:alert_id>/report.<fmt>")
@roles_required(*READ_ALERTS)
def report(alert_id: int, fmt: str) -> ResponseReturnValue:
    if fmt not in ("csv", "xlsx"):
        abort(404)
    return report_response(alert_id, fmt)


@bp.route("/<int:alert_id>/help.csv")
@roles_required(*RESCUE_EXPORTERS)
def help_export(alert_id: int) -> ResponseReturnValue:
    return help_response(alert_id)


@bp.route("/<int:alert_id>/cap.xml")
@roles_required(*READ_ALERTS)
def cap(alert_id: int) -> ResponseReturnValue:
    return cap_response(alert_id)
