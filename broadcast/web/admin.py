"""Administration pages: users, API tokens, brandnames, the test group, the audit log.

An admin manages users (creates, deactivates them) and may revoke any API token, but never
makes a credential for someone else: each user makes their own tokens (auth.tokens).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select

from broadcast import accounts, audit, registry
from broadcast.errors import LoaError, NotFound
from broadcast.models import ApiToken, AuditEntry, Carrier, Role, User
from broadcast.web.api.schemas import UserIn, UserPatch
from broadcast.web.context import services
from broadcast.web.errors import refusal_text
from broadcast.web.inputs import page_arg
from broadcast.web.responders import number_normaliser
from broadcast.web.security import client_ip, roles_required

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


@bp.route("/audit")
@roles_required(Role.ADMIN, Role.AUDITOR)
def audit_log() -> ResponseReturnValue:
    size = 100
    page = page_arg(size)
    with services().database.session() as session:
        rows = session.scalars(
            select(AuditEntry).order_by(AuditEntry.id.desc()).limit(size).offset((page - 1) * size)
        ).all()
    return render_template("admin/audit.html", entries=rows, page=page, size=size)


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


@bp.route("/test-group", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def test_group() -> ResponseReturnValue:
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
                )
            flash(_("%(msisdn)s added to the test group.", msisdn=row.msisdn), "success")
            return redirect(url_for("admin.test_group"))
        except LoaError as exc:
            flash(refusal_text(exc), "error")
    with db.session() as session:
        rows = registry.list_test_recipients(session)
        carriers = session.scalars(
            select(Carrier).where(Carrier.active).order_by(Carrier.code)
        ).all()
        return render_template(
            "admin/test_group.html", recipients=rows, carriers=carriers, values=values
        )


@bp.route("/test-group/<int:recipient_id>/remove", methods=["POST"])
@roles_required(Role.ADMIN)
def remove_test_recipient(recipient_id: int) -> ResponseReturnValue:
    try:
        with services().database.session() as session:
            gone = registry.remove_test_recipient(
                session, recipient_id, actor=current_user.db_user(session), ip=client_ip()
            )
    except NotFound:
        abort(404)
    flash(_("%(msisdn)s removed from the test group.", msisdn=gone.msisdn), "success")
    return redirect(url_for("admin.test_group"))
