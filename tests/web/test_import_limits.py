"""A file can only fail its own import: uploads through the API to a real `loa worker --imports`
process. The worker survives a hostile workbook, a zip bomb and a file past the time limit; the
import ends with a reason the uploader can act on (in Vietnamese in the console), its upload is
removed, nothing of it is written, and the next import runs. An import whose worker is killed
is failed by `loa reconcile`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue, Worker
from sqlalchemy import func, select
from webtools import People, assert_error, login
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from broadcast import keys
from broadcast.db import Database
from broadcast.models import Import, ImportStatus, Subscriber, SubscriberList
from broadcast.policy import as_utc
from broadcast.settings import Settings
from tests.imports.files import HOSTILE_CELLS, write_list_csv, write_raw_xlsx

LOA = [sys.executable, "-c", "from broadcast.cli import main; main()"]
GOOD_CSV = "so_thue_bao,ma_xa\n0961234501,18073\n0961234502,18073\n84961234503,18100\n"


def _env(settings: Settings, **imports: object) -> dict[str, str]:
    env = {
        **os.environ,
        "LOA_INSTANCE_PATH": str(settings.instance_path),
        "LOA_DATABASE_URL": settings.database_url,
        "LOA_REDIS_URL": settings.redis_url,
        "LOA_LOG_LEVEL": "WARNING",
    }
    env.update({f"LOA_IMPORTS__{k.upper()}": str(v) for k, v in imports.items()})
    return env


class ImportsWorker:
    """`loa worker --imports` as an operator runs it, with the given imports.* settings."""

    def __init__(self, settings: Settings, **imports: object) -> None:
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        self.log = settings.instance_path / f"imports-worker-{time.monotonic_ns()}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*LOA, "worker", "--imports"],
                env=_env(settings, **imports),
                stdout=out,
                stderr=out,
            )
        # Ready when it listens (its imports' fork server is up by then): an upload's wait
        # then measures the import, not the worker's start.
        connection = redis.Redis.from_url(settings.redis_url)
        queue = Queue(keys.IMPORT_QUEUE, connection=connection)
        end = time.monotonic() + 60
        while not Worker.count(queue=queue) and self.alive() and time.monotonic() < end:
            time.sleep(0.05)
        connection.close()
        assert self.alive(), self.log.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def descendants(self, pid: int | None = None) -> list[list[int]]:
        """The worker's children, grandchildren, …, a list per generation: the imports' fork
        server (and multiprocessing's resource tracker), then the imports it forked."""
        found: list[int] = []
        for task in Path(f"/proc/{pid or self.process.pid}/task").glob("*"):
            with contextlib.suppress(OSError):  # the thread or process ended while we read
                found += [int(p) for p in (task / "children").read_text().split()]
        below: list[list[int]] = []
        for child in found:
            for depth, pids in enumerate(self.descendants(child)):
                if len(below) <= depth:
                    below.append([])
                below[depth] += pids
        return [found, *below] if found else []

    def imports(self) -> list[int]:
        """The import processes: forked by the fork server, the worker's grandchildren."""
        generations = self.descendants()
        return generations[1] if len(generations) > 1 else []

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def imports_worker(settings: Settings) -> Iterator[Callable[..., ImportsWorker]]:
    started: list[ImportsWorker] = []

    def start(**imports: object) -> ImportsWorker:
        started.append(ImportsWorker(settings, **imports))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def upload(
    client: FlaskClient,
    people: People,
    data: bytes,
    name: str,
    wait: float = 90,
    token: str | None = None,
) -> Any:
    # Encoded here, in memory: the test client would spool a big body to a file it never closes.
    form: dict[str, Any] = {"kind": "list", "file": FileStorage(io.BytesIO(data), filename=name)}
    if token:
        form["progress_token"] = token
    boundary, body = encode_multipart(form)
    return client.post(
        f"/api/v1/carriers/viettel/imports?wait={wait}",
        data=body,
        headers=people.auth("viettel"),
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def _uploads(settings: Settings) -> list[Path]:
    return list((settings.instance_path / "uploads").glob("*"))


def _lists_and_numbers(database: Database) -> tuple[int, int]:
    with database.session() as session:
        lists = session.scalar(select(func.count()).select_from(SubscriberList))
        numbers = session.scalar(select(func.count()).select_from(Subscriber))
    return int(lists or 0), int(numbers or 0)


def test_a_hostile_workbook_fails_only_its_own_import(
    client: FlaskClient,
    people: People,
    settings: Settings,
    seeded_database: Database,
    imports_worker: Callable[..., ImportsWorker],
    tmp_path: Path,
) -> None:
    # Limits loose enough that the file reaches the reader: only the memory ceiling is left.
    worker = imports_worker(max_cells=10**12, max_memory_mb=512)
    hostile = write_raw_xlsx(tmp_path / "ds.xlsx", HOSTILE_CELLS, dimension="A1:A2")
    error = assert_error(upload(client, people, hostile.read_bytes(), "ds.xlsx"), 422)
    assert error["code"] == "out_of_memory", error
    assert "needed more than 512 MB of memory" in error["message"]
    assert "memory allocation" in error["details"]["stderr"]  # what the native reader said
    assert worker.alive()
    import_id = error["details"]["import_id"]
    record = client.get(f"/api/v1/imports/{import_id}", headers=people.auth("viettel"))
    assert record.get_json()["status"] == "failed"
    assert _uploads(settings) == [] and _lists_and_numbers(seeded_database) == (0, 0)
    # The console says why, in Vietnamese, with vi-VN numbers.
    login(client, "viettel")
    page = client.get(f"/carriers/imports/{import_id}").get_data(as_text=True)
    assert "Việc đọc tệp cần hơn 512 MB bộ nhớ" in page and "Thất bại" in page
    # The next import, by the same worker process.
    good = upload(client, people, GOOD_CSV.encode(), "ds.csv")
    assert good.status_code == 201, good.get_json()
    assert good.get_json()["report"]["accepted"] == 3
    assert worker.alive() and _uploads(settings) == []


def test_workbooks_refused_before_reading_through_the_worker(
    client: FlaskClient,
    people: People,
    settings: Settings,
    seeded_database: Database,
    imports_worker: Callable[..., ImportsWorker],
    tmp_path: Path,
) -> None:
    worker = imports_worker()
    hostile = write_raw_xlsx(tmp_path / "ds.xlsx", HOSTILE_CELLS)
    error = assert_error(upload(client, people, hostile.read_bytes(), "ds.xlsx"), 422)
    assert error["code"] == "too_many_cells" and error["details"]["corner"] == "XFD1048576"
    login(client, "viettel")
    page = client.get(f"/carriers/imports/{error['details']['import_id']}")
    assert "Trang tính có ô xa tới XFD1048576: 17.179.869.184 ô" in page.get_data(as_text=True)
    bomb = write_raw_xlsx(tmp_path / "bomb.xlsx", {"A1": "msisdn"}, padding=40 << 20)
    error = assert_error(upload(client, people, bomb.read_bytes(), "bomb.xlsx"), 422)
    assert error["code"] == "unsafe_file" and "100:1" in error["message"]
    assert worker.alive() and _uploads(settings) == []
    assert _lists_and_numbers(seeded_database) == (0, 0)
    good = upload(client, people, GOOD_CSV.encode(), "ds.csv")
    assert good.status_code == 201, good.get_json()


def test_an_import_past_the_time_limit_is_stopped(
    client: FlaskClient,
    people: People,
    settings: Settings,
    seeded_database: Database,
    imports_worker: Callable[..., ImportsWorker],
    tmp_path: Path,
) -> None:
    worker = imports_worker(max_seconds=0.5)
    slow = write_list_csv(tmp_path / "ds.csv", 400_000)
    token = "slowfile1234"
    error = assert_error(upload(client, people, slow.read_bytes(), "ds.csv", token=token), 422)
    assert error["code"] == "time_limit" and "0.5 s" in error["message"]
    assert worker.alive() and _uploads(settings) == []
    assert _lists_and_numbers(seeded_database) == (0, 0)
    assert not list((settings.instance_path / "imports").glob("*"))  # no rejects file
    # The page the console's upload follows: a flash, then the import's page, both in Vietnamese.
    login(client, "viettel")
    page = client.get(f"/carriers/viettel/uploads/{token}", follow_redirects=True)
    assert page.request.path == f"/carriers/imports/{error['details']['import_id']}"
    assert page.get_data(as_text=True).count("kéo dài hơn 0,5 giây") == 2


def test_reconcile_fails_an_import_whose_worker_was_killed(
    client: FlaskClient,
    people: People,
    settings: Settings,
    seeded_database: Database,
    imports_worker: Callable[..., ImportsWorker],
    tmp_path: Path,
) -> None:
    worker = imports_worker(max_seconds=120)
    # Large enough that its import is still running when the worker is killed (the row must
    # still say `running` below, so a file read too soon fails the test rather than pass it).
    big = write_list_csv(tmp_path / "ds.csv", 250_000)
    body = upload(client, people, big.read_bytes(), "ds.csv", wait=0).get_json()
    end = time.monotonic() + 60
    while not worker.imports() and time.monotonic() < end:
        time.sleep(0.02)
    assert worker.imports(), "the import's child process never started"
    children = [pid for generation in worker.descendants() for pid in generation]
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)
    # The import (and the fork server it came from) die with the worker (they would otherwise
    # run on, unseen).
    end = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < end:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    with seeded_database.session() as session:
        running = session.scalars(select(Import).where(Import.status == ImportStatus.RUNNING))
        ((import_id, started_at),) = [(row.id, row.started_at) for row in running]

    def reconcile(**imports: object) -> dict[str, int]:
        result = subprocess.run(
            [*LOA, "reconcile", "--json"],
            env=_env(settings, **imports),
            capture_output=True,
            timeout=120,
            check=True,
        )
        return json.loads(result.stdout)

    # Past imports.max_seconds but within imports.abandoned_grace_seconds, the time a live
    # worker may take to record the end itself: reconcile leaves it. (A grace far above the
    # default's 10 s: on a loaded machine `loa reconcile` alone may take that long to start.)
    assert reconcile(max_seconds=1, abandoned_grace_seconds=120)["failed_imports"] == 0
    # Past imports.max_seconds + imports.abandoned_grace_seconds (1 + 1 here) it is nobody's.
    # Waited for on the row's own started_at, the moment reconcile's cutoff counts from.
    limits = {"max_seconds": 1, "abandoned_grace_seconds": 1}
    cutoff = as_utc(started_at) + timedelta(seconds=2)
    while (left := (cutoff - datetime.now(UTC)).total_seconds()) > -0.5:
        time.sleep(left + 0.5)
    assert reconcile(**limits)["failed_imports"] == 1
    record = client.get(f"/api/v1/imports/{import_id}", headers=people.auth("viettel")).get_json()
    assert record["status"] == "failed" and "Upload the file again" in record["error"]
    progress = client.get(body["status_url"], headers=people.auth("viettel")).get_json()
    assert progress["state"] == "failed" and progress["import_id"] == import_id
    assert _uploads(settings) == [] and _lists_and_numbers(seeded_database) == (0, 0)
    assert reconcile(**limits)["failed_imports"] == 0


def test_the_imports_worker_stops_on_sigterm_within_seconds_and_cleanly(
    imports_worker: Callable[..., ImportsWorker],
) -> None:
    # An operator's `systemctl stop`: the idle worker sees the request at its next poll
    # (GracefulWorker.POLL_SECONDS), not after RQ's 405 s wait for a job.
    worker = imports_worker()
    asked = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(15) == 0, worker.log.read_text()
    assert time.monotonic() - asked < 10
    assert "Traceback" not in worker.log.read_text()
