"""Console pages for carriers: uploads with progress, import reports, coverage."""

from __future__ import annotations

from flask import Blueprint, render_template

from broadcast.web.security import READ_CARRIERS, roles_required

bp = Blueprint("carriers", __name__, url_prefix="/carriers")


@bp.route("/")
@roles_required(*READ_CARRIERS)
def index():  # type: ignore[no-untyped-def]
    return render_template("carriers/index.html")
