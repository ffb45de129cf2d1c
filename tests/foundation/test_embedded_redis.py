"""The Redis server Loa starts itself when no URL is configured."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import redis

from broadcast.redis_server import (
    PrivateRedis,
    connect,
    ensure_embedded_redis,
    stop_embedded_redis,
)


def test_started_once_shared_then_stopped(tmp_path: Path) -> None:
    url = ensure_embedded_redis(tmp_path)
    try:
        client = redis.Redis.from_url(url)
        client.set("loa:probe", "1")
        # A second process with the same instance folder finds the same server.
        assert ensure_embedded_redis(tmp_path) == url
        assert client.get("loa:probe") == b"1"
        client.close()
    finally:
        assert stop_embedded_redis(tmp_path)
    assert not stop_embedded_redis(tmp_path)
    # Started again after a stop, it is a working server again.
    url2 = ensure_embedded_redis(tmp_path)
    try:
        assert redis.Redis.from_url(url2).ping()
    finally:
        stop_embedded_redis(tmp_path)


def test_clients_ride_out_a_restart(tmp_path: Path) -> None:
    """A command sent while the server restarts is retried until it is back."""
    server = PrivateRedis(tmp_path / "r").start()
    client = connect(server.url)
    try:
        client.set("loa:before", "1")
        server.stop()
        restarter = threading.Timer(1.0, server.start)
        restarter.start()
        started = time.monotonic()
        assert client.ping()  # blocked until the server answered again
        assert time.monotonic() - started >= 0.5
        restarter.join()
        assert client.get("loa:before") is None  # nothing persisted: reconcile's job
    finally:
        client.close()
        server.stop()
