"""Carrier uploads, import reports and coverage; a carrier sees only its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, abort, jsonify, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from broadcast import audit
from broadcast.models import Carrier, Import, Role
from broadcast.web import uploads
from broadcast.web.api import bp
from broadcast.web.api.common import document, load_query
from broadcast.web.api.schemas import CoverageRow, ImportOut, ImportProgress, UploadQuery
from broadcast.web.context import services
from broadcast.web.errors import error_response
from broadcast.web.security import carrier_in_scope, client_ip, roles_required
from subscriber_import import service

UPLOADERS = (Role.ADMIN, Role.CARRIER)
READERS = (Role.ADMIN, Role.AUDITOR, Role.CARRIER)
COVERAGE_READERS = (Role.ADMIN, Role.AUDITOR, Role.CARRIER, Role.DRAFTER, Role.APPROVER)


def import_view(row: Import, carrier_code: str) -> dict[str, Any]:
    report = dict(row.report or {})
    report.pop("rejects_csv", None)  # a server path: not for the client
    if current_user.role == Role.CARRIER:
        # Which carrier also holds these numbers is that carrier's data: the count only.
        report.pop("conflicts_by_carrier", None)
    return {
        "id": row.id,
        "carrier": carrier_code,
        "kind": getattr(row.kind, "value", row.kind),
        "status": getattr(row.status, "value", row.status),
        "filename": row.filename,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "error": row.error,
        "report": report,
        "has_rejects": bool(row.rejects_path) and Path(row.rejects_path).is_file(),
    }


def visible_import(session: Any, import_id: int) -> tuple[Import, str]:
    """The import if the user may see it; another carrier's import is 'not found'."""
    row = session.get(Import, import_id)
    if row is None:
        abort(404)
    carrier = session.get(Carrier, row.carrier_id)
    if current_user.role == Role.CARRIER and current_user.carrier_id != row.carrier_id:
        abort(404)
    return row, carrier.code


@bp.post("/carriers/<code>/imports")
@roles_required(*UPLOADERS)
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
def upload(code: str):  # type: ignore[no-untyped-def]
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
            row = session.get(Import, state["import_id"])
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
@roles_required(*READERS)
@document(
    "Imports of a carrier, newest first",
    roles=READERS,
    tag="imports",
    response=ImportOut,
    many=True,
    errors=(401, 403, 404),
)
def list_imports(code: str):  # type: ignore[no-untyped-def]
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
@roles_required(*READERS)
@document(
    "One import and its report",
    roles=READERS,
    tag="imports",
    response=ImportOut,
    errors=(401, 403, 404),
)
def get_import(import_id: int):  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        row, code = visible_import(session, import_id)
        return jsonify(ImportOut().dump(import_view(row, code)))


@bp.get("/imports/progress/<token>")
@roles_required(*UPLOADERS)
@document(
    "Progress of a running upload, by the token the client sent with it",
    roles=UPLOADERS,
    tag="imports",
    response=ImportProgress,
    errors=(401, 403, 404),
)
def import_progress(token: str):  # type: ignore[no-untyped-def]
    state = progress_in_scope(token)
    url = url_for("api.import_progress", token=token)
    return jsonify(ImportProgress().dump({**state, "token": token, "status_url": url}))


def progress_in_scope(token: str) -> dict[str, Any]:
    """An upload's progress, if the user may see it (another carrier's upload: 404)."""
    state = uploads.progress_of(services(), token)
    if state is None:
        abort(404)
    if current_user.role == Role.CARRIER and state.get("carrier") != current_user.carrier_code:
        abort(404)
    return state


@bp.get("/carriers/<code>/coverage")
@roles_required(*COVERAGE_READERS)
@document(
    "Per area: numbers in the active list against the latest reported count",
    roles=COVERAGE_READERS,
    tag="imports",
    response=CoverageRow,
    many=True,
    errors=(401, 403, 404),
)
def coverage(code: str):  # type: ignore[no-untyped-def]
    with services().database.session() as session:
        carrier_in_scope(session, code)
        return jsonify(CoverageRow(many=True).dump(service.coverage(session, code)))


def rejects_response(import_id: int) -> Response:
    """The import's rejected rows as the CSV the importer wrote (cells that could start a
    formula are already quoted there); the download is audited (the rows hold numbers)."""
    with services().database.session() as session:
        row, _code = visible_import(session, import_id)
        path = Path(row.rejects_path) if row.rejects_path else None
        if path is None or not path.is_file():
            abort(
                404,
                description=(
                    f"import {import_id} has no rejected-rows file (a refused file keeps none, "
                    "and files are deleted after imports.retention_days)"
                ),
            )
        audit.record(
            session,
            actor=current_user.db_user(session),
            action="import.rejects_download",
            object_type="import",
            object_id=import_id,
            ip=client_ip(),
        )
    return send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"loa-import-{import_id}-rejects.csv",
        max_age=0,
    )


@bp.get("/imports/<int:import_id>/rejects.csv")
@roles_required(*READERS)
@document(
    "The rejected rows of an import with their reasons (CSV)",
    roles=READERS,
    tag="imports",
    produces="text/csv",
    errors=(401, 403, 404),
)
def import_rejects(import_id: int):  # type: ignore[no-untyped-def]
    return rejects_response(import_id)
