"""Log in and out, switch language, one's own API tokens. Login attempts are throttled per
username and client address, and per username from devices that never logged in as it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from marshmallow import ValidationError
from sqlalchemy import select

from broadcast import accounts, audit
from broadcast.accounts import check_login
from broadcast.models import ApiToken, Role, User
from broadcast.web.api.schemas import TokenIn
from broadcast.web.context import services
from broadcast.web.errors import refusal_text
from broadcast.web.i18n import LOCALES
from broadcast.web.responders import token_expiry_days
from broadcast.web.security import (
    CurrentUser,
    LoginThrottle,
    client_ip,
    known_device,
    remember_device,
)
from broadcast.web.sessions import ServerSession

bp = Blueprint("auth", __name__)

HOME_FOR_ROLE = {
    Role.CARRIER: "carriers.index",
    Role.ADMIN: "admin.users",
}


def home_endpoint() -> str:
    return HOME_FOR_ROLE.get(current_user.role, "alerts.index")


@bp.route("/")
def index() -> ResponseReturnValue:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(home_endpoint()))


def _safe_next(target: str | None) -> str | None:
    """A path of this site, or None. Browsers drop tabs and newlines from URLs and read "\\"
    as "/", so "/\t/evil.example" would leave the site: any such character refuses the target
    (and a CR/LF never reaches a header)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    svc = services()
    if request.method == "GET":
        # The session that will hold the form's CSRF token lives in Redis: without Redis the
        # form could never be sent, so say so now (503) rather than "form expired" later.
        svc.redis.ping()
        return render_template("auth/login.html", error=None)
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    ip = client_ip()
    web = svc.settings.web
    throttle = LoginThrottle(
        svc.redis,
        web.login_attempts_per_minute,
        web.login_attempts_per_account,
        web.login_account_window_seconds,
    )
    message, known = None, known_device(username)
    if not throttle.attempt(username, ip):
        message = _("Too many failed attempts. Wait a minute and try again.")
    elif not known and not throttle.account_attempt(username):
        message = _(
            "Too many failed attempts on this account. Try again in %(minutes)s minutes, "
            "or from a browser you have logged in from before.",
            minutes=-(-web.login_account_window_seconds // 60),
        )
    if message is not None:
        with svc.database.session() as s:
            audit.record(
                s,
                actor=username or "anonymous",
                action="login.throttled",
                object_type="user",
                ip=ip,
            )
        return render_template("auth/login.html", error=message, username=username), 429
    with svc.database.session() as s:
        user = s.scalar(select(User).where(User.username == username)) if username else None
        ok = check_login(user, password)
        if not ok:
            audit.record(
                s,
                actor=username or "anonymous",
                action="login.failed",
                object_type="user",
                object_id=user.id if user else None,
                ip=ip,
            )
        else:
            assert user is not None
            user.last_login_at = datetime.now(UTC)
            audit.record(
                s, actor=user, action="login", object_type="user", object_id=user.id, ip=ip
            )
            who = CurrentUser.of(user)
    if not ok:
        message = _("Wrong username or password.")
        return render_template("auth/login.html", error=message, username=username), 401
    throttle.clear(username, ip, counted_on_account=not known)
    locale = session.get("locale")
    session.clear()
    cast(ServerSession, session).rotate()  # a new session id at login: no fixation
    if locale:
        session["locale"] = locale
    login_user(who)
    answer = redirect(_safe_next(request.args.get("next")) or url_for(home_endpoint()))
    return remember_device(answer, username)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    with services().database.session() as s:
        audit.record(
            s,
            actor=current_user.username,
            action="logout",
            object_type="user",
            object_id=current_user.id,
            ip=client_ip(),
        )
    locale = session.get("locale")
    logout_user()
    session.clear()
    # The session ends on the server: a copy of its cookie opens nothing.
    cast(ServerSession, session).rotate()
    if locale:  # the language chosen with the header switch outlives the login
        session["locale"] = locale
    return redirect(url_for("auth.login"))


@bp.route("/locale/<code>", methods=["POST"])
def set_locale(code: str) -> ResponseReturnValue:
    if code not in LOCALES:
        abort(404)
    session["locale"] = code
    return redirect(_safe_next(request.form.get("next")) or url_for("auth.index"))


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> ResponseReturnValue:
    """One's own API tokens: nobody makes a token for someone else (it would act as them)."""
    svc = services()
    if request.method == "POST":
        try:
            fields = {"name": request.form.get("name", "")}
            if request.form.get("expires_in_days"):  # empty: the default expiry
                fields["expires_in_days"] = request.form["expires_in_days"]
            data = TokenIn().load(fields)
        except ValidationError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for("auth.tokens"))
        with svc.database.session() as s:
            me = current_user.db_user(s)
            _row, token = accounts.create_token(
                s,
                me,
                data["name"],
                actor=me,
                expires_in_days=token_expiry_days(data),
            )
        return render_template("auth/token_created.html", token=token)
    with svc.database.session() as s:
        rows = s.scalars(
            select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id)
        ).all()
        return render_template(
            "auth/tokens.html", tokens=rows, default_days=svc.settings.web.token_expiry_days
        )


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    with services().database.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None or row.user_id != current_user.id:
            abort(404)
        accounts.revoke_token(s, token_id, actor=current_user.db_user(s))
    flash(_("Token revoked."), "success")
    return redirect(url_for("auth.tokens"))
