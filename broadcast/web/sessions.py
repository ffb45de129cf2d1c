"""Flask's session, kept server-side in Redis (broadcast.sessions) so that it can be ended.

Flask's own session is a signed cookie: logging out forgets it in the browser, but a copy of
the cookie keeps working until it expires. Here the cookie holds only a random id.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from flask_babel import gettext as _
from werkzeug.datastructures import CallbackDict
from werkzeug.exceptions import ServiceUnavailable

from broadcast.sessions import SessionStore, new_session_id

# What new_session_id() makes; anything else in the cookie is ignored (and never a Redis key).
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The session of one request: its data, its id, and when it began."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        session_id: str,
        started: float,
        new: bool,
    ) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.session_id = session_id
        self.started = started
        self.new = new
        self.modified = False
        self.ended: tuple[str, Any] | None = None
        # Redis could not be asked about the cookie: the request is answered 503 (init_sessions)
        # rather than as if its user were logged out, and nothing is written back.
        self.unavailable = False

    def rotate(self) -> None:
        """End this session and go on under a new id (at login against fixation, at logout so
        that a copy of the old cookie opens nothing). The data, if kept, moves along."""
        if not self.new:
            self.ended = (self.session_id, self.get("_user_id"))
        self.session_id = new_session_id()
        self.started = time.time()
        self.new = True
        self.modified = True


class RedisSessionInterface(SessionInterface):
    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        session_id = request.cookies.get(self.get_cookie_name(app), "")
        if SESSION_ID.fullmatch(session_id):
            try:
                loaded = self.store.load(session_id)
            except redis.RedisError:
                down = ServerSession(session_id=session_id, started=time.time(), new=False)
                down.unavailable = True
                return down
            if loaded is not None:
                data, started = loaded
                return ServerSession(data, session_id=session_id, started=started, new=False)
        return ServerSession(session_id=new_session_id(), started=time.time(), new=True)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        if session.unavailable:
            return
        try:
            self._save(app, session, response)
        except redis.RedisError:  # the answer (a 503, see init_sessions) stands; no cookie
            app.logger.warning("session not saved: Redis unreachable")

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if session.accessed:
            response.vary.add("Cookie")
        if session.ended is not None:
            ended_id, user_id = session.ended
            self.store.end(ended_id, user_id=user_id)
        if not session:
            if not session.new:  # emptied: nothing left to keep
                self.store.end(session.session_id, user_id=None)
            if not session.new or session.ended is not None:
                response.delete_cookie(name, domain=domain, path=path)
            return
        if not (session.modified or session.new):
            self.store.touch(session.session_id, session.started)
            return
        if not self.store.save(session.session_id, dict(session), session.started, new=session.new):
            response.delete_cookie(name, domain=domain, path=path)  # ended meanwhile
            return
        if session.new:
            expires = datetime.fromtimestamp(session.started + self.store.lifetime_seconds, UTC)
            response.set_cookie(
                name,
                session.session_id,
                expires=expires,
                httponly=self.get_cookie_httponly(app),
                domain=domain,
                path=path,
                secure=self.get_cookie_secure(app),
                samesite=self.get_cookie_samesite(app),
            )


def init_sessions(app: Flask, store: SessionStore) -> None:
    app.session_interface = RedisSessionInterface(store)

    def unavailable() -> ServiceUnavailable:
        return ServiceUnavailable(
            _(
                "Loa cannot reach its Redis server just now; nothing was changed. "
                "Try again in a minute."
            )
        )

    @app.before_request
    def _session_reachable() -> None:
        from flask import session

        if getattr(session, "unavailable", False):
            raise unavailable()

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc: redis.RedisError) -> Any:
        """Sessions, throttling and queues live in Redis: while it is unreachable, a request
        that needs it is answered 503 (nothing done), never 500."""
        app.logger.warning("Redis unreachable on %s %s: %s", request.method, request.path, exc)
        return app.handle_http_exception(unavailable())
