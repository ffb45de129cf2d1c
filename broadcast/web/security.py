"""Who is asking and what they may do: sessions, API tokens, roles, carrier scope, headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, Response, abort, current_app, g, request
from flask_login import AnonymousUserMixin, LoginManager, current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import keys
from broadcast.models import Carrier, Role, User

F = TypeVar("F", bound=Callable[..., Any])

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"

READ_ALERTS = (Role.ADMIN, Role.DRAFTER, Role.APPROVER, Role.AUDITOR)
DRAFT = (Role.DRAFTER,)
DECIDE = (Role.APPROVER,)
UPLOADERS = (Role.ADMIN, Role.CARRIER)
IMPORT_READERS = (Role.ADMIN, Role.AUDITOR, Role.CARRIER)
COVERAGE_READERS = (Role.ADMIN, Role.AUDITOR, Role.CARRIER, Role.DRAFTER, Role.APPROVER)
READ_CARRIERS = (Role.CARRIER, Role.ADMIN, Role.AUDITOR, Role.DRAFTER, Role.APPROVER)


@dataclass(frozen=True)
class CurrentUser:
    """A detached snapshot of the user for one request; views reload the row when they act."""

    id: int
    username: str
    display_name: str
    role: Role
    carrier_id: int | None
    carrier_code: str | None
    locale: str
    via_token: bool = False

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def has(self, *roles: Role) -> bool:
        return self.role in roles

    def db_user(self, session: Session) -> User:
        user = session.get(User, self.id)
        if user is None:  # deleted while logged in
            abort(401)
        return user

    @classmethod
    def of(cls, user: User, *, via_token: bool = False) -> CurrentUser:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name or user.username,
            role=Role(user.role),
            carrier_id=user.carrier_id,
            carrier_code=user.carrier.code if user.carrier else None,
            locale=user.locale or "",
            via_token=via_token,
        )


class Anonymous(AnonymousUserMixin):
    role = None
    carrier_id = None
    carrier_code = None
    locale = ""

    def has(self, *roles: Role) -> bool:
        return False


login_manager.anonymous_user = Anonymous


@login_manager.user_loader
def _load_user(user_id: str) -> CurrentUser | None:
    from broadcast.web.context import services

    try:
        uid = int(user_id)
    except ValueError:
        return None
    with services().database.session() as session:
        user = session.get(User, uid)
        if user is None or not user.active:
            return None
        return CurrentUser.of(user)


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Refuse (403) anyone whose role is not listed; anonymous users go to the login page."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                if request.blueprint == "api":
                    abort(401)
                return login_manager.unauthorized()
            if not current_user.has(*roles):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def carrier_in_scope(session: Session, code: str) -> Carrier:
    """The carrier named in the URL, if the current user may see it (404 for other carriers).

    A carrier user (or token) never learns whether another carrier's object exists.
    """
    carrier = session.scalar(select(Carrier).where(Carrier.code == code))
    if carrier is None:
        abort(404)
    if current_user.role == Role.CARRIER and current_user.carrier_id != carrier.id:
        abort(404)
    return carrier


def client_ip() -> str:
    return request.remote_addr or "-"


# INCR and, on the first attempt of a window, EXPIRE: one atomic step, so parallel attempts
# each get their own number and never more than the limit are checked.
_COUNT_ATTEMPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class LoginThrottle:
    """Login attempts per username and client address in a one-minute Redis window.

    Each attempt is counted before its password is checked; a successful login clears the
    count.
    """

    WINDOW_SECONDS = 60

    def __init__(self, redis_client: Any, per_minute: int) -> None:
        self.redis = redis_client
        self.per_minute = per_minute
        self._count = redis_client.register_script(_COUNT_ATTEMPT)

    def attempt(self, username: str, ip: str) -> bool:
        """Count one attempt; False when it is over the limit and must not be checked."""
        key = keys.login_attempts_key(username, ip)
        return int(self._count(keys=[key], args=[self.WINDOW_SECONDS])) <= self.per_minute

    def clear(self, username: str, ip: str) -> None:
        self.redis.delete(keys.login_attempts_key(username, ip))


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if getattr(g, "no_store", True) and request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    if current_app.extensions["loa"].settings.production:  # production is served over HTTPS
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_security(app: Flask) -> None:
    login_manager.init_app(app)
    app.after_request(add_security_headers)
