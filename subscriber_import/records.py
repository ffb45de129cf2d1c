"""An import's record outside the import itself: where uploads and rejects files live, why an
import ended without a list, and failing the runs a dead process left `running`.

Kept apart from subscriber_import.service (pandas, pyarrow) so that what only needs the
records (the control worker's reconcile, the console's upload pages) never loads the
importer: a sender or control worker starts about a second sooner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from broadcast.db import Database
from broadcast.models import Import, ImportStatus
from broadcast.settings import Settings


def rejects_path(settings: Settings, import_id: int) -> Path:
    return settings.instance_path / "imports" / f"{import_id}-rejects.csv"


def record_refusal(
    database: Database,
    import_id: int,
    code: str,
    message: str,
    details: dict[str, Any],
    rejects: Path,
    *,
    status: ImportStatus = ImportStatus.REJECTED,
    only_running: bool = False,
) -> None:
    """Record why the import ended without a list (refused or failed); its rejects go."""
    rejects.unlink(missing_ok=True)
    with database.session() as session:
        record = session.get(Import, import_id)
        if record is None or (only_running and record.status != ImportStatus.RUNNING):
            return
        record.status = status
        record.finished_at = datetime.now(UTC)
        record.error = message
        record.report = {"error": {"code": code, "message": message, "details": _plain(details)}}


def fail_abandoned(database: Database, settings: Settings) -> list[int]:
    """Fail imports left `running` by a process that died (kill -9, power loss): none may run
    longer than imports.max_seconds, so one started more than that plus
    imports.abandoned_grace_seconds ago (the time a live parent takes to kill its child and
    record the failure itself; 10 s by default) is nobody's. Nothing of it was committed (its
    transaction died with it); its rejects file goes. Returns their ids."""
    imports = settings.imports
    cutoff = datetime.now(UTC) - timedelta(
        seconds=imports.max_seconds + imports.abandoned_grace_seconds
    )
    with database.session() as session:
        ids = list(
            session.scalars(
                select(Import.id).where(
                    Import.status == ImportStatus.RUNNING, Import.started_at < cutoff
                )
            )
        )
    message = (
        "the import stopped with the process running it (the worker was killed or the "
        "machine restarted); nothing was imported. Upload the file again"
    )
    for import_id in ids:
        record_refusal(
            database, import_id, "import_stopped", message, {},
            rejects_path(settings, import_id), status=ImportStatus.FAILED, only_running=True,
        )  # fmt: skip
    return ids


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def upload_folder(settings: Settings) -> Path:
    """Where the console and the API save uploads for the import job (shared with workers)."""
    return settings.instance_path / "uploads"


def held_upload(settings: Settings, import_id: int) -> Path:
    """Where an uploaded list refused only for shrinking waits for the uploader's confirmation
    (the console's second step), so it need not be sent twice; purge_superseded removes it with
    the import's rejects after imports.retention_days."""
    return upload_folder(settings) / f"held-{int(import_id)}"
