"""A scheduled alert leaves at its schedule_at, not before: approved through the API, sent by
`loa worker --control` (RQ's scheduler) and `loa worker --carrier` processes to a simulated
SMSC over TCP, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from rq import Worker
from webtools import People, add_people

from broadcast.db import Database
from broadcast.settings import Settings
from broadcast.web import create_app
from smpp_gateway.simulator import SimulatorConfig, SmscSimulator
from subscriber_import.service import import_file
from tests.conftest import make_settings

NUMBERS = [f"8498{n:07d}" for n in range(1, 41)]
# Seconds from approval to schedule_at: time to look for early sending. An alert sent at once
# (the schedule ignored) reaches the simulator about 0.5 s after its approval here, so 5 s
# (4 to 5 once schedule_at is rounded down to the second) leaves room for a slow machine.
LEAD = 5.0


@pytest.fixture
def simulator() -> Iterator[SmscSimulator]:
    sim = SmscSimulator(
        SimulatorConfig(system_id="loa_viettel", password="demo-vt", receipt_delay=0.02, seed=3)
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def wired(
    tmp_path: Path, settings: Settings, seeded_database: Database, simulator: SmscSimulator
) -> Settings:
    return make_settings(
        tmp_path,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        carriers={"viettel": {"gateway": {"port": simulator.port}}},
    )


@pytest.fixture
def workers(wired: Settings, redis_client: redis.Redis) -> Iterator[None]:
    """The control worker (with RQ's scheduler) and Viettel's sender, as operators run them."""
    env = {
        **os.environ,
        "LOA_INSTANCE_PATH": str(wired.instance_path),
        "LOA_DATABASE_URL": wired.database_url,
        "LOA_REDIS_URL": wired.redis_url,
        "LOA_CARRIERS__VIETTEL__GATEWAY__PORT": str(wired.carrier("viettel").gateway.port),
        "LOA_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-c", "from broadcast.cli import main; main()", "worker"]
    processes = [
        subprocess.Popen([*command, *args], env=env)
        for args in (["--control"], ["--carrier", "viettel"])
    ]
    try:
        deadline = time.monotonic() + 90
        while len(Worker.all(connection=redis_client)) < 2:
            assert all(p.poll() is None for p in processes), "a worker exited at start"
            assert time.monotonic() < deadline, "workers did not start within 90 s"
            time.sleep(0.2)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _status(client: FlaskClient, people: People, aid: int) -> str:
    return client.get(f"/api/v1/alerts/{aid}", headers=people.auth("auditor")).get_json()["status"]


def test_a_scheduled_alert_is_sent_at_its_time_not_before(
    tmp_path: Path,
    wired: Settings,
    seeded_database: Database,
    redis_client: redis.Redis,
    simulator: SmscSimulator,
    workers: None,
) -> None:
    people = add_people(seeded_database)
    listing = tmp_path / "viettel.csv"
    listing.write_text("msisdn,area\n" + "".join(f"0{n[2:]},18073\n" for n in NUMBERS))
    assert import_file(
        seeded_database, wired, carrier_code="viettel", kind="list", path=listing
    ).accepted == len(NUMBERS)

    app = create_app(wired, database=seeded_database, redis_client=redis_client)
    app.testing = True
    client = app.test_client()
    schedule_at = (datetime.now(UTC) + timedelta(seconds=LEAD)).replace(microsecond=0)
    created = client.post(
        "/api/v1/alerts",
        json={
            "title": "Lịch cắt điện",
            "body": "Cat dien khu vuc Thanh pho Ha Tinh 8h-11h ngay mai.",
            "category": "information",
            "areas": ["18073"],
            "carriers": ["viettel"],
            "brandname": "UBND HaTinh",
            "schedule_at": schedule_at.isoformat(),
        },
        headers=people.auth("drafter"),
    )
    assert created.status_code == 201, created.get_json()
    aid = created.get_json()["id"]
    submitted = client.post(f"/api/v1/alerts/{aid}/submit", headers=people.auth("drafter"))
    approved = client.post(
        f"/api/v1/alerts/{aid}/approve",
        json={
            "version": submitted.get_json()["version"],
            "waive_quiet_hours": True,
            "waive_daily_cap": True,
        },
        headers=people.auth("approver"),
    )
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "scheduled"

    # Up to a second before its time: nothing reached the SMSC, the alert still waits.
    while time.time() < schedule_at.timestamp() - 1.0:
        assert simulator.submits() == [], "sent before schedule_at"
        time.sleep(0.2)
    assert _status(client, people, aid) == "scheduled"

    deadline = schedule_at.timestamp() + 60
    while len(simulator.submits()) < len(NUMBERS) and time.time() < deadline:
        time.sleep(0.2)
    submits = simulator.submits()
    assert sorted(r.destination_addr for r in submits) == NUMBERS
    assert min(r.time for r in submits) >= schedule_at.timestamp()
    while _status(client, people, aid) != "completed" and time.time() < deadline:
        time.sleep(0.2)
    assert _status(client, people, aid) == "completed"
