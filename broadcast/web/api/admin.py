"""Users, API tokens, brandnames, the test and drill groups, recurring drills."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from broadcast import accounts, audit, drills, registry
from broadcast.errors import PermissionDenied, Reason, ValidationFailed
from broadcast.models import ApiToken, RecipientGroup, Role, User
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_json
from broadcast.web.api.schemas import (
    BrandnameIn,
    BrandnameOut,
    DrillScheduleIn,
    DrillScheduleOut,
    TestRecipientIn,
    TestRecipientOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from broadcast.web.context import services
from broadcast.web.responders import number_normaliser, token_expiry_days
from broadcast.web.security import client_ip

ADMIN = (Role.ADMIN,)
ANY_ROLE = tuple(Role)


@bp.get("/users")
@document("List users", roles=ADMIN, tag="accounts", response=UserOut, many=True)
def list_users() -> ResponseReturnValue:
    with services().database.session() as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        return jsonify(UserOut(many=True).dump(users))


@bp.post("/users")
@document(
    "Create a user",
    roles=ADMIN,
    tag="accounts",
    body=UserIn,
    response=UserOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def create_user() -> ResponseReturnValue:
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
@document(
    "Activate, deactivate, rename, change the role of or reset the password of a user "
    "(a password change, deactivation or role change ends every session of that user)",
    roles=ADMIN,
    tag="accounts",
    body=UserPatch,
    response=UserOut,
    errors=(400, 401, 403, 404, 422),
)
def update_user(user_id: int) -> ResponseReturnValue:
    data = load_json(UserPatch())
    svc = services()
    with svc.database.session() as session:
        actor = current_user.db_user(session)
        user = session.get(User, user_id)
        if user is None:
            abort(404)
        if user.id == actor.id and data.get("active") is False:
            raise ValidationFailed(
                Reason("self_deactivate", "you cannot deactivate yourself"),
                {"active": [Reason("ask_other_admin", "ask another administrator")]},
            )
        before = {"active": user.active, "display_name": user.display_name}
        if "password" in data:
            accounts.set_password(session, user, data["password"], actor=actor)
        if "role" in data:
            accounts.set_role(session, user, Role(data["role"]), actor=actor)
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
        body = UserOut().dump(user)
    if "password" in data or "role" in data or data.get("active") is False:
        # After the commit: a session may only outlive the credentials it was opened with
        # through a request already running, and that one cannot save it back.
        svc.sessions.end_user(user_id)
    return jsonify(body)


@bp.get("/tokens")
@document(
    "API tokens (an admin sees all, others their own)",
    roles=ANY_ROLE,
    tag="accounts",
    response=TokenOut,
    many=True,
)
def list_tokens() -> ResponseReturnValue:
    with services().database.session() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if current_user.role != Role.ADMIN:
            query = query.where(ApiToken.user_id == current_user.id)
        return jsonify(TokenOut(many=True).dump(session.scalars(query).all()))


@bp.post("/tokens")
@document(
    "Create an API token for oneself; the token is in this answer only",
    roles=ANY_ROLE,
    tag="accounts",
    body=TokenIn,
    response=TokenCreated,
    status=201,
    errors=(400, 401, 403, 404, 422),
)
def create_token() -> ResponseReturnValue:
    data = load_json(TokenIn())
    with services().database.session() as session:
        me = current_user.db_user(session)
        wanted = data["user_id"]
        owner = me if wanted in (None, me.id) else session.get(User, wanted)
        if owner is None:  # refused like any other user's id: no probing for who exists
            raise PermissionDenied(Reason("own_tokens_only", accounts.OWN_TOKENS_ONLY))
        row, token = accounts.create_token(
            session, owner, data["name"], actor=me, expires_in_days=token_expiry_days(data)
        )
        body = TokenCreated().dump(row)
        body["token"] = token
        return jsonify(body), 201


@bp.delete("/tokens/<int:token_id>")
@document(
    "Revoke an API token", roles=ANY_ROLE, tag="accounts", response=TokenOut, errors=(401, 403, 404)
)
def revoke_token(token_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None or (current_user.role != Role.ADMIN and row.user_id != current_user.id):
            abort(404)
        accounts.revoke_token(session, token_id, actor=current_user.db_user(session))
        return jsonify(TokenOut().dump(row))


# -- brandnames and the test group (rules in broadcast.registry) -----------------------------


@bp.get("/brandnames")
@document(
    "Sender brandnames, active and deactivated",
    roles=ADMIN,
    tag="registry",
    response=BrandnameOut,
    many=True,
)
def list_brandnames() -> ResponseReturnValue:
    with services().database.session() as session:
        return jsonify(BrandnameOut(many=True).dump(registry.list_brandnames(session)))


@bp.post("/brandnames")
@document(
    "Register a brandname (Decree 91/2020 rule); a deactivated one is reactivated",
    roles=ADMIN,
    tag="registry",
    body=BrandnameIn,
    response=BrandnameOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def add_brandname() -> ResponseReturnValue:
    data = load_json(BrandnameIn())
    with services().database.session() as session:
        row = registry.add_brandname(
            session, data["name"], actor=current_user.db_user(session), ip=client_ip()
        )
        return jsonify(BrandnameOut().dump(row)), 201


@bp.post("/brandnames/<int:brandname_id>/deactivate")
@document(
    "Deactivate a brandname (new drafts cannot use it; it is never deleted)",
    roles=ADMIN,
    tag="registry",
    response=BrandnameOut,
    errors=(401, 403, 404),
)
def deactivate_brandname(brandname_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        row = registry.deactivate_brandname(
            session, brandname_id, actor=current_user.db_user(session), ip=client_ip()
        )
        return jsonify(BrandnameOut().dump(row))


@bp.get("/test-recipients")
@document(
    "The test group (test alerts go only to these numbers)",
    roles=ADMIN,
    tag="registry",
    response=TestRecipientOut,
    many=True,
)
def list_test_recipients() -> ResponseReturnValue:
    return _list_group(RecipientGroup.TEST)


def _list_group(group: RecipientGroup) -> ResponseReturnValue:
    with services().database.session() as session:
        rows = registry.list_test_recipients(session, group)
        return jsonify(TestRecipientOut(many=True).dump(rows))


def _add_to_group(group: RecipientGroup) -> ResponseReturnValue:
    """Add a number to the test or drill group (rules in broadcast.registry)."""
    data = load_json(TestRecipientIn())
    normalise = number_normaliser()
    with services().database.session() as session:
        row = registry.add_test_recipient(
            session,
            msisdn=data["msisdn"],
            carrier_code=data["carrier"],
            name=data["name"],
            normalise=normalise,
            actor=current_user.db_user(session),
            ip=client_ip(),
            group=group,
        )
        return jsonify(TestRecipientOut().dump(row)), 201


def _remove_from_group(group: RecipientGroup, recipient_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        row = registry.remove_test_recipient(
            session, recipient_id, actor=current_user.db_user(session), ip=client_ip(), group=group
        )
        return jsonify(TestRecipientOut().dump(row))


@bp.post("/test-recipients")
@document(
    "Add a number to the test group (normalised to 84…; sent through the chosen carrier)",
    roles=ADMIN,
    tag="registry",
    body=TestRecipientIn,
    response=TestRecipientOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def add_test_recipient() -> ResponseReturnValue:
    return _add_to_group(RecipientGroup.TEST)


@bp.delete("/test-recipients/<int:recipient_id>")
@document(
    "Remove a number from the test group",
    roles=ADMIN,
    tag="registry",
    response=TestRecipientOut,
    errors=(401, 403, 404),
)
def remove_test_recipient(recipient_id: int) -> ResponseReturnValue:
    return _remove_from_group(RecipientGroup.TEST, recipient_id)


@bp.get("/drill-recipients")
@document(
    "The drill group (drills, CAP Exercise, go only to these numbers)",
    roles=ADMIN,
    tag="registry",
    response=TestRecipientOut,
    many=True,
)
def list_drill_recipients() -> ResponseReturnValue:
    return _list_group(RecipientGroup.DRILL)


@bp.post("/drill-recipients")
@document(
    "Add a number to the drill group (normalised to 84…; sent through the chosen carrier)",
    roles=ADMIN,
    tag="registry",
    body=TestRecipientIn,
    response=TestRecipientOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def add_drill_recipient() -> ResponseReturnValue:
    return _add_to_group(RecipientGroup.DRILL)


@bp.delete("/drill-recipients/<int:recipient_id>")
@document(
    "Remove a number from the drill group",
    roles=ADMIN,
    tag="registry",
    response=TestRecipientOut,
    errors=(401, 403, 404),
)
def remove_drill_recipient(recipient_id: int) -> ResponseReturnValue:
    return _remove_from_group(RecipientGroup.DRILL, recipient_id)


DRILL_READERS = (Role.ADMIN, Role.APPROVER, Role.AUDITOR)


@bp.get("/drill-schedules")
@document(
    "Recurring drills",
    roles=DRILL_READERS,
    tag="drills",
    response=DrillScheduleOut,
    many=True,
)
def list_drill_schedules() -> ResponseReturnValue:
    with services().database.session() as session:
        rows = [drills.schedule_summary(r) for r in drills.list_schedules(session)]
        return jsonify(DrillScheduleOut(many=True).dump(rows))


@bp.post("/drill-schedules")
@document(
    "Schedule a recurring drill: every month on a day at a local time; lead_days before each, "
    "a drill alert (CAP Exercise, schedule_at = that time) is submitted for approval in the "
    "admin's name, and an approver approves it as any alert",
    roles=ADMIN,
    tag="drills",
    body=DrillScheduleIn,
    response=DrillScheduleOut,
    status=201,
    errors=(400, 401, 403, 422),
)
def create_drill_schedule() -> ResponseReturnValue:
    data = load_json(DrillScheduleIn())
    plan = drills.DrillPlan(
        title=data["title"],
        body=data["body"],
        area_codes=tuple(data["areas"]),
        carrier_codes=tuple(data["carriers"]),
        brandname=data["brandname"],
        day_of_month=data["day_of_month"],
        at_time=data["at_time"],
        lead_days=data["lead_days"],
        fold=data["fold"],
    )
    svc = services()
    with svc.database.session() as session:
        row = drills.create_schedule(
            session,
            plan,
            user=current_user.db_user(session),
            now=datetime.now(UTC),
            timezone=svc.settings.timezone,
        )
        return jsonify(DrillScheduleOut().dump(drills.schedule_summary(row))), 201


@bp.delete("/drill-schedules/<int:schedule_id>")
@document(
    "Stop a recurring drill (drills already made stay as they are)",
    roles=ADMIN,
    tag="drills",
    response=DrillScheduleOut,
    errors=(401, 403, 404),
)
def deactivate_drill_schedule(schedule_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        row = drills.deactivate(session, schedule_id, user=current_user.db_user(session))
        return jsonify(DrillScheduleOut().dump(drills.schedule_summary(row)))
