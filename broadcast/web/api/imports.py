"""Carrier uploads, import reports and coverage; a carrier sees only its own."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from broadcast.models import Carrier, Import, Role
from broadcast.web import uploads
from broadcast.web.api import bp
from broadcast.web.api.common import document
from broadcast.web.api.schemas import CoverageRow, ImportOut, ImportProgress
from broadcast.web.context import services
from broadcast.web.security import carrier_in_scope, roles_required
from subscriber_import import service

UPLOADERS = (Role.ADMIN, Role.CARRIER)
READERS = (Role.ADMIN, Role.AUDITOR, Role.CARRIER)
COVERAGE_READERS = (Role.ADMIN, Role.AUDITOR, Role.CARRIER, Role.DRAFTER, Role.APPROVER)


def import_view(row: Import, carrier_code: str) -> dict[str, Any]:
    report = dict(row.report or {})
    report.pop("rejects_csv", None)  # a server path: not for the client
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
    "Upload a subscriber list or counts (CSV or XLSX); the import runs now",
    roles=UPLOADERS,
    tag="imports",
    multipart=True,
    response=ImportOut,
    status=201,
    errors=(400, 401, 403, 404, 413, 422),
)
def upload(code: str):  # type: ignore[no-untyped-def]
    svc = services()
    with svc.database.session() as session:
        carrier_in_scope(session, code)
    report = uploads.run_upload(
        svc,
        carrier_code=code,
        upload=request.files.get("file"),
        kind=request.form.get("kind", ""),
        sheet=request.form.get("sheet"),
        user_id=current_user.id,
        token=request.form.get("progress_token"),
    )
    with svc.database.session() as session:
        row = session.get(Import, report["import_id"])
        return jsonify(ImportOut().dump(import_view(row, code))), 201


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
    state = uploads.progress_of(services(), token)
    if state is None:
        abort(404)
    return jsonify(ImportProgress().dump(state))


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
