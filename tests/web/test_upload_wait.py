"""Uploads that wait for their import hold a request thread; a real waitress server (as
`loa serve` runs it) must keep answering /healthz and the console while several of them wait,
and a client cannot ask to wait longer than web.upload_wait_max_seconds."""

from __future__ import annotations

import http.client
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from waitress import wasyncore
from waitress.server import create_server
from webtools import People, add_people
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from broadcast.db import Database
from broadcast.web import create_app
from tests.conftest import make_settings

LIST_CSV = b"so_thue_bao,ma_xa\n0961234501,18073\n"
THREADS = 4  # fewer than `loa serve`'s 8, so that waiting uploads could take them all

pytestmark = pytest.mark.slow


class Server:
    def __init__(self, app: Flask) -> None:
        self.server = create_server(app, host="127.0.0.1", port=0, threads=THREADS)
        self.port = self.server.effective_port
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        """waitress's loop, stopped between two turns and closed by its own thread (closing
        the sockets from another thread breaks the select() in progress)."""
        while not self.stopping.is_set():
            wasyncore.loop(timeout=0.1, map=self.server._map, count=1)
        self.server.close()

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            started = time.monotonic()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, time.monotonic() - started
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(10)


def serve(
    tmp_path: Path, database_url: str, redis_url: str, database: Database, **web: Any
) -> Iterator[tuple[Server, People]]:
    settings = make_settings(tmp_path, database_url=database_url, redis_url=redis_url, web=web)
    client = redis.Redis.from_url(redis_url)
    app = create_app(settings, database=database, redis_client=client)
    server = Server(app)
    try:
        yield server, add_people(database)
    finally:
        server.close()
        client.close()


@pytest.fixture
def served(
    tmp_path: Path, database_url: str, redis_url: str, seeded_database: Database
) -> Iterator[tuple[Server, People]]:
    yield from serve(tmp_path, database_url, redis_url, seeded_database)


@pytest.fixture
def served_short(
    tmp_path: Path, database_url: str, redis_url: str, seeded_database: Database
) -> Iterator[tuple[Server, People]]:
    yield from serve(
        tmp_path, database_url, redis_url, seeded_database, upload_wait_max_seconds=1.0
    )


def _upload(server: Server, people: People, wait: float) -> tuple[int, float]:
    boundary, body = encode_multipart(
        MultiDict({"kind": "list", "file": FileStorage(io.BytesIO(LIST_CSV), "l.csv")})
    )
    return server.request(
        "POST",
        f"/api/v1/carriers/viettel/imports?wait={wait}",
        body,
        **{
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": people.auth("viettel")["Authorization"],
        },
    )


def test_waiting_uploads_never_take_every_thread(served: tuple[Server, People]) -> None:
    server, people = served
    answers: list[tuple[int, float]] = []
    # no imports worker runs: every upload would wait its whole `wait`
    uploads = [
        threading.Thread(target=lambda: answers.append(_upload(server, people, 4)))
        for _ in range(2 * THREADS)
    ]
    for thread in uploads:
        thread.start()
    time.sleep(0.5)
    status, took = server.request("GET", "/healthz")
    assert status == 200 and took < 1.5, f"/healthz took {took:.1f} s behind waiting uploads"
    for thread in uploads:
        thread.join(30)
    assert sorted(status for status, _ in answers) == [202] * (2 * THREADS)  # none lost
    assert sum(1 for _, took in answers if took < 1.5) >= 2 * THREADS - 2  # only 2 waited


def test_wait_is_capped_by_the_setting(served_short: tuple[Server, People]) -> None:
    server, people = served_short
    status, took = _upload(server, people, 120)
    assert status == 202 and took < 3, took
