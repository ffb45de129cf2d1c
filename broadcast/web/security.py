"""Who is asking and what they may do: sessions, API tokens, roles, carrier scope, headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, Response, abort, current_app, g, request
from flask_login import AnonymousUserMixin, LoginManager, current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

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
NETWORK_REPORTERS = (Role.ADMIN, Role.CARRIER)  # a carrier reports its own network
# Who may take the numbers that asked for help: phone numbers of people in need go to rescue
# teams through the province's leaders, not to every reader of alerts.
RESCUE_EXPORTERS = (Role.ADMIN, Role.APPROVER)


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

# A successful login is not a failed attempt: taken back from the account's count, atomically,
# and only while the window lasts (DECR keeps the key's expiry).
_UNCOUNT_ATTEMPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class LoginThrottle:
    """Login attempts, counted in Redis before the password is checked.

    Per username and client address in a one-minute window (`per_minute`), and per username
    alone, from devices that never logged in as it, in a longer window (`per_account` per
    `account_window` seconds): an attacker rotating addresses is slowed by the second, the
    user's own browser (a `DEVICE_COOKIE` signed at login) is not counted by it. A successful
    login clears the count of its address and is taken back from the account's count, which
    otherwise runs out with its window (the user logging in does not hand an attacker a fresh
    allowance).
    """

    WINDOW_SECONDS = 60

    def __init__(
        self, redis_client: Any, per_minute: int, per_account: int = 0, account_window: int = 900
    ) -> None:
        self.redis = redis_client
        self.per_minute = per_minute
        self.per_account = per_account
        self.account_window = account_window
        self._count = redis_client.register_script(_COUNT_ATTEMPT)
        self._uncount = redis_client.register_script(_UNCOUNT_ATTEMPT)

    def attempt(self, username: str, ip: str) -> bool:
        """Count one attempt; False when it is over the limit and must not be checked."""
        key = keys.login_attempts_key(username, ip)
        return int(self._count(keys=[key], args=[self.WINDOW_SECONDS])) <= self.per_minute

    def account_attempt(self, username: str) -> bool:
        """Count one attempt on the account from an unknown device; False when over its limit
        (always True with no account limit)."""
        if self.per_account <= 0:
            return True
        key = keys.login_account_key(username)
        return int(self._count(keys=[key], args=[self.account_window])) <= self.per_account

    def clear(self, username: str, ip: str, *, counted_on_account: bool = False) -> None:
        """After a successful login: its address starts afresh, and an attempt counted on the
        account is taken back."""
        self.redis.delete(keys.login_attempts_key(username, ip))
        if counted_on_account and self.per_account > 0:
            self._uncount(keys=[keys.login_account_key(username)])


# A browser that logged in as a user carries this cookie (the username, signed with the app's
# secret key); it spares that browser the per-account count.
DEVICE_COOKIE = "loa_device"
DEVICE_DAYS = 90


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="loa.login-device")


def known_device(username: str) -> bool:
    """Whether this request comes from a browser that logged in as `username` before."""
    value = request.cookies.get(DEVICE_COOKIE)
    if not value or not username:
        return False
    try:
        signed = _device_signer().loads(value, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return False
    return isinstance(signed, str) and signed == username.lower()


def remember_device(response: BaseResponse, username: str) -> BaseResponse:
    response.set_cookie(
        DEVICE_COOKIE,
        _device_signer().dumps(username.lower()),
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


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
