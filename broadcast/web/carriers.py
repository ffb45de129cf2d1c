"""Console pages for carriers: uploads with progress, import reports, coverage, and the
carrier's report on its network by area (normal, degraded, down).

A carrier user sees only its own carrier; another carrier's pages answer 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from broadcast import network
from broadcast.errors import LoaError, PermissionDenied
from broadcast.models import Area, Carrier, Import, NetworkState, Role
from broadcast.web import uploads
from broadcast.web.areas import area_group_labels
from broadcast.web.context import services
from broadcast.web.errors import refusal_text
from broadcast.web.responders import (
    import_view,
    progress_in_scope,
    rejects_response,
    visible_import,
)
from broadcast.web.security import (
    COVERAGE_READERS,
    IMPORT_READERS,
    NETWORK_REPORTERS,
    READ_CARRIERS,
    UPLOADERS,
    carrier_in_scope,
    roles_required,
)
from broadcast.web.templating import import_problem
from subscriber_import import records, service
from subscriber_import.errors import ListChanged, ListShrinks

bp = Blueprint("carriers", __name__, url_prefix="/carriers")
EXPLAINED_ON_REPORT = frozenset({ListShrinks.code, ListChanged.code})


@bp.route("/")
@roles_required(*READ_CARRIERS)
def index() -> ResponseReturnValue:
    if current_user.role == Role.CARRIER:
        return redirect(url_for("carriers.show", code=current_user.carrier_code))
    with services().database.session() as session:
        rows = session.scalars(select(Carrier).order_by(Carrier.code)).all()
        return render_template(
            "carriers/index.html", carriers=rows, limits=services().settings.rate_limits
        )


@bp.route("/<code>")
@roles_required(*COVERAGE_READERS)
def show(code: str) -> ResponseReturnValue:
    with services().database.session() as session:
        carrier = carrier_in_scope(session, code)
        imports = []
        if current_user.role in IMPORT_READERS:
            rows = session.scalars(
                select(Import)
                .where(Import.carrier_id == carrier.id)
                .order_by(Import.id.desc())
                .limit(50)
            ).all()
            imports = [import_view(r, code) for r in rows]
        coverage = service.coverage(session, code)
        biggest = max([1] + [max(r["accepted"], r["reported"] or 0) for r in coverage])
        groups = coverage_groups(session, coverage)
        return render_template(
            "carriers/show.html",
            carrier=carrier,
            imports=imports,
            coverage=coverage,
            coverage_groups=groups,
            biggest=biggest,
            can_upload=current_user.role in UPLOADERS,
        )


def coverage_groups(session: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Coverage rows under headings: the province first, then wards, communes, special zones
    (the picker's groups), then retired areas and numbers with no area."""
    levels = dict(session.execute(select(Area.code, Area.level)).all())
    retired = set(session.scalars(select(Area.code).where(Area.retired_at.is_not(None))))
    labels = {"province": _("Province"), **area_group_labels()}
    order = [*labels, "other", "retired", "none"]
    names = {
        **labels,
        "other": _("Other areas"),
        "retired": _("Retired areas"),
        "none": _("No area"),
    }
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        code = row["area_code"]
        if code is None:
            key = "none"
        elif code in retired:
            key = "retired"
        else:
            key = levels.get(code, "other") if levels.get(code) in labels else "other"
        grouped.setdefault(key, []).append(row)
    return [{"label": names[k], "rows": grouped[k]} for k in order if k in grouped]


@bp.route("/<code>/upload", methods=["POST"])
@roles_required(*UPLOADERS)
def upload(code: str) -> ResponseReturnValue:
    """Save the file and enqueue its import; the browser then follows its progress."""
    svc = services()
    with svc.database.session() as session:
        carrier_in_scope(session, code)
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        token = uploads.start_upload(
            svc,
            carrier_code=code,
            upload=request.files.get("file"),
            kind=request.form.get("kind", ""),
            sheet=request.form.get("sheet"),
            user_id=current_user.id,
            token=request.form.get("progress_token"),
            hold_on_shrink=True,  # the report page then confirms it without a second upload
        )
    except LoaError as exc:
        if wants_json:
            return jsonify(ok=False, message=refusal_text(exc), url=None), 422
        flash(refusal_text(exc), "error")
        return redirect(url_for("carriers.show", code=code))
    page = url_for("carriers.upload_status", code=code, token=token)
    if wants_json:
        return jsonify(ok=True, token=token, url=page), 202
    return redirect(page)


