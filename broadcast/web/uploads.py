"""An uploaded carrier file: saved under the instance folder, imported by subscriber_import with
progress in Redis (polled by the upload page), then removed. A refusal changes nothing."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from broadcast import keys
from broadcast.errors import ValidationFailed
from broadcast.web.context import Services
from subscriber_import import service

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PROGRESS_TTL = 3600


def progress_of(svc: Services, token: str) -> dict[str, Any] | None:
    if not TOKEN_RE.fullmatch(token):
        return None
    raw = svc.redis.get(keys.import_progress_key(token))
    return json.loads(raw) if raw else None


def _store_progress(svc: Services, token: str | None, **state: Any) -> None:
    if token:
        svc.redis.set(keys.import_progress_key(token), json.dumps(state), ex=PROGRESS_TTL)


def run_upload(
    svc: Services,
    *,
    carrier_code: str,
    upload: FileStorage | None,
    kind: str,
    sheet: str | None,
    user_id: int,
    token: str | None,
) -> dict[str, Any]:
    """Import the file now (the request waits; the page polls progress meanwhile)."""
    if token and not TOKEN_RE.fullmatch(token):
        raise ValidationFailed("bad progress token", {"progress_token": [token[:80]]})
    if upload is None or not upload.filename:
        raise ValidationFailed("choose a file to upload", {"file": ["a file is required"]})
    if kind not in ("list", "counts"):
        raise ValidationFailed(
            f"kind must be 'list' or 'counts', not {kind!r}", {"kind": [f"{kind!r}"]}
        )
    folder = svc.settings.instance_path / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    name = upload.filename
    path = folder / f"{uuid.uuid4().hex}-{secure_filename(name) or 'upload'}"
    upload.save(path)
    _store_progress(svc, token, state="running", rows=0, total=None)

    def progress(rows: int, total: int | None) -> None:
        _store_progress(svc, token, state="running", rows=rows, total=total)

    try:
        report = service.import_file(
            svc.database,
            svc.settings,
            carrier_code=carrier_code,
            kind=kind,
            path=Path(path),
            filename=name,
            sheet=sheet or None,
            user_id=user_id,
            progress=progress,
        )
    except Exception as exc:
        _store_progress(svc, token, state="rejected", message=str(exc))
        raise
    finally:
        path.unlink(missing_ok=True)
    out = report.to_json()
    _store_progress(
        svc,
        token,
        state="done",
        rows=out.get("rows"),
        total=out.get("rows"),
        import_id=out.get("import_id"),
    )
    return out
