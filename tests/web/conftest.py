"""Fixtures for the console and API: an app on a seeded database and real Redis, users, tokens;
for the browser tests, one Chromium and one fork parent of worker processes per test process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from browsertools import WorkerForks, launch_chromium
from flask import Flask
from flask.testing import FlaskClient
from webtools import ControlJobs, People, add_people

from broadcast.db import Database
from broadcast.settings import Settings
from broadcast.web import create_app


@pytest.fixture
def app(settings: Settings, seeded_database: Database, redis_client: redis.Redis) -> Flask:
    app = create_app(settings, database=seeded_database, redis_client=redis_client)
    app.testing = True
    return app


@pytest.fixture
def people(app: Flask, seeded_database: Database) -> People:
    return add_people(seeded_database)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


@pytest.fixture
def control_jobs(
    app: Flask, settings: Settings, seeded_database: Database
) -> Iterator[ControlJobs]:
    """A control worker in a thread: uploads' import jobs run while the request waits."""
    jobs = ControlJobs(settings, seeded_database)
    yield jobs
    jobs.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the test process's browser tests (`browser` in test_browser.py
    gives each test fresh contexts and closes them after it)."""
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def worker_forks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerForks]:
    """The browser tests' `loa worker` processes, forked from one interpreter that imported
    their modules once (see browsertools)."""
    forks = WorkerForks(tmp_path_factory.mktemp("worker-forks") / "parent.log")
    yield forks
    forks.close()
