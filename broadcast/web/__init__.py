"""The Flask console and JSON API: `create_app(settings)` is the web's composition root."""

from __future__ import annotations

import threading

import redis
from flask import Flask
from flask_wtf.csrf import CSRFProtect
from rq import Queue
from werkzeug.middleware.proxy_fix import ProxyFix

from broadcast import keys
from broadcast.db import Database
from broadcast.redis_server import connect, redis_url_for
from broadcast.sessions import SessionStore
from broadcast.settings import Settings, load_settings
from broadcast.web.context import Services
from subscriber_import.service import load_plan

csrf = CSRFProtect()


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    redis_client: redis.Redis | None = None,
) -> Flask:
    """Build the app; settings are loaded once here when not given (LOA_* variables)."""
    settings = settings or load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        SESSION_COOKIE_NAME="loa_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=settings.imports.max_file_mb * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=settings.web.session_hours * 3600,
        JSON_SORT_KEYS=False,
    )
    if settings.web.trusted_proxies:
        # The client's address and scheme as the reverse proxies in front of us saw them.
        n = settings.web.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    database = database or Database(settings.sqlalchemy_url)
    if redis_client is None:
        redis_client = connect(redis_url_for(settings.redis_url, settings.instance_path))
    queues = {
        name: Queue(name, connection=redis_client)
        for name in (keys.CONTROL_QUEUE, keys.IMPORT_QUEUE)
    }
    sessions = SessionStore(
        redis_client,
        idle_seconds=settings.web.session_idle_minutes * 60,
        lifetime_seconds=settings.web.session_hours * 3600,
    )
    app.extensions["loa"] = Services(
        settings=settings,
        database=database,
        redis=redis_client,
        queues=queues,
        sessions=sessions,
        upload_waiters=threading.Semaphore(settings.web.upload_waiters),
        number_plan=load_plan(settings),
    )

    from broadcast.web import admin, alerts, auth, capfeed, carriers, health
    from broadcast.web.api import bp as api_bp
    from broadcast.web.errors import init_errors
    from broadcast.web.i18n import init_i18n
    from broadcast.web.inputs import init_inputs
    from broadcast.web.security import init_security
    from broadcast.web.sessions import init_sessions
    from broadcast.web.templating import init_templating

    init_sessions(app, sessions)
    init_inputs(app, max_body_bytes=settings.web.max_body_kb * 1024)
    csrf.init_app(app)
    csrf.exempt(api_bp)  # the API checks CSRF itself for cookie sessions; tokens need none
    init_security(app)
    init_i18n(app, settings.instance_path)
    init_errors(app)
    init_templating(app)
    for blueprint in (auth.bp, alerts.bp, carriers.bp, admin.bp, health.bp, capfeed.bp, api_bp):
        app.register_blueprint(blueprint)
    health.init_metrics(app)
    return app
