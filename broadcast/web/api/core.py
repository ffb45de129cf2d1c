"""Who am I, live text preview, areas and carriers."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from broadcast.models import Area, Carrier, Role
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_json
from broadcast.web.api.schemas import AreaOut, CarrierOut, Me, PreviewIn, PreviewOut
from broadcast.web.context import services
from broadcast.web.previews import build_preview

ANY_ROLE = tuple(Role)


@bp.get("/me")
@document("The authenticated user", roles=ANY_ROLE, tag="accounts", response=Me)
def me() -> ResponseReturnValue:
    return jsonify(Me().dump(current_user))


@bp.post("/preview")
@document(
    "Encoding, parts, characters left, UCS-2 characters, folded variant, audience and ETA",
    roles=(Role.DRAFTER, Role.APPROVER, Role.ADMIN, Role.AUDITOR),
    tag="alerts",
    body=PreviewIn,
    response=PreviewOut,
    errors=(400, 401, 403, 422),
)
def preview() -> ResponseReturnValue:
    data = load_json(PreviewIn())
    svc = services()
    with svc.database.session() as session:
        result: dict[str, Any] = build_preview(session, svc.settings, **data)
    return jsonify(PreviewOut().dump(result))


@bp.get("/areas")
@document(
    "Administrative areas that can be targeted, parents first (retired ones are left out)",
    roles=ANY_ROLE,
    tag="reference",
    response=AreaOut,
    many=True,
)
def areas() -> ResponseReturnValue:
    with services().database.session() as session:
        rows = session.scalars(
            select(Area).where(Area.retired_at.is_(None)).order_by(Area.path)
        ).all()
        out = [
            {
                "code": a.code,
                "name": a.name,
                "level": a.level,
                "parent": a.parent.code if a.parent else None,
            }
            for a in rows
        ]
    return jsonify(AreaOut(many=True).dump(out))


@bp.get("/carriers")
@document(
    "Carriers (a carrier user sees only its own)",
    roles=ANY_ROLE,
    tag="reference",
    response=CarrierOut,
    many=True,
)
def carriers() -> ResponseReturnValue:
    with services().database.session() as session:
        query = select(Carrier).order_by(Carrier.code)
        if current_user.role == Role.CARRIER:
            query = query.where(Carrier.id == current_user.carrier_id)
        rows = session.scalars(query).all()
    return jsonify(CarrierOut(many=True).dump(rows))
