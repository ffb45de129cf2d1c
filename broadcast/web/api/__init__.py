"""JSON API under /api/v1: Bearer tokens (or the console's session plus its CSRF header)."""

from __future__ import annotations

from flask import Blueprint, abort, g, request
from flask_login import current_user

from broadcast import accounts
from broadcast.web.context import services
from broadcast.web.security import CurrentUser

bp = Blueprint("api", __name__, url_prefix="/api/v1")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})


@bp.before_request
def authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            abort(401)
        with services().database.session() as session:
            user = accounts.user_for_token(session, token)
            who = CurrentUser.of(user, via_token=True) if user is not None else None
        if who is None:
            abort(401)
        g._login_user = who  # Flask-Login's per-request user; the session cookie is not touched
        return
    if not current_user.is_authenticated:
        abort(401)
    if request.method not in SAFE_METHODS:
        from broadcast.web import csrf

        csrf.protect()  # cookie-authenticated writes carry the page's X-CSRFToken header


from broadcast.web.api import admin, alerts, core, imports, network, openapi  # noqa: E402

__all__ = ["admin", "alerts", "bp", "core", "imports", "network", "openapi"]
