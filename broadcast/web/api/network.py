"""Carriers' network status by area: a carrier reports on its own network only."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user

from broadcast import network
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_json
from broadcast.web.api.schemas import NetworkStatusIn, NetworkStatusOut
from broadcast.web.context import services
from broadcast.web.security import (
    COVERAGE_READERS,
    NETWORK_REPORTERS,
    carrier_in_scope,
)


@bp.get("/carriers/<code>/status")
@document(
    "The carrier's network now: areas reported degraded or down (or back to normal)",
    roles=COVERAGE_READERS,
    tag="carriers",
    response=NetworkStatusOut,
    many=True,
    errors=(401, 403, 404),
)
def get_status(code: str) -> ResponseReturnValue:
    with services().database.session() as session:
        carrier_in_scope(session, code)
        rows = network.current(session, carrier_codes=[code])
        return jsonify(NetworkStatusOut(many=True).dump(rows))


@bp.put("/carriers/<code>/status")
@document(
    "Report areas of the carrier's network normal, degraded or down, with a note (that "
    "carrier's users and admins only; history kept, audited)",
    roles=NETWORK_REPORTERS,
    tag="carriers",
    body=NetworkStatusIn,
    response=NetworkStatusOut,
    many=True,
    errors=(400, 401, 403, 404, 422),
)
def put_status(code: str) -> ResponseReturnValue:
    data = load_json(NetworkStatusIn())
    entries = network.parse_entries(data["areas"])
    with services().database.session() as session:
        rows = network.set_status(session, code, entries, user=current_user.db_user(session))
        return jsonify(NetworkStatusOut(many=True).dump(rows))