@bp.route("/<code>/uploads/<token>")
@roles_required(*UPLOADERS)
def upload_status(code: str, token: str) -> ResponseReturnValue:
    """While the job runs: its progress (the page reloads itself); then the import report."""
    with services().database.session() as session:
        carrier_in_scope(session, code)
    state = progress_in_scope(token)
    if state.get("carrier") != code:
        abort(404)
    if state.get("import_id"):
        # The report page explains a refusal; these two it words itself, in the reader's language.
        if (
            state["state"] in ("rejected", "failed")
            and state.get("code") not in EXPLAINED_ON_REPORT
        ):
            message = state.get("message") or _("The file was refused.")
            flash(import_problem(state.get("code"), state.get("details"), message), "error")
        return redirect(url_for("carriers.import_report", import_id=state["import_id"]))
    if state.get("state") in uploads.FINAL_STATES:
        flash(state.get("message") or _("The import failed."), "error")
        return redirect(url_for("carriers.show", code=code))
    return render_template("carriers/upload_status.html", code=code, state=state)


@bp.route("/imports/<int:import_id>")
@roles_required(*IMPORT_READERS)
def import_report(import_id: int) -> ResponseReturnValue:
    svc = services()
    with svc.database.session() as session:
        row, code = visible_import(session, import_id)
        can_confirm = (
            current_user.role in UPLOADERS
            and records.held_upload(svc.settings, import_id).is_file()
        )
        return render_template(
            "carriers/import.html", imp=import_view(row, code), can_confirm=can_confirm
        )


@bp.route("/imports/<int:import_id>/confirm-shrink", methods=["POST"])
@roles_required(*UPLOADERS)
def confirm_shrink(import_id: int) -> ResponseReturnValue:
    """Second step of a list refused for shrinking: import the held file with the cut allowed."""
    svc = services()
    with svc.database.session() as session:
        _row, code = visible_import(session, import_id)
    try:
        token = uploads.confirm_held(
            svc, import_id=import_id, carrier_code=code, user_id=current_user.id
        )
    except LoaError as exc:
        flash(refusal_text(exc), "error")
        return redirect(url_for("carriers.import_report", import_id=import_id))
    return redirect(url_for("carriers.upload_status", code=code, token=token))


@bp.route("/imports/<int:import_id>/rejects.csv")
@roles_required(*IMPORT_READERS)
def import_rejects(import_id: int) -> ResponseReturnValue:
    return rejects_response(import_id)


@bp.route("/<code>/status", methods=["GET", "POST"])
@roles_required(*COVERAGE_READERS)
def network_status(code: str) -> ResponseReturnValue:
    """The carrier's network by area now, its history, and (for that carrier's users and
    admins) the form that reports an area normal, degraded or down."""
    with services().database.session() as session:
        carrier = carrier_in_scope(session, code)
        if request.method == "POST":
            if current_user.role not in NETWORK_REPORTERS:
                abort(403)
            row = {
                "code": request.form.get("area", ""),
                "state": request.form.get("state", ""),
                "note": request.form.get("note", "").strip(),
            }
            try:
                entries = network.parse_entries([row])
                network.set_status(session, code, entries, user=current_user.db_user(session))
            except LoaError as exc:
                if isinstance(exc, PermissionDenied):
                    raise
                flash(refusal_text(exc), "error")
            else:
                flash(_("Saved."), "success")
            return redirect(url_for("carriers.network_status", code=code))
        areas = session.execute(
            select(Area.code, Area.name).where(Area.retired_at.is_(None)).order_by(Area.path)
        ).all()
        return render_template(
            "carriers/status.html",
            carrier=carrier,
            current=network.current(session, carrier_codes=[code]),
            history=network.history(session, code, limit=50),
            areas=areas,
            states=[s.value for s in NetworkState],
            can_report=network.may_set(current_user.db_user(session), carrier.code),
        )
