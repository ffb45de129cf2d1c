"""Fixtures for delivery tests: simulators per carrier over TCP, a runtime, alerts with lists."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broadcast.db import Database
from broadcast.models import (
    Alert,
    AlertCategory,
    AlertStatus,
    Area,
    Carrier,
    ListStatus,
    Role,
    Subscriber,
    SubscriberList,
    User,
)
from smpp_gateway.simulator import SimulatorConfig, SmscSimulator
from tests.conftest import make_settings
from workers import runtime as rt_mod
from workers import sender as sender_mod
from workers.runtime import Runtime, build_runtime

CREDENTIALS = {
    "viettel": ("loa_viettel", "demo-vt"),
    "vinaphone": ("loa_vina", "demo-vn"),
    "mobifone": ("loa_mobi", "demo-mb"),
}

# As config/carriers.toml says each carrier writes ids in its receipts.
RECEIPT_IDS = {"vinaphone": "dec"}


@dataclass
class World:
    """A runtime wired to simulators, plus helpers to make alerts."""

    runtime: Runtime
    sims: dict[str, SmscSimulator]
    database: Database
    tmp_path: Path
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def env(self) -> dict[str, str]:
        """Environment for a `loa` subprocess that sees the same settings as this runtime."""
        settings = self.runtime.settings
        env = {
            **os.environ,
            "LOA_INSTANCE_PATH": str(settings.instance_path),
            "LOA_DATABASE_URL": settings.database_url,
            "LOA_REDIS_URL": settings.redis_url,
            "LOA_LOG_LEVEL": "WARNING",
        }
        for name, value in asdict(settings.delivery).items():
            env[f"LOA_DELIVERY__{name.upper()}"] = str(value)
        for code in self.sims:
            carrier = settings.carrier(code)
            prefix = f"LOA_CARRIERS__{code.upper()}__"
            env[prefix + "MPS"] = str(carrier.mps)
            env[prefix + "WINDOW"] = str(carrier.window)
            env[prefix + "GATEWAY__PORT"] = str(carrier.gateway.port)
            env[prefix + "GATEWAY__RESPONSE_TIMEOUT"] = str(carrier.gateway.response_timeout)
        return env

    def numbers(self, n: int) -> list[str]:
        return [f"8491{next(self._numbers):07d}" for _ in range(n)]

    def make_alert(
        self,
        audience: dict[str, list[str]],
        *,
        category: str = "information",
        body: str = "Canh bao lu: di chuyen len cao ngay.",
        status: AlertStatus = AlertStatus.APPROVED,
        area_of: dict[str, str] | None = None,
        reply_keywords: list[dict[str, Any]] | None = None,
        schedule_at: datetime | None = None,
    ) -> int:
        """An approved alert over the whole province to these carriers' lists (`area_of`:
        number -> area code in the list, else none; `schedule_at` with status SCHEDULED)."""
        with self.database.session() as s:
            user = s.scalar(select(User).where(User.username == "drafter"))
            if user is None:
                user = User(username="drafter", password_hash="x", role=Role.DRAFTER)
                s.add(user)
                s.flush()
            province = s.scalar(select(Area).where(Area.parent_id.is_(None)).order_by(Area.id))
            carriers = []
            for code, msisdns in audience.items():
                carrier = s.scalar(select(Carrier).where(Carrier.code == code))
                carriers.append(carrier)
                # Each alert gets a fresh list version (the old one superseded), so its
                # audience is exactly these numbers.
                previous = s.scalars(
                    select(SubscriberList).where(SubscriberList.carrier_id == carrier.id)
                ).all()
                for old in previous:
                    old.status = ListStatus.SUPERSEDED
                lst = SubscriberList(
                    carrier_id=carrier.id,
                    version=len(previous) + 1,
                    status=ListStatus.ACTIVE,
                    activated_at=datetime.now(UTC),
                )
                s.add(lst)
                s.flush()
                area_ids = dict(s.execute(select(Area.code, Area.id)).all()) if area_of else {}
                s.add_all(
                    Subscriber(
                        list_id=lst.id, msisdn=m, area_id=area_ids.get((area_of or {}).get(m))
                    )
                    for m in msisdns
                )
            alert = Alert(
                identifier=f"test-{next(self._numbers)}",
                title="Test",
                body=body,
                category=AlertCategory(category),
                status=status,
                brandname="UBND HaTinh",
                created_by=user.id,
                waive_daily_cap=True,
                waive_quiet_hours=True,
                reply_keywords=reply_keywords,
                schedule_at=schedule_at,
            )
            alert.areas = [province]
            alert.carriers = carriers
            s.add(alert)
            s.flush()
            return alert.id


@pytest.fixture
def make_world(
    tmp_path: Path, seeded_database: Database, redis_url: str
) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(
        carriers: tuple[str, ...] = ("viettel", "vinaphone"),
        *,
        sim: dict[str, Any] | None = None,
        mps: int = 100_000,
        window: int = 20,
        record: bool = False,
        **delivery: Any,
    ) -> World:
        sims: dict[str, SmscSimulator] = {}
        carrier_overrides: dict[str, Any] = {}
        for code in carriers:
            system_id, password = CREDENTIALS[code]
            config = SimulatorConfig(
                system_id=system_id,
                password=password,
                seed=7,
                receipt_id_format=RECEIPT_IDS.get(code, "hex"),
                **(sim or {}),
            )
            rec = tmp_path / f"{code}.jsonl" if record else None
            simulator = SmscSimulator(config, record_to=rec)
            simulator.start()
            sims[code] = simulator
            carrier_overrides[code] = {
                "mps": mps,
                "window": window,
                "gateway": {"port": simulator.port, "response_timeout": 2.0},
            }
        defaults = {"batch_size": 50, "retry_backoff_initial": 0.05, "lease_seconds": 5}
        settings = make_settings(
            tmp_path,
            database_url=seeded_database.url,
            redis_url=redis_url,
            carriers=carrier_overrides,
            delivery={**defaults, **delivery},
        )
        runtime = build_runtime(settings, seeded_database)
        rt_mod.install(runtime)
        world = World(runtime, sims, seeded_database, tmp_path)
        made.append(world)
        return world

    yield make
    for code in list(sender_mod._senders):
        sender_mod._senders[code].close()
        sender_mod.forget(code)
    rt_mod.install(None)
    for world in made:
        world.runtime.redis.close()
        for sim in world.sims.values():
            sim.stop()
