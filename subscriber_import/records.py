"""An import's record outside the import itself: where uploads and rejects files live, the
job waiting beside each upload, why an import ended without a list, and failing the runs a
dead process left `running`.

Kept apart from subscriber_import.service (pandas, pyarrow) so that what only needs the
records (the control worker's reconcile, the console's upload pages) never loads the
importer: a sender or control worker starts about a second sooner.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

from broadcast import keys
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


def store_progress(
    client: redis.Redis,
    token: str,
    *,
    carrier: str | None,
    filename: str | None,
    only_new: bool = False,
    **state: Any,
) -> bool:
    """Write what an upload's progress says (keys.import_progress_key(token), polled by the
    upload page and the API): always its carrier and file name, then `state` ("queued",
    "running", "done", "rejected", "failed" and what goes with it). `only_new` writes only if
    the token names no progress yet, and returns whether it did."""
    record = {"carrier": carrier, "filename": filename, **state}
    key = keys.import_progress_key(token)
    return bool(client.set(key, json.dumps(record), ex=keys.IMPORT_PROGRESS_TTL, nx=only_new))


def upload_folder(settings: Settings) -> Path:
    """Where the console and the API save uploads for the import job (shared with workers)."""
    return settings.instance_path / "uploads"


def held_upload(settings: Settings, import_id: int) -> Path:
    """Where an uploaded list refused only for shrinking waits for the uploader's confirmation
    (the console's second step), so it need not be sent twice; purge_superseded removes it with
    the import's rejects after imports.retention_days."""
    return upload_folder(settings) / f"held-{int(import_id)}"


# An upload waiting for its import job is uploads/<uuid>; beside it, <uuid>.job.json holds the
# job (id and arguments), written before the job is enqueued. The job takes the upload by
# renaming it to <uuid>.taken (so two runs of one job never both import it) and removes all
# three when it ends. What reconcile finds there older than a grace is an upload whose job
# Redis lost (a flush, a restart) or a worker took and died with: see upload_jobs.
JOB_SUFFIX = ".job.json"
TAKEN_SUFFIX = ".taken"


def save_upload_job(upload: Path, job_id: str, kwargs: dict[str, Any]) -> None:
    """Write the job of an upload beside it (atomically), before it is enqueued."""
    sidecar = upload.with_name(upload.name + JOB_SUFFIX)
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps({"job_id": job_id, "kwargs": kwargs}))
    tmp.replace(sidecar)


def take_upload(upload: Path) -> Path | None:
    """Claim an upload for one run of its job: the path to import, or None when another run
    took it first (or finished it)."""
    taken = upload.with_name(upload.name + TAKEN_SUFFIX)
    try:
        upload.rename(taken)
    except FileNotFoundError:
        return None
    taken.touch()  # its age, for upload_jobs, counts from now: it may have waited long
    return taken


def is_taken(upload: Path) -> bool:
    """Whether a run of the upload's job has it, or had it and ended (its job file gone)."""
    return (
        upload.with_name(upload.name + TAKEN_SUFFIX).exists()
        or not upload.with_name(upload.name + JOB_SUFFIX).exists()
    )


def forget_upload(upload: Path) -> None:
    """Remove an upload's job file, then the upload, taken or not (in that order, so that a
    job file never outlives its run's end unseen: see is_taken)."""
    for name in (upload.name + JOB_SUFFIX, upload.name, upload.name + TAKEN_SUFFIX):
        upload.with_name(name).unlink(missing_ok=True)


@dataclass(frozen=True)
class UploadJob:
    upload: Path  # uploads/<uuid>, the path its job was given
    job_id: str
    kwargs: dict[str, Any]
    taken: bool  # a run of the job has claimed it
    age: float  # seconds since the job was written, or since a run took the upload


def upload_jobs(settings: Settings) -> list[UploadJob]:
    """Every upload whose job has not ended (its job file is still there), oldest first."""
    found: list[UploadJob] = []
    folder = upload_folder(settings)
    now = time.time()
    for sidecar in folder.glob("*" + JOB_SUFFIX) if folder.is_dir() else ():
        upload = sidecar.with_name(sidecar.name.removesuffix(JOB_SUFFIX))
        try:
            since = sidecar.stat().st_mtime
            job = json.loads(sidecar.read_text())
            # The upload before its taken name: a run taking it between the looks is seen.
            if upload.exists():
                taken = False
            else:
                since = upload.with_name(upload.name + TAKEN_SUFFIX).stat().st_mtime
                taken = True
        except FileNotFoundError:  # its run ended meanwhile: nothing to import
            sidecar.unlink(missing_ok=True)
            continue
        except ValueError:  # unreadable (it is written whole, then renamed): left alone
            continue
        found.append(UploadJob(upload, job["job_id"], job["kwargs"], taken, now - since))
    return sorted(found, key=lambda u: -u.age)
