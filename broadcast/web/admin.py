"""Administration pages: users, API tokens, brandnames, the test group, the audit log.

An admin manages users (creates, deactivates them) and may revoke any API token, but never
makes a credential for someone else: each user makes their own tokens (auth.tokens).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import func, select

from broadcast import accounts, audit, drills, registry
from broadcast.errors import LoaError, NotFound
from broadcast.models import ApiToken, Area, AuditEntry, Carrier, RecipientGroup, Role, User
from broadcast.web.api.schemas import UserIn, UserPatch
from broadcast.web.context import services
from broadcast.web.errors import refusal_text
from broadcast.web.inputs import page_arg
from broadcast.web.responders import number_normaliser
from broadcast.web.security import client_ip, roles_required
from broadcast.web.templating import AUDIT_ACTION_LABELS

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def users() -> ResponseReturnValue:
    db = services().database
    if request.method == "POST":
        try:
            data = UserIn().load(
                {
                    k: v
                    for k, v in request.form.items()
                    if k != "csrf_token" and (v or k in ("username", "password", "role"))
                }
            )
            with db.session() as session:
                accounts.create_user(
                    session,
                    username=data["username"],
                    password=data["password"],
                    role=Role(data["role"]),
                    display_name=data["display_name"],
                    carrier_code=data["carrier"],
                    actor=current_user.db_user(session),
                )
            flash(_("User %(name)s created.", name=data["username"]), "success")
            return redirect(url_for("admin.users"))
        except (LoaError, ValidationError) as exc:
            flash(refusal_text(exc), "error")
    with db.session() as session:
        rows = session.scalars(select(User).order_by(User.username)).all()
        carriers = session.scalars(select(Carrier).order_by(Carrier.code)).all()
        tokens = session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).all()
        for t in tokens:
            assert t.user is not None  # load while the session is open
        for u in rows:
            assert u.carrier is None or u.carrier.code
        return render_template(
            "admin/users.html", users=rows, carriers=carriers, tokens=tokens, roles=list(Role)
        )


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def set_active(user_id: int) -> ResponseReturnValue:
    active = request.form.get("active") == "1"
    with services().database.session() as session:
        user = session.get(User, user_id)
        if user is None:
            abort(404)
        if user.id == current_user.id and not active:
            flash(_("You cannot deactivate yourself."), "error")
            return redirect(url_for("admin.users"))
        before = {"active": user.active}
        user.active = active
        if not active:
            services().sessions.end_user(user.id)
        audit.record(
            session,
            actor=current_user.db_user(session),
            action="user.update",
            object_type="user",
            object_id=user.id,
            before=before,
            after={"active": active},
            ip=client_ip(),
        )
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles_required(Role.ADMIN)
def reset_password(user_id: int) -> ResponseReturnValue:
    """An administrator sets a new password for a user (who forgot theirs); every session of
    that user ends, so whoever held the old password is logged out."""
    svc = services()
    try:
        data = UserPatch(only=("password",)).load({"password": request.form.get("password", "")})
        with svc.database.session() as session:
            user = session.get(User, user_id)
            if user is None:
                abort(404)
            accounts.set_password(
                session, user, data["password"], actor=current_user.db_user(session)
            )
            name = user.username
    except (LoaError, ValidationError) as exc:
        flash(refusal_text(exc), "error")
        return redirect(url_for("admin.users"))
    svc.sessions.end_user(user_id)  # after the commit, as the API does
    flash(_("New password set for %(name)s; their sessions have ended.", name=name), "success")
    return redirect(url_for("admin.users"))


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required(Role.ADMIN)
def revoke_token(token_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        accounts.revoke_token(session, token_id, actor=current_user.db_user(session))
    flash(_("Token revoked."), "success")
    return redirect(url_for("admin.users"))


AUDIT_PAGE_SIZE = 50


class BadFilter(ValueError):
    """A filter value of the audit log that cannot be used (shown to the person, 400)."""


def _audit_date(name: str, tz: ZoneInfo) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise BadFilter(
            _("The date %(value)s is not a date such as 2026-11-20.", value=repr(raw[:40]))
        )
    # In UTC: SQLite keeps the stored wall time (UTC) and compares it as text.
    return datetime.combine(day, time.min, tz).astimezone(UTC)


def audit_filters(tz: ZoneInfo) -> dict[str, Any]:
    """The audit log's filters from the query string: actor (user name, exact), action (one
    of the known codes), from/to (local dates, both included)."""
    actor = request.args.get("actor", "").strip()
    if len(actor) > 120:
        raise BadFilter(_("A user name has at most 120 characters."))
    action = request.args.get("action", "").strip()
    if action and action not in AUDIT_ACTION_LABELS:
        raise BadFilter(
            _("There is no action %(value)s in the audit log.", value=repr(action[:80]))
        )
    start, end = _audit_date("from", tz), _audit_date("to", tz)
    if start and end and start > end:
        raise BadFilter(_("The start date is after the end date."))
    return {"actor": actor, "action": action, "start": start, "end": end}


@bp.route("/audit")
@roles_required(Role.ADMIN, Role.AUDITOR)
def audit_log() -> ResponseReturnValue:
    size = AUDIT_PAGE_SIZE
    page = page_arg(size)
    tz = ZoneInfo(services().settings.timezone)
    args = {k: request.args.get(k, "") for k in ("actor", "action", "from", "to")}
    try:
        filters = audit_filters(tz)
    except BadFilter as exc:
        return render_template(
            "admin/audit.html",
            entries=[],
            page=1,
            size=size,
            total=0,
            args=args,
            error=str(exc),
            actions=AUDIT_ACTION_LABELS,
        ), 400
    query = select(AuditEntry)
    if filters["actor"]:
        query = query.where(AuditEntry.actor == filters["actor"])
    if filters["action"]:
        query = query.where(AuditEntry.action == filters["action"])
    if filters["start"]:
        query = query.where(AuditEntry.at >= filters["start"])
    if filters["end"]:
        query = query.where(AuditEntry.at < filters["end"] + timedelta(days=1))
    with services().database.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(AuditEntry.id.desc()).limit(size).offset((page - 1) * size)
        ).all()
    return render_template(
        "admin/audit.html",
        entries=rows,
        page=page,
        size=size,
        total=total,
        args=args,
        error=None,
        actions=AUDIT_ACTION_LABELS,
    )


# -- brandnames and the test group (rules in broadcast.registry) -----------------------------


@bp.route("/brandnames", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def brandnames() -> ResponseReturnValue:
    db = services().database
    if request.method == "POST":
        try:
            with db.session() as session:
                row = registry.add_brandname(
                    session,
                    request.form.get("name", ""),
                    actor=current_user.db_user(session),
                    ip=client_ip(),
                )
                name = row.name
            flash(_("Brandname %(name)s registered.", name=name), "success")
            return redirect(url_for("admin.brandnames"))
        except LoaError as exc:
            flash(refusal_text(exc), "error")
    with db.session() as session:
        rows = registry.list_brandnames(session)
        return render_template("admin/brandnames.html", brandnames=rows)


@bp.route("/brandnames/<int:brandname_id>/deactivate", methods=["POST"])
@roles_required(Role.ADMIN)
def deactivate_brandname(brandname_id: int) -> ResponseReturnValue:
    try:
        with services().database.session() as session:
            row = registry.deactivate_brandname(
                session, brandname_id, actor=current_user.db_user(session), ip=client_ip()
            )
            name = row.name
    except NotFound:
        abort(404)
    flash(_("Brandname %(name)s deactivated.", name=name), "success")
    return redirect(url_for("admin.brandnames"))


GROUP_PAGES = {
    RecipientGroup.TEST: {
        "title": _l("Test group"),
        "intro": _l(
            "Test alerts go only to these numbers, through the carrier chosen for each "
            "(the prefix does not tell the carrier)."
        ),
        "added": _l("%(msisdn)s added to the test group."),
        "removed": _l("%(msisdn)s removed from the test group."),
        "page": "admin.test_group",
        "remove": "admin.remove_test_recipient",
    },
    RecipientGroup.DRILL: {
        "title": _l("Drill group"),
        "intro": _l(
            "Drills (exercise alerts) go only to these numbers, through the carrier chosen "
            "for each: the officials, volunteers and rescue teams who take part."
        ),
        "added": _l("%(msisdn)s added to the drill group."),
        "removed": _l("%(msisdn)s removed from the drill group."),
        "page": "admin.drill_group",
        "remove": "admin.remove_drill_recipient",
    },
}


def _group_page(group: RecipientGroup) -> ResponseReturnValue:
    """The test group's or the drill group's page: list, add (rules in broadcast.registry)."""
    texts = GROUP_PAGES[group]
    db = services().database
    values = {"msisdn": "", "carrier": "", "name": ""}
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in values}
        try:
            with db.session() as session:
                row = registry.add_test_recipient(
                    session,
                    msisdn=values["msisdn"],
                    carrier_code=values["carrier"],
                    name=values["name"],
                    normalise=number_normaliser(),
                    actor=current_user.db_user(session),
                    ip=client_ip(),
                    group=group,
                )
            flash(str(texts["added"]) % {"msisdn": row.msisdn}, "success")
            return redirect(url_for(str(texts["page"])))
        except LoaError as exc:
            flash(refusal_text(exc), "error")
    with db.session() as session:
        rows = registry.list_test_recipients(session, group)
        carriers = session.scalars(
            select(Carrier).where(Carrier.active).order_by(Carrier.code)
        ).all()
        return render_template(
            "admin/test_group.html",
            recipients=rows,
            carriers=carriers,
            values=values,
            texts=texts,
            prefix=group.value,
        )


def _remove_from_group(group: RecipientGroup, recipient_id: int) -> ResponseReturnValue:
    texts = GROUP_PAGES[group]
    try:
        with services().database.session() as session:
            gone = registry.remove_test_recipient(
                session,
                recipient_id,
                actor=current_user.db_user(session),
                ip=client_ip(),
                group=group,
            )
    except NotFound:
        abort(404)
    flash(str(texts["removed"]) % {"msisdn": gone.msisdn}, "success")
    return redirect(url_for(str(texts["page"])))


@bp.route("/test-group", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def test_group() -> ResponseReturnValue:
    return _group_page(RecipientGroup.TEST)


@bp.route("/test-group/<int:recipient_id>/remove", methods=["POST"])
@roles_required(Role.ADMIN)
def remove_test_recipient(recipient_id: int) -> ResponseReturnValue:
    return _remove_from_group(RecipientGroup.TEST, recipient_id)


@bp.route("/drill-group", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def drill_group() -> ResponseReturnValue:
    return _group_page(RecipientGroup.DRILL)


@bp.route("/drill-group/<int:recipient_id>/remove", methods=["POST"])
@roles_required(Role.ADMIN)
def remove_drill_recipient(recipient_id: int) -> ResponseReturnValue:
    return _remove_from_group(RecipientGroup.DRILL, recipient_id)


# -- recurring drills (rules in broadcast.drills) ---------------------------------------------


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


@bp.route("/drills", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def drill_schedules() -> ResponseReturnValue:
    svc = services()
    form = request.form
    values: dict = {"at_time": "09:00", "lead_days": "7", "areas": [], "carriers": []}
    if request.method == "POST":
        values = {k: form.get(k, "") for k in ("title", "body", "brandname", "at_time")}
        values |= {
            "day_of_month": form.get("day_of_month", ""),
            "lead_days": form.get("lead_days", "7"),
            "fold": form.get("fold") == "1",
            "areas": form.getlist("areas"),
            "carriers": form.getlist("carriers"),
        }
        plan = drills.DrillPlan(
            title=values["title"],
            body=values["body"],
            area_codes=tuple(values["areas"]),
            carrier_codes=tuple(values["carriers"]),
            brandname=values["brandname"],
            day_of_month=_int(values["day_of_month"]),
            at_time=values["at_time"],
            lead_days=_int(values["lead_days"]),
            fold=values["fold"],
        )
        try:
            with svc.database.session() as session:
                drills.create_schedule(
                    session,
                    plan,
                    user=current_user.db_user(session),
                    now=datetime.now(UTC),
                    timezone=svc.settings.timezone,
                )
            flash(_("Recurring drill scheduled."), "success")
            return redirect(url_for("admin.drill_schedules"))
        except LoaError as exc:
            flash(refusal_text(exc), "error")
    with svc.database.session() as session:
        rows = drills.list_schedules(session)
        areas = session.scalars(
            select(Area).where(Area.retired_at.is_(None)).order_by(Area.path)
        ).all()
        carriers = session.scalars(
            select(Carrier).where(Carrier.active).order_by(Carrier.code)
        ).all()
        return render_template(
            "admin/drills.html", schedules=rows, areas=areas, carriers=carriers, values=values
        )


@bp.route("/drills/<int:schedule_id>/deactivate", methods=["POST"])
@roles_required(Role.ADMIN)
def deactivate_drill_schedule(schedule_id: int) -> ResponseReturnValue:
    try:
        with services().database.session() as session:
            drills.deactivate(session, schedule_id, user=current_user.db_user(session))
    except NotFound:
        abort(404)
    flash(_("Recurring drill stopped."), "success")
    return redirect(url_for("admin.drill_schedules"))
