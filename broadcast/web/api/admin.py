"""Users, API tokens, brandnames and the test group."""

from __future__ import annotations

from flask import abort, jsonify
from flask_login import current_user
from sqlalchemy import select

from broadcast import accounts, audit
from broadcast.models import ApiToken, Role, User
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_json
from broadcast.web.api.schemas import (
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from broadcast.web.context import services
from broadcast.web.security import client_ip, roles_required

ADMIN = (Role.ADMIN,)
ANY_ROLE = tuple(Role)


@bp.get("/users")
@roles_required(*ADMIN)
@document("List users", roles=ADMIN, tag="accounts", response=UserOut, many=True)
def list_users():  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        return jsonify(UserOut(many=True).dump(users))


@bp.post("/users")
@roles_required(*ADMIN)
@document(
    "Create a user",
    roles=ADMIN,
    tag="accounts",
    body=UserIn,
    response=UserOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def create_user():  # type: ignore[no-untyped-def]
    data = load_json(UserIn())
    with services().database.session() as session:
        actor = current_user.db_user(session)
        user = accounts.create_user(
            session,
            username=data["username"],
            password=data["password"],
            role=Role(data["role"]),
            display_name=data["display_name"],
            carrier_code=data["carrier"],
            actor=actor,
        )
        return jsonify(UserOut().dump(user)), 201


@bp.patch("/users/<int:user_id>")
@roles_required(*ADMIN)
@document(
    "Activate, deactivate, rename or reset the password of a user",
    roles=ADMIN,
    tag="accounts",
    body=UserPatch,
    response=UserOut,
    errors=(400, 401, 403, 404, 422),
)
def update_user(user_id: int):  # type: ignore[no-untyped-def]
    data = load_json(UserPatch())
    with services().database.session() as session:
        actor = current_user.db_user(session)
        user = session.get(User, user_id)
        if user is None:
            abort(404)
        before = {"active": user.active, "display_name": user.display_name}
        if "password" in data:
            accounts.set_password(session, user, data["password"], actor=actor)
        if "active" in data:
            user.active = data["active"]
        if "display_name" in data:
            user.display_name = data["display_name"]
        after = {"active": user.active, "display_name": user.display_name}
        if before != after:
            audit.record(
                session,
                actor=actor,
                action="user.update",
                object_type="user",
                object_id=user.id,
                before=before,
                after=after,
                ip=client_ip(),
            )
        return jsonify(UserOut().dump(user))


@bp.get("/tokens")
@roles_required(*ANY_ROLE)
@document(
    "API tokens (an admin sees all, others their own)",
    roles=ANY_ROLE,
    tag="accounts",
    response=TokenOut,
    many=True,
)
def list_tokens():  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if current_user.role != Role.ADMIN:
            query = query.where(ApiToken.user_id == current_user.id)
        return jsonify(TokenOut(many=True).dump(session.scalars(query).all()))


@bp.post("/tokens")
@roles_required(*ANY_ROLE)
@document(
    "Create an API token; the token is in this answer only",
    roles=ANY_ROLE,
    tag="accounts",
    body=TokenIn,
    response=TokenCreated,
    status=201,
    errors=(400, 401, 403, 404, 422),
)
def create_token():  # type: ignore[no-untyped-def]
    data = load_json(TokenIn())
    with services().database.session() as session:
        actor = current_user.db_user(session)
        owner = actor
        if data["user_id"] is not None and data["user_id"] != actor.id:
            if current_user.role != Role.ADMIN:
                abort(403)
            owner = session.get(User, data["user_id"])
            if owner is None:
                abort(404)
        token = accounts.create_token(session, owner, data["name"], actor=actor)
        row = session.scalar(
            select(ApiToken).where(ApiToken.user_id == owner.id).order_by(ApiToken.id.desc())
        )
        body = TokenCreated().dump(row)
        body["token"] = token
        return jsonify(body), 201


@bp.delete("/tokens/<int:token_id>")
@roles_required(*ANY_ROLE)
@document(
    "Revoke an API token", roles=ANY_ROLE, tag="accounts", response=TokenOut, errors=(401, 403, 404)
)
def revoke_token(token_id: int):  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None or (current_user.role != Role.ADMIN and row.user_id != current_user.id):
            abort(404)
        accounts.revoke_token(session, token_id, actor=current_user.db_user(session))
        return jsonify(TokenOut().dump(row))
