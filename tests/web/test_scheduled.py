"""A scheduled alert leaves at its schedule_at, not before: approved through the API, sent by
`loa worker --control` (RQ's scheduler) and `loa worker --carrier` processes to a simulated
SMSC over TCP, on SQLite and PostgreSQL. Also when Redis lost its job before its time."""

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
from rq import Queue, Worker
from webtools import People, add_people

from broadcast import keys
from broadcast.db import Database
from broadcast.settings import Settings
from broadcast.web import create_app
from smpp_gateway.simulator import ReceivedPdu, SimulatorConfig, SmscSimulator
from subscriber_import.service import import_file
from tests.conftest import make_settings
from workers import jobs
from workers import runtime as rt_mod
from workers.runtime import Runtime, build_runtime

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
        # Only the test's own reconcile runs after the worker's first one (at its start), so
        # its report says what that pass did.
        "LOA_DELIVERY__RECONCILE_INTERVAL": "3600",
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


@pytest.fixture
def runtime(wired: Settings, seeded_database: Database) -> Iterator[Runtime]:
    """The runtime `workers.jobs.reconcile` runs in, as `loa reconcile` builds it."""
    built = build_runtime(wired, seeded_database)
    rt_mod.install(built)
    try:
        yield built
    finally:
        rt_mod.install(None)
        built.redis.close()


def _status(client: FlaskClient, people: People, aid: int) -> str:
    return client.get(f"/api/v1/alerts/{aid}", headers=people.auth("auditor")).get_json()["status"]


def _client(
    tmp_path: Path, wired: Settings, seeded_database: Database, redis_client: redis.Redis
) -> tuple[FlaskClient, People]:
    """The API of an installation whose Viettel list holds NUMBERS."""
    people = add_people(seeded_database)
    listing = tmp_path / "viettel.csv"
    listing.write_text("msisdn,area\n" + "".join(f"0{n[2:]},18073\n" for n in NUMBERS))
    assert import_file(
        seeded_database, wired, carrier_code="viettel", kind="list", path=listing
    ).accepted == len(NUMBERS)
    app = create_app(wired, database=seeded_database, redis_client=redis_client)
    app.testing = True
    return app.test_client(), people


def _approve_scheduled(client: FlaskClient, people: People, schedule_at: datetime) -> int:
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
    return aid


def _nothing_sent_until(
    simulator: SmscSimulator, client: FlaskClient, people: People, aid: int, until: float
) -> None:
    """Up to `until` (epoch seconds) nothing reached the SMSC; then the alert still waits."""
    while time.time() < until:
        assert simulator.submits() == [], "sent before schedule_at"
        time.sleep(0.2)
    assert _status(client, people, aid) == "scheduled"


def _sent_and_completed(
    simulator: SmscSimulator, client: FlaskClient, people: People, aid: int, deadline: float
) -> list[ReceivedPdu]:
    """Waits until every number reached the SMSC and the alert is completed; its submits."""
    while len(simulator.submits()) < len(NUMBERS) and time.time() < deadline:
        time.sleep(0.2)
    while _status(client, people, aid) != "completed" and time.time() < deadline:
        time.sleep(0.2)
    assert _status(client, people, aid) == "completed"
    submits = simulator.submits()
    assert sorted(str(r.destination_addr) for r in submits) == NUMBERS  # each number once
    return submits


def test_a_scheduled_alert_is_sent_at_its_time_not_before(
    tmp_path: Path,
    wired: Settings,
    seeded_database: Database,
    redis_client: redis.Redis,
    simulator: SmscSimulator,
    workers: None,
) -> None:
    client, people = _client(tmp_path, wired, seeded_database, redis_client)
    schedule_at = (datetime.now(UTC) + timedelta(seconds=LEAD)).replace(microsecond=0)
    aid = _approve_scheduled(client, people, schedule_at)

    # Up to a second before its time: nothing reached the SMSC, the alert still waits.
    _nothing_sent_until(simulator, client, people, aid, schedule_at.timestamp() - 1.0)
    submits = _sent_and_completed(simulator, client, people, aid, schedule_at.timestamp() + 60)
    assert min(r.time for r in submits) >= schedule_at.timestamp()


@pytest.mark.parametrize("due", ["later", "passed"])
def test_a_scheduled_alert_whose_job_redis_lost_is_sent_once(
    tmp_path: Path,
    wired: Settings,
    seeded_database: Database,
    redis_client: redis.Redis,
    simulator: SmscSimulator,
    workers: None,
    runtime: Runtime,
    due: str,
) -> None:
    """Redis flushed while a scheduled alert waits: its fan-out job, in RQ's scheduled
    registry, is gone with it. Reconcile schedules it again for its time ("later"), or
    enqueues it at once when that time passed meanwhile ("passed"); every number receives
    it once. Before, the alert stayed scheduled and was never sent."""
    client, people = _client(tmp_path, wired, seeded_database, redis_client)
    # "passed": 4 to 5 s ahead (rounded down): the approval and the first reconcile must be
    # done before RQ's scheduler moves the job, on a loaded machine too.
    lead = LEAD + 3 if due == "later" else 5.0
    schedule_at = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
    aid = _approve_scheduled(client, people, schedule_at)
    job_id = keys.fan_out_job_id(aid)
    control = Queue(keys.CONTROL_QUEUE, connection=redis_client)

    # Nothing lost yet: reconcile leaves the waiting job alone and adds none.
    assert jobs.reconcile()["scheduled_fan_outs"] == 0
    assert control.scheduled_job_registry.get_job_ids() == [job_id]
    assert control.get_job_ids() == []

    redis_client.flushdb()
    if due == "passed":
        while time.time() < schedule_at.timestamp() + 0.5:
            time.sleep(0.1)
        assert simulator.submits() == []
        assert _status(client, people, aid) == "scheduled"
    reconciled_at = time.time()
    report = jobs.reconcile()
    assert report["scheduled_fan_outs"] == 1, report
    if due == "later":
        assert control.scheduled_job_registry.get_job_ids() == [job_id]
        assert control.get_job_ids() == []
        # Nothing lost since: the second pass finds the job waiting and enqueues nothing.
        assert jobs.reconcile()["scheduled_fan_outs"] == 0
        assert control.scheduled_job_registry.get_job_ids() == [job_id]
        assert control.get_job_ids() == []
        _nothing_sent_until(simulator, client, people, aid, schedule_at.timestamp() - 1.0)

    deadline = max(time.time(), schedule_at.timestamp()) + 60
    submits = _sent_and_completed(simulator, client, people, aid, deadline)
    assert min(r.time for r in submits) >= max(schedule_at.timestamp(), reconciled_at)
