"""Console pages for alerts: list, draft, approve, watch, export."""

from __future__ import annotations

from flask import Blueprint, render_template

from broadcast.web.security import DRAFT, READ_ALERTS, roles_required

bp = Blueprint("alerts", __name__, url_prefix="/alerts")


@bp.route("/")
@roles_required(*READ_ALERTS)
def index():  # type: ignore[no-untyped-def]
    return render_template("alerts/index.html", alerts=[])


@bp.route("/new")
@roles_required(*DRAFT)
def new():  # type: ignore[no-untyped-def]
    return render_template("alerts/index.html", alerts=[])
