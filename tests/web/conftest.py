"""Fixtures for the console and API: an app on a seeded database and real Redis, users, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from webtools import PASSWORD, ControlJobs

from broadcast import accounts
from broadcast.db import Database
from broadcast.models import Carrier, Role, User
from broadcast.settings import Settings
from broadcast.web import create_app


@cache
def _password_hash() -> str:
    """scrypt is slow on purpose; hash the shared test password once per session."""
    return accounts.hash_password(PASSWORD)


@dataclass
class People:
    ids: dict[str, int]
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


USERS: dict[str, tuple[Role, str | None]] = {
    "admin": (Role.ADMIN, None),
    "drafter": (Role.DRAFTER, None),
    "drafter2": (Role.DRAFTER, None),
    "approver": (Role.APPROVER, None),
    "auditor": (Role.AUDITOR, None),
    "viettel": (Role.CARRIER, "viettel"),
    "mobifone": (Role.CARRIER, "mobifone"),
}


def add_people(database: Database) -> People:
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with database.session() as session:
        carriers = {c.code: c.id for c in session.scalars(select(Carrier))}
        rows = []
        for name, (role, carrier) in USERS.items():
            user = User(
                username=name,
                display_name=name.title(),
                password_hash=_password_hash(),
                role=role,
                carrier_id=carriers[carrier] if carrier else None,
            )
            session.add(user)
            rows.append(user)
        session.flush()
        for user in rows:
            ids[user.username] = user.id
            tokens[user.username] = accounts.create_token(session, user, "test", actor="test")
    return People(ids, tokens)


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
