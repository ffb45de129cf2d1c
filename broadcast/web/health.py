"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text

from broadcast import keys, live
from broadcast.models import Alert
from broadcast.web.context import Services, services

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz() -> ResponseReturnValue:
    svc = services()
    checks: dict[str, str] = {}
    try:
        with svc.database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports any failure, it never raises
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        svc.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


class _StateCollector:
    """Alerts per status and control-queue depth, read when Prometheus scrapes."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Any]:
        alerts = GaugeMetricFamily("loa_alerts", "Alerts by status", labels=["status"])
        try:
            with self.svc.database.session() as s:
                rows = s.execute(select(Alert.status, func.count()).group_by(Alert.status))
                for status, count in rows:
                    alerts.add_metric([getattr(status, "value", str(status))], count)
        except Exception:  # noqa: S110 - a scrape must not fail because the database is down
            pass
        yield alerts
        depth = GaugeMetricFamily("loa_queue_length", "Jobs waiting", labels=["queue"])
        with contextlib.suppress(Exception):  # Redis down: report no depth, not a failure
            depth.add_metric([keys.CONTROL_QUEUE], len(self.svc.control_queue))
            depth.add_metric([keys.IMPORT_QUEUE], len(self.svc.import_queue))
        yield depth
        paced = GaugeMetricFamily(
            "loa_rate_limit",
            "Segments/s a carrier's senders pace at now: its limit, less while its SMSC "
            "pushes back",
            labels=["carrier"],
        )
        with contextlib.suppress(Exception):  # Redis or database down: report nothing
            limits = self.svc.settings.rate_limits
            for code, rate in live.effective_rates(self.svc.redis, limits).items():
                paced.add_metric([code], rate)
        yield paced


def init_metrics(app: Flask) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "loa_http_requests", "HTTP requests", ["endpoint", "status"], registry=registry
    )
    latency = Histogram("loa_http_request_seconds", "Request time", registry=registry)
    registry.register(_StateCollector(app.extensions["loa"]))
    app.extensions["loa_metrics"] = registry

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.get("request_started")
        if started is not None:
            latency.observe(time.perf_counter() - started)
        requests.labels(request.endpoint or "-", str(response.status_code)).inc()
        return response

    @app.route("/metrics")
    def metrics() -> ResponseReturnValue:
        refusal = metrics_refusal(app.extensions["loa"].settings.web.metrics_token)
        if refusal is not None:
            return refusal
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def metrics_refusal(token: str) -> Response | None:
    """None when this request may read /metrics; else the plain-text refusal.

    With web.metrics_token set, the scraper must send it as a Bearer token. Without one,
    development serves /metrics openly and production refuses: alert counts and queue depths
    are not for anyone who can reach the port.
    """
    if not token:
        if services().settings.production:
            return _plain(
                403,
                "/metrics is disabled: production mode needs web.metrics_token "
                "(LOA_WEB__METRICS_TOKEN) and scrapers sending 'Authorization: Bearer <token>'",
            )
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    response = _plain(401, "/metrics needs 'Authorization: Bearer <web.metrics_token>'")
    response.headers["WWW-Authenticate"] = 'Bearer realm="loa-metrics"'
    return response


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")
