"""Fixtures for the console and API: an app on a seeded database and real Redis, users, tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
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
