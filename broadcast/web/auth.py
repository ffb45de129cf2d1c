"""Log in and out, switch language. Failed attempts are throttled per username and IP."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from broadcast import audit
from broadcast.accounts import verify_password
from broadcast.models import Role, User
from broadcast.web.context import services
from broadcast.web.i18n import LOCALES
from broadcast.web.security import CurrentUser, LoginThrottle, client_ip

bp = Blueprint("auth", __name__)

HOME_FOR_ROLE = {
    Role.CARRIER: "carriers.index",
    Role.ADMIN: "admin.users",
}


def home_endpoint() -> str:
    return HOME_FOR_ROLE.get(current_user.role, "alerts.index")


@bp.route("/")
def index():  # type: ignore[no-untyped-def]
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(home_endpoint()))


def _safe_next(target: str | None) -> str | None:
    """A path on this site only: not "//host" nor "/\\host" (browsers read both as another
    host), and no control characters (CR/LF would split the Location header)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and target.isprintable()
    ):
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("auth/login.html", error=None)
    svc = services()
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    ip = client_ip()
    throttle = LoginThrottle(svc.redis, svc.settings.web.login_attempts_per_minute)
    if throttle.blocked(username, ip):
        with svc.database.session() as s:
            audit.record(
                s,
                actor=username or "anonymous",
                action="login.throttled",
                object_type="user",
                ip=ip,
            )
        message = _("Too many failed attempts. Wait a minute and try again.")
        return render_template("auth/login.html", error=message, username=username), 429
    with svc.database.session() as s:
        user = s.scalar(select(User).where(User.username == username)) if username else None
        ok = user is not None and user.active and verify_password(user, password)
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
            user.last_login_at = datetime.now(UTC)
            audit.record(
                s, actor=user, action="login", object_type="user", object_id=user.id, ip=ip
            )
            who = CurrentUser.of(user)
    if not ok:
        throttle.failed(username, ip)
        message = _("Wrong username or password.")
        return render_template("auth/login.html", error=message, username=username), 401
    throttle.clear(username, ip)
    locale = session.get("locale")
    session.clear()  # a fresh session at login: no fixation
    if locale:
        session["locale"] = locale
    session.permanent = True
    login_user(who)
    return redirect(_safe_next(request.args.get("next")) or url_for(home_endpoint()))


@bp.route("/logout", methods=["POST"])
@login_required
def logout():  # type: ignore[no-untyped-def]
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
    if locale:  # the language chosen with the header switch outlives the login
        session["locale"] = locale
    return redirect(url_for("auth.login"))


@bp.route("/locale/<code>", methods=["POST"])
def set_locale(code: str):  # type: ignore[no-untyped-def]
    if code not in LOCALES:
        abort(404)
    session["locale"] = code
    return redirect(_safe_next(request.form.get("next")) or url_for("auth.index"))
