"""The imports worker's job: a carrier's uploaded file, imported off the web request.

Apart from workers.jobs so that only the imports worker loads the importer (pandas, pyarrow,
about a second of start-up): a sender or control worker imports workers.jobs, never this.
Enqueued by dotted path (keys.IMPORT_JOB) on the imports queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from broadcast import keys
from subscriber_import import records, service
from subscriber_import.errors import ImportFailed, ImportRejected, ListShrinks
from workers import runtime as rt_mod


def run_import(
    *,
    carrier_code: str,
    kind: str,
    path: str,
    filename: str,
    sheet: str | None = None,
    user_id: int | None = None,
    token: str,
    allow_shrink: bool = False,
    replacing: int | None = None,
    hold_on_shrink: bool = False,
) -> dict[str, Any]:
    """A carrier's uploaded file, imported off the web request (enqueued by the console and
    the API as keys.IMPORT_JOB). Progress goes to keys.import_progress_key(token), which the
    upload page and the API poll; the uploaded file is removed whatever happens, except a
    console's list refused for shrinking (`hold_on_shrink`): that one is held
    (records.held_upload) for the uploader to confirm without sending it again.

    The run first takes the upload (records.take_upload): a second run of the same job, enqueued
    again by reconcile while Redis had lost sight of the first, finds it taken and does
    nothing."""
    rt = rt_mod.current()

    def store(**state: Any) -> None:
        records.store_progress(rt.redis, token, carrier=carrier_code, filename=filename, **state)

    upload = Path(path)
    taken = records.take_upload(upload)
    if taken is None:
        if records.is_taken(upload):
            return {"result": "taken"}
        records.forget_upload(upload)  # removed by somebody else: nothing to import
        store(state="failed", message="the uploaded file is gone; upload it again")
        return {"result": "upload_missing"}

    def started(import_id: int) -> None:
        link = json.dumps(
            {"token": token, "path": path, "carrier": carrier_code, "filename": filename}
        )
        rt.redis.hset(keys.IMPORTS_RUNNING_KEY, str(import_id), link)
        running.append(import_id)

    running: list[int] = []
    store(state="running", rows=0, total=None)
    try:
        report = service.import_file(
            rt.database,
            rt.settings,
            carrier_code=carrier_code,
            kind=kind,
            path=taken,
            filename=filename,
            sheet=sheet,
            user_id=user_id,
            progress=lambda rows, total: store(state="running", rows=rows, total=total),
            allow_shrink=allow_shrink,
            replacing=replacing,
            on_start=started,
        )
    except ImportRejected as exc:  # refused or stopped by a limit; nothing changed: an answer
        if hold_on_shrink and isinstance(exc, ListShrinks) and exc.import_id is not None:
            taken.replace(records.held_upload(rt.settings, exc.import_id))
        store(
            state="failed" if isinstance(exc, ImportFailed) else "rejected",
            import_id=exc.import_id,
            code=exc.code,
            message=str(exc),
            details=json.loads(json.dumps(exc.details, default=str)),
        )
        return {"result": exc.code, "import_id": exc.import_id}
    except Exception as exc:
        store(state="failed", message=f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        records.forget_upload(upload)
        if running:
            rt.redis.hdel(keys.IMPORTS_RUNNING_KEY, *map(str, running))
    out = report.to_json()
    store(state="done", rows=out.get("rows"), total=out.get("rows"), import_id=report.import_id)
    return {"result": "done", "import_id": report.import_id}
