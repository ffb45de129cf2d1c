"""The public CAP feed: what alert aggregators (the WMO Alert Hub) and a carrier's
cell-broadcast centre poll. No login; only actual alerts that went on the air (cap.published).

Both answers carry an ETag and Cache-Control, and answer 304 to a conditional request, so
pollers every minute cost a query and a hash, not a download.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from broadcast import cap
from broadcast.models import Alert
from broadcast.web import alertio
from broadcast.web.context import services

bp = Blueprint("capfeed", __name__, url_prefix="/cap")

FEED_MAX_AGE = 60  # seconds: pollers see a new alert within a minute
DOCUMENT_MAX_AGE = 300  # a published CAP document does not change
FEED_TITLE = "Loa — Cảnh báo công khai / Public alerts"
ATOM_MIMETYPE = "application/atom+xml"


def _cached(body: bytes, mimetype: str, *, max_age: int, modified: datetime | None) -> BaseResponse:
    response = Response(body, mimetype=mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    if modified is not None:
        response.last_modified = modified
    response.add_etag()
    return response.make_conditional(request)


def _entry_url(alert: Alert) -> str:
    return url_for("capfeed.document", identifier=alert.identifier, _external=True)


@bp.get("/feed.atom")
def feed() -> ResponseReturnValue:
    svc = services()
    now = datetime.now(UTC)
    with svc.database.session() as session:
        alerts = cap.published(session, now=now)
        info = cap.FeedInfo(
            feed_url=url_for("capfeed.feed", _external=True),
            title=FEED_TITLE,
            author=f"loa@{request.host.split(':')[0]}",
            timezone=svc.settings.timezone,
        )
        body = cap.to_atom(alerts, info=info, entry_url=_entry_url, now=now)
        modified = cap.feed_updated(alerts)
    return _cached(body, ATOM_MIMETYPE, max_age=FEED_MAX_AGE, modified=modified)


@bp.get("/<identifier>.xml")
def document(identifier: str) -> ResponseReturnValue:
    svc = services()
    with svc.database.session() as session:
        alert = cap.published_alert(session, identifier)
        body = alertio.cap_document(
            session, alert, host=request.host, timezone=svc.settings.timezone
        )
        modified = cap.feed_updated([alert])
    return _cached(body, cap.CAP_MIMETYPE, max_age=DOCUMENT_MAX_AGE, modified=modified)
