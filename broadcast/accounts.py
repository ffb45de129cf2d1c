"""Users, roles, password hashing and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from broadcast import audit
from broadcast.errors import NotFound, PermissionDenied, Reason, ValidationFailed
from broadcast.models import ApiToken, Carrier, Role, User

MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "loa_"  # noqa: S105 (a marker, not a secret)
OWN_TOKENS_ONLY = "an API token is created by its owner only, for themselves (admins included)"


def _password_short() -> Reason:
    return Reason("password_short", "at least %(least)s characters", least=MIN_PASSWORD_LENGTH)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def check_login(user: User | None, password: str) -> bool:
    """True for an active user and their password. An unknown or deactivated user costs one
    scrypt too, so the time of the answer does not tell which usernames exist."""
    if user is None or not user.active:
        check_password_hash(_dummy_hash(), password)
        return False
    return verify_password(user, password)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    carrier_code: str | None = None,
    actor: User | str | None = "system",
) -> User:
    """Create a user; a carrier user is bound to exactly one carrier."""
    problems: dict[str, list[str]] = {}
    if not username or len(username) > 80:
        problems["username"] = [Reason("username_length", "1 to 80 characters")]
    elif session.scalar(select(User).where(User.username == username)) is not None:
        problems["username"] = [Reason("username_taken", "%(name)r is taken", name=username)]
    if len(password) < MIN_PASSWORD_LENGTH:
        problems["password"] = [_password_short()]
    carrier = None
    if role == Role.CARRIER:
        if not carrier_code:
            problems["carrier"] = [Reason("carrier_needed", "a carrier user needs a carrier")]
        else:
            carrier = session.scalar(select(Carrier).where(Carrier.code == carrier_code))
            if carrier is None:
                problems["carrier"] = [
                    Reason("carrier_unknown", "unknown carrier %(carrier)r", carrier=carrier_code)
                ]
    elif carrier_code:
        problems["carrier"] = [
            Reason("carrier_for_staff", "only carrier users belong to a carrier")
        ]
    if problems:
        raise ValidationFailed(Reason("user_refused", "user refused"), problems)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        carrier_id=carrier.id if carrier else None,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after={"username": username, "role": role.value, "carrier": carrier_code},
    )
    return user


def set_password(session: Session, user: User, password: str, *, actor: User | str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            Reason("password_refused", "password refused"), {"password": [_password_short()]}
        )
    user.password_hash = hash_password(password)
    audit.record(
        session, actor=actor, action="user.set_password", object_type="user", object_id=user.id
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    user: User,
    name: str,
    *,
    actor: User | str,
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create an API token (None: it never expires); the plain token is returned once and
    never stored.

    Only its owner (or the system, for demo and test accounts) makes a user's token: a token
    made by someone else would let them act, and be audited, as that user.
    """
    if isinstance(actor, User) and actor.id != user.id:
        raise PermissionDenied(Reason("own_tokens_only", OWN_TOKENS_ONLY))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_token_hash(token),
        prefix=token[:12],
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        object_type="api_token",
        object_id=row.id,
        after={
            "user": user.username,
            "name": name,
            "prefix": row.prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return row, token


def revoke_token(session: Session, token_id: int, *, actor: User | str) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(Reason("token_not_found", "API token %(id)s not found", id=token_id))
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        audit.record(
            session, actor=actor, action="token.revoke", object_type="api_token", object_id=row.id
        )


def user_for_token(session: Session, token: str) -> User | None:
    """The active user behind a token that is not revoked, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = datetime.now(UTC)
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        return None
    row.last_used_at = now
    return row.user


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC timestamps."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def set_role(session: Session, user: User, role: Role, *, actor: User | str) -> None:
    """Change the role of a staff user. A carrier account belongs to one carrier, so it is
    never turned into staff nor staff into one: make a new user instead."""
    old = Role(user.role)
    if role == old:
        return
    if Role.CARRIER in (old, role):
        raise ValidationFailed(
            Reason("role_refused", "role refused"),
            {
                "role": [
                    Reason(
                        "carrier_staff_separate",
                        "carrier accounts and staff accounts are separate users",
                    )
                ]
            },
        )
    user.role = role
    audit.record(
        session,
        actor=actor,
        action="user.set_role",
        object_type="user",
        object_id=user.id,
        before={"role": old.value},
        after={"role": role.value},
    )
