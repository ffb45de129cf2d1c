"""An uploaded carrier file becomes a background job: the request only saves it under
<instance>/uploads/<uuid> and enqueues `keys.IMPORT_JOB` ("workers.jobs.run_import") on the
control queue with paths and ids. The job imports it with subscriber_import, writes its
progress to Redis under `keys.import_progress_key(token)` and removes the file. The upload page
and the API poll that progress; a file of two million rows never runs inside a request.

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
from typing import Any

from werkzeug.datastructures import FileStorage

from broadcast import keys
from broadcast.errors import ValidationFailed
from broadcast.web.context import Services

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PROGRESS_TTL = 24 * 3600
IMPORT_JOB_TIMEOUT = 2 * 3600  # a 2,000,000-row list takes well under a minute; margin
FINAL_STATES = frozenset({"done", "rejected", "failed"})


def progress_of(svc: Services, token: str) -> dict[str, Any] | None:
    if not TOKEN_RE.fullmatch(token):
        return None
    raw = svc.redis.get(keys.import_progress_key(token))
    return json.loads(raw) if raw else None


def _store_progress(svc: Services, token: str, **state: Any) -> None:
    svc.redis.set(keys.import_progress_key(token), json.dumps(state), ex=PROGRESS_TTL)


def start_upload(
    svc: Services,
    *,
    carrier_code: str,
    upload: FileStorage | None,
    kind: str,
    sheet: str | None,
    user_id: int,
    token: str | None,
) -> str:
    """Check the form, save the file, enqueue the import; returns the progress token."""
    if token and not TOKEN_RE.fullmatch(token):
        raise ValidationFailed("bad progress token", {"progress_token": [token[:80]]})
    if upload is None or not upload.filename:
        raise ValidationFailed("choose a file to upload", {"file": ["a file is required"]})
    if kind not in ("list", "counts"):
        raise ValidationFailed(
            f"kind must be 'list' or 'counts', not {kind!r}", {"kind": [f"{kind!r}"]}
        )
    token = token or secrets.token_hex(16)
    folder = svc.settings.instance_path / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / uuid.uuid4().hex  # never a name the client chose
    upload.save(path)
    name = upload.filename
    _store_progress(
        svc, token, state="queued", rows=0, total=None, carrier=carrier_code, filename=name
    )
    try:
        svc.import_queue.enqueue(
            keys.IMPORT_JOB,
            kwargs={
                "carrier_code": carrier_code,
                "kind": kind,
                "path": str(path),
                "filename": name,
                "sheet": sheet or None,
                "user_id": user_id,
                "token": token,
            },
            job_timeout=IMPORT_JOB_TIMEOUT,
            result_ttl=PROGRESS_TTL,
            failure_ttl=7 * 24 * 3600,
        )
    except Exception:
        path.unlink(missing_ok=True)
        svc.redis.delete(keys.import_progress_key(token))
        raise
    return token


def wait_for(svc: Services, token: str, seconds: float, step: float = 0.1) -> dict[str, Any]:
    """The progress once final, or as it stands after `seconds` (the API's bounded wait)."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        state = progress_of(svc, token) or {"state": "lost"}
        if state.get("state") in FINAL_STATES or time.monotonic() >= end:
            return state
        time.sleep(step)
