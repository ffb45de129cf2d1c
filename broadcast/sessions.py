"""Console sessions kept in Redis, so that the server can end them.

The browser's cookie holds only a random session id. Each session is one Redis key whose TTL is
the idle timeout (renewed on every request) and whose content records when it began, so the
absolute lifetime holds however busy it is. A per-user set of session ids lets a password
change, deactivation or role change end every session of that user (`end_user`).

Redis is the only copy of a session, and that is acceptable: losing one (a flushed or restarted
Redis) logs its user out, nothing else.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from broadcast import keys


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SessionStore:
    """Load, save and end sessions; `idle_seconds` and `lifetime_seconds` come from settings."""

    redis: redis.Redis
    idle_seconds: int
    lifetime_seconds: int

    def load(self, session_id: str) -> tuple[dict[str, Any], float] | None:
        """(data, started_at) of a live session, or None when unknown, idle or too old."""
        raw = self.redis.get(keys.web_session_key(session_id))
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
            data, started = dict(stored["data"]), float(stored["started"])
        except (ValueError, KeyError, TypeError):
            self.end(session_id)
            return None
        if time.time() - started >= self.lifetime_seconds:
            self.end(session_id, user_id=data.get("_user_id"))
            return None
        return data, started

    def ttl(self, started: float) -> int:
        """Seconds the session may live from now: idle timeout, capped by the lifetime."""
        left = self.lifetime_seconds - (time.time() - started)
        return max(1, int(min(self.idle_seconds, left)))

    def save(self, session_id: str, data: dict[str, Any], started: float, *, new: bool) -> bool:
        """Write a new session, or an existing one only while it still exists: a request that
        was running when its session was ended must not bring it back. False if refused."""
        payload = json.dumps({"data": data, "started": started}, separators=(",", ":"))
        written = self.redis.set(
            keys.web_session_key(session_id),
            payload,
            ex=self.ttl(started),
            nx=new,
            xx=not new,
        )
        if not written:
            return False
        user_id = data.get("_user_id")
        if user_id is not None:
            index = keys.user_sessions_key(user_id)
            pipe = self.redis.pipeline()
            pipe.sadd(index, session_id)
            pipe.expire(index, self.lifetime_seconds)
            pipe.execute()
        return True

    def touch(self, session_id: str, started: float) -> None:
        """Slide the idle timeout of an unchanged session."""
        self.redis.expire(keys.web_session_key(session_id), self.ttl(started))

    def end(self, session_id: str, *, user_id: int | str | None = None) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(keys.web_session_key(session_id))
        if user_id is not None:
            pipe.srem(keys.user_sessions_key(user_id), session_id)
        pipe.execute()

    def end_user(self, user_id: int) -> int:
        """End every session of a user; returns how many there were."""
        index = keys.user_sessions_key(user_id)
        members = self.redis.smembers(index)
        ids = [sid.decode() if isinstance(sid, bytes) else str(sid) for sid in members]
        pipe = self.redis.pipeline()
        for sid in ids:
            pipe.delete(keys.web_session_key(sid))
        pipe.delete(index)
        pipe.execute()
        return len(ids)
