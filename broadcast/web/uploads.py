"""An uploaded carrier file becomes a background job: the request only saves it under
<instance>/uploads/<uuid>, writes the job beside it (subscriber_import.records.save_upload_job)
and enqueues `keys.IMPORT_JOB` ("workers.import_jobs.run_import") on the imports queue with
paths and ids. The job imports it with subscriber_import, writes its progress to Redis under
`keys.import_progress_key(token)` and removes the file. The upload page and the API poll that
progress; a file of two million rows never runs inside a request. A job Redis lost, or a
worker died holding, is enqueued again by reconcile from the file beside the upload: an
accepted upload is imported, or its uploader told why not.

A list refused for shrinking the carrier's list too much (ListShrinks) is confirmed by
sending it again with allow_shrink (API, CLI); a console upload is held instead
(records.held_upload) and confirmed in one click on its report (confirm_held).

Progress states: queued → running → done (import_id) | rejected (import_id, message, code,
details: the file was refused and nothing changed) | failed (import_id, message, code: stopped
by a limit or with its worker, nothing changed; without a code: an internal error).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from broadcast import keys, text
from broadcast.errors import Reason, ValidationFailed
from broadcast.models import Import
from broadcast.web.context import Services
from subscriber_import import records
from subscriber_import.errors import ListShrinks

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
FINAL_STATES = frozenset({"done", "rejected", "failed"})


def progress_of(svc: Services, token: str) -> dict[str, Any] | None:
    if not TOKEN_RE.fullmatch(token):
        return None
    raw = svc.redis.get(keys.import_progress_key(token))
    return json.loads(raw) if raw else None


class ProgressTokenTaken(ValidationFailed):
    """A client-chosen progress token names one upload only: reusing it (by the same carrier
    or another) would overwrite or reveal that upload's progress."""

    code = "progress_token_taken"
    http_status = 409


def start_upload(
    svc: Services,
    *,
    carrier_code: str,
    upload: FileStorage | None,
    kind: str,
    sheet: str | None,
    user_id: int,
    token: str | None,
    allow_shrink: str | None = None,
    hold_on_shrink: bool = False,
) -> str:
    """Check the form, save the file, enqueue the import; returns the progress token."""
    if token and not TOKEN_RE.fullmatch(token):
        raise ValidationFailed(
            Reason("progress_token_bad", "bad progress token"), {"progress_token": [token[:80]]}
        )
    if upload is None or not upload.filename:
        raise ValidationFailed(
            Reason("file_required", "choose a file to upload"),
            {"file": [Reason("file_missing", "a file is required")]},
        )
    if kind not in ("list", "counts"):
        raise ValidationFailed(
            Reason("upload_kind", "kind must be 'list' or 'counts', not %(kind)r", kind=kind),
            {"kind": [f"{kind!r}"]},
        )
    allowed = _flag("allow_shrink", allow_shrink)
    name = upload.filename
    for field_name, value, rule in (("file", name, text.FILENAME), ("sheet", sheet, text.SHEET)):
        refused = text.problems(value or "", rule)
        if refused:
            raise ValidationFailed(
                Reason("field_refused", "%(field)s refused", field=field_name),
                {field_name: refused},
            )
    folder = records.upload_folder(svc.settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / uuid.uuid4().hex  # never a name the client chose
    upload.save(path)
    return _enqueue(
        svc,
        token or secrets.token_hex(16),
        path,
        carrier_code=carrier_code,
        kind=kind,
        filename=name,
        sheet=sheet or None,
        user_id=user_id,
        allow_shrink=allowed,
        hold_on_shrink=hold_on_shrink,
    )


def confirm_held(svc: Services, *, import_id: int, carrier_code: str, user_id: int) -> str:
    """The second step of a list refused for shrinking: import the held upload again with the
    cut allowed, for the list the refusal named only (ListChanged otherwise). Claiming
    the held file is one rename, so of two clicks one imports and the other is told so."""
    with svc.database.session() as session:
        row = session.get(Import, import_id)
        error = ((row.report or {}).get("error") or {}) if row is not None else {}
        if row is None or error.get("code") != ListShrinks.code:
            raise ValidationFailed(
                _("Import %(id)s was not refused for shrinking the list.", id=import_id),
                {"import_id": [str(import_id)]},
            )
        details, filename = error.get("details") or {}, row.filename
    path = records.upload_folder(svc.settings) / uuid.uuid4().hex
    try:
        records.held_upload(svc.settings, import_id).rename(path)
    except FileNotFoundError:
        raise ValidationFailed(
            _(
                "Import %(id)s was already confirmed, or its file has expired: upload it again.",
                id=import_id,
            ),
            {"import_id": [str(import_id)]},
        ) from None
    return _enqueue(
        svc,
        secrets.token_hex(16),
        path,
        carrier_code=carrier_code,
        kind="list",
        filename=filename,
        sheet=details.get("sheet"),
        user_id=user_id,
        allow_shrink=True,
        replacing=details.get("current_list_id"),
    )


def _flag(name: str, value: str | None) -> bool:
    """A form's yes/no field; anything else is refused rather than read as no."""
    word = (value or "").strip().lower()
    if word in ("", "0", "false", "no", "off"):
        return False
    if word in ("1", "true", "yes", "on"):
        return True
    shown = word[:40] if value is None else value[:40]
    raise ValidationFailed(
        Reason(
            "not_yes_no", "%(name)s must be true or false, not %(value)r", name=name, value=shown
        ),
        {name: [shown]},
    )


def _enqueue(svc: Services, token: str, path: Path, *, carrier_code: str, filename: str,
             **job: Any) -> str:  # fmt: skip
    """Claim the progress token (one upload per token: a token in use is refused and the saved
    file removed), then enqueue the import job; returns the token."""
    if not records.store_progress(svc.redis, token, carrier=carrier_code, filename=filename,
                                  only_new=True, state="queued", rows=0, total=None):  # fmt: skip
        path.unlink(missing_ok=True)
        raise ProgressTokenTaken(
            Reason(
                "progress_token_taken",
                "this progress token is already in use; send a new one or none",
            ),
            {"progress_token": [Reason("token_used", "already used by another upload")]},
        )
    kwargs = {"carrier_code": carrier_code, "path": str(path), "filename": filename,
              "token": token, **job}  # fmt: skip
    job_id = keys.import_job_id(path.name)
    try:
        records.save_upload_job(path, job_id, kwargs)
        svc.import_queue.enqueue(
            keys.IMPORT_JOB, kwargs=kwargs, job_id=job_id, **keys.IMPORT_JOB_OPTIONS
        )
    except Exception:
        records.forget_upload(path)
        svc.redis.delete(keys.import_progress_key(token))
        raise
    return token


def wait_for(svc: Services, token: str, seconds: float | None, step: float = 0.1) -> dict[str, Any]:
    """The progress once final, or as it stands after `seconds` (at most
    web.upload_wait_max_seconds, its default). Only web.upload_waiters requests of a process
    wait at once; the others get the progress as it stands, so waiting uploads never hold
    every request thread."""
    limit = svc.settings.web.upload_wait_max_seconds
    seconds = limit if seconds is None else min(max(0.0, seconds), limit)
    if seconds <= 0 or not svc.upload_waiters.acquire(blocking=False):
        return progress_of(svc, token) or {"state": "lost"}
    try:
        end = time.monotonic() + seconds
        while True:
            state = progress_of(svc, token) or {"state": "lost"}
            if state.get("state") in FINAL_STATES or time.monotonic() >= end:
                return state
            time.sleep(step)
    finally:
        svc.upload_waiters.release()
