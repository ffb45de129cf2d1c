"""Carrier uploads, import reports and coverage; a carrier sees only its own."""

from __future__ import annotations

from flask import jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from broadcast.models import Import
from broadcast.web import uploads
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_query
from broadcast.web.api.schemas import CoverageRow, ImportOut, ImportProgress, UploadQuery
from broadcast.web.context import services
from broadcast.web.errors import error_response
from broadcast.web.responders import (
    import_view,
    progress_in_scope,
    rejects_response,
    visible_import,
)
from broadcast.web.security import (
    COVERAGE_READERS,
    IMPORT_READERS,
    UPLOADERS,
    carrier_in_scope,
)
from subscriber_import import service


@bp.post("/carriers/<code>/imports")
@document(
    "Upload a subscriber list or counts (CSV or XLSX). The import runs as a background job; "
    "the answer waits up to `wait` seconds for it (default and most: the setting "
    "web.upload_wait_max_seconds, 10): 201 with the import and its report when done, 422 when "
    "the file was refused or its import was stopped by a limit (imports.max_cells, "
    "max_unzipped_mb, max_memory_mb, max_seconds; the code says which), else 202 with the "
    "progress and its URL (Location) to poll. A `progress_token` already used answers 409. "
    "A list that cuts the active one by more than imports.max_shrink is refused (422 "
    "list_shrinks, details current and new) unless the form field allow_shrink=true confirms it",
    roles=UPLOADERS,
    tag="imports",
    multipart=True,
    query=UploadQuery,
    response=ImportOut,
    status=201,
    errors=(400, 401, 403, 404, 409, 413, 422),
)
def upload(code: str) -> ResponseReturnValue:
    args = load_query(UploadQuery())
    svc = services()
    with svc.database.session() as session:
        carrier_in_scope(session, code)
    token = uploads.start_upload(
        svc,
        carrier_code=code,
        upload=request.files.get("file"),
        kind=request.form.get("kind", ""),
        sheet=request.form.get("sheet"),
        user_id=current_user.id,
        token=request.form.get("progress_token"),
        allow_shrink=request.form.get("allow_shrink"),
    )
    state = uploads.wait_for(svc, token, args["wait"])
    if state.get("state") == "done":
        with svc.database.session() as session:
            row, _code = visible_import(session, state["import_id"])
            return jsonify(ImportOut().dump(import_view(row, code))), 201
    if state.get("state") == "rejected" or (state.get("state") == "failed" and state.get("code")):
        details = dict(state.get("details") or {})
        details["import_id"] = state.get("import_id")
        return error_response(
            422, state.get("message", "file refused"), code=state.get("code"), details=details
        )
    if state.get("state") == "failed":
        return error_response(500, state.get("message", "internal error"))
    url = url_for("api.import_progress", token=token)
    body = ImportProgress().dump({**state, "token": token, "status_url": url})
    return jsonify(body), 202, {"Location": url}


@bp.get("/carriers/<code>/imports")
@document(
    "Imports of a carrier, newest first",
    roles=IMPORT_READERS,
    tag="imports",
    response=ImportOut,
    many=True,
    errors=(401, 403, 404),
)
def list_imports(code: str) -> ResponseReturnValue:
    with services().database.session() as session:
        carrier = carrier_in_scope(session, code)
        rows = session.scalars(
            select(Import)
            .where(Import.carrier_id == carrier.id)
            .order_by(Import.id.desc())
            .limit(200)
        ).all()
        return jsonify(ImportOut(many=True).dump([import_view(r, code) for r in rows]))


@bp.get("/imports/<int:import_id>")
@document(
    "One import and its report",
    roles=IMPORT_READERS,
    tag="imports",
    response=ImportOut,
    errors=(401, 403, 404),
)
def get_import(import_id: int) -> ResponseReturnValue:
    with services().database.session() as session:
        row, code = visible_import(session, import_id)
        return jsonify(ImportOut().dump(import_view(row, code)))


@bp.get("/imports/progress/<token>")
@document(
    "Progress of a running upload, by the token the client sent with it",
    roles=UPLOADERS,
    tag="imports",
    response=ImportProgress,
    errors=(401, 403, 404),
)
def import_progress(token: str) -> ResponseReturnValue:
    state = progress_in_scope(token)
    url = url_for("api.import_progress", token=token)
    return jsonify(ImportProgress().dump({**state, "token": token, "status_url": url}))


@bp.get("/carriers/<code>/coverage")
@document(
    "Per area: numbers in the active list against the latest reported count",
    roles=COVERAGE_READERS,
    tag="imports",
    response=CoverageRow,
    many=True,
    errors=(401, 403, 404),
)
def coverage(code: str) -> ResponseReturnValue:
    with services().database.session() as session:
        carrier_in_scope(session, code)
        return jsonify(CoverageRow(many=True).dump(service.coverage(session, code)))


@bp.get("/imports/<int:import_id>/rejects.csv")
@document(
    "The rejected rows of an import with their reasons (CSV)",
    roles=IMPORT_READERS,
    tag="imports",
    produces="text/csv",
    errors=(401, 403, 404),
)
def import_rejects(import_id: int) -> ResponseReturnValue:
    return rejects_response(import_id)
