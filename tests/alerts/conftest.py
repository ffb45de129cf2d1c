"""Fixtures for the alert core: people by role, drafts, subscriber lists written in bulk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from broadcast.alerts import AlertDraft
from broadcast.db import Database
from broadcast.models import (
    AlertCategory,
    Area,
    Carrier,
    ListStatus,
    Role,
    Subscriber,
    SubscriberList,
    User,
)
from tests.conftest import people_password_hash

PASSWORD = "correct horse battery"
# 10:00 in Ha Tinh (UTC+7): outside quiet hours.
DAYTIME = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


class People:
    """Users created on first use, as rows with the tests' shared password hash (creating them
    with accounts.create_user hashed each password at full cost: 0.14 s, half of these tests'
    CPU). What create_user itself checks and records is tested by the web tests (test_api.py,
    test_auth.py)."""

    ROLES: ClassVar[dict[str, Role]] = {
        "drafter": Role.DRAFTER,
        "drafter2": Role.DRAFTER,
        "approver": Role.APPROVER,
        "approver2": Role.APPROVER,
        "admin": Role.ADMIN,
        "auditor": Role.AUDITOR,
        "carrier": Role.CARRIER,
    }

    def __init__(self, session: Session) -> None:
        self.session = session
        self.made: dict[str, User] = {}

    def __getitem__(self, name: str) -> User:
        if name not in self.made:
            existing = self.session.scalar(select(User).where(User.username == name))
            if existing is not None:  # made by an earlier session of the same test
                self.made[name] = existing
                return existing
            role = self.ROLES[name]
            carrier = "viettel" if role == Role.CARRIER else None
            user = User(
                username=name,
                display_name=name,
                password_hash=people_password_hash(PASSWORD),
                role=role,
                carrier_id=self.session.scalar(select(Carrier.id).where(Carrier.code == carrier))
                if carrier
                else None,
            )
            self.session.add(user)
            self.session.flush()
            self.made[name] = user
        return self.made[name]


@pytest.fixture
def session(seeded_database: Database) -> Iterator[Session]:
    """One transaction per test (committed at the end), like a request in the console."""
    with seeded_database.session() as s:
        yield s


@pytest.fixture
def people(session: Session) -> People:
    return People(session)


@pytest.fixture
def draft() -> AlertDraft:
    return AlertDraft(
        title="Cảnh báo lũ",
        body="UBND tỉnh: Nguy cơ lũ tại Thành phố Hà Tĩnh. Di chuyển lên nơi cao.",
        category=AlertCategory.WARNING,
        area_codes=("18073",),
        carrier_codes=("viettel", "vinaphone"),
        brandname="UBND HaTinh",
        event="Lũ",
        urgency="Expected",
        severity="Severe",
        certainty="Likely",
        instruction="Di chuyển lên nơi cao.",
        web="https://hatinh.gov.vn/canh-bao",
    )


@pytest.fixture
def make_draft(draft: AlertDraft) -> Callable[..., AlertDraft]:
    def make(**changes: Any) -> AlertDraft:
        return replace(draft, **changes)

    return make


def _ids(session: Session, model: Any, codes: set[str]) -> dict[str, int]:
    return dict(session.execute(select(model.code, model.id).where(model.code.in_(codes))).all())


@pytest.fixture
def add_list(session: Session) -> Callable[..., SubscriberList]:
    """add_list("viettel", {"84912000001": "18073", "84912000002": None}, minutes_ago=10)."""
    versions: dict[str, int] = {}

    def add(
        carrier: str,
        numbers: dict[str, str | None],
        *,
        minutes_ago: int = 60,
        status: ListStatus = ListStatus.ACTIVE,
    ) -> SubscriberList:
        carrier_id = _ids(session, Carrier, {carrier})[carrier]
        versions[carrier] = versions.get(carrier, 0) + 1
        at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        row = SubscriberList(
            carrier_id=carrier_id,
            version=versions[carrier],
            status=status,
            row_count=len(numbers),
            created_at=at,
            activated_at=at if status == ListStatus.ACTIVE else None,
        )
        session.add(row)
        session.flush()
        areas = _ids(session, Area, {a for a in numbers.values() if a})
        session.execute(
            insert(Subscriber),
            [
                {"list_id": row.id, "msisdn": m, "area_id": areas[a] if a else None}
                for m, a in numbers.items()
            ],
        )
        return row

    return add
