"""Alerts cannot arrive late: the SMSC is told each alert's expiry, every failed row says why
in the report, and the live figures add up while an alert sends."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from web.webtools import People, add_people

from broadcast import alerts, keys
from broadcast.models import Alert, AlertStatus, Role, User
from broadcast.policy import as_utc
from broadcast.web import create_app
from delivery.conftest import World
from delivery.helpers import drain, sender_processes, states, wait_for, work
from smpp_gateway import smpptime
from tests.conftest import make_settings
from workers import jobs
from workers.sender import sender_for

FAILED_WORDS = ("Không gửi được", "Hết hiệu lực", "Bị từ chối")
COLUMNS = ("pending", "queued", "submitted", "delivered", "failed", "cancelled")


def _approve(world: World, alert_id: int, **policy: object) -> Alert:
    """Approve as a second person would, through the alert service."""
    settings = make_settings(world.tmp_path, policy=policy) if policy else None
    with world.database.session() as s:
        approver = User(username="approver-late", password_hash="x", role=Role.APPROVER)
        s.add(approver)
        s.flush()
        alert = s.get(Alert, alert_id)
        alerts.approve(
            s, alert_id, user=approver, version=alert.version, settings=settings,
            waive_quiet_hours=True,  # about the expiry, not the hour it runs at
        )  # fmt: skip
        s.flush()
        s.expunge(alert)
        return alert


def _web(world: World) -> tuple[FlaskClient, People]:
    app = create_app(
        world.runtime.settings, database=world.database, redis_client=world.runtime.redis
    )
    app.testing = True
    return app.test_client(), add_people(world.database)


def test_every_submit_carries_the_alert_expiry_as_its_validity(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("viettel", "vinaphone"), record=True, sim={"receipt_delay": 0.02})
    numbers = {"viettel": world.numbers(120), "vinaphone": world.numbers(80)}
    alert_id = world.make_alert(numbers, status=AlertStatus.PENDING_APPROVAL)
    alert = _approve(world, alert_id, default_validity_hours=3)
    # No expiry was drafted: approval gives it one, default_validity_hours from sending.
    expires = as_utc(alert.expires_at)
    assert expires - as_utc(alert.approved_at) == timedelta(hours=3)
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel", "vinaphone"])
    assert drain(world.runtime, ["viettel", "vinaphone"], alert_id)
    for code, sent in numbers.items():
        lines = (world.tmp_path / f"{code}.jsonl").read_text().splitlines()
        recorded = [json.loads(line) for line in lines]
        assert sorted(r["destination"] for r in recorded) == sorted(sent)
        assert {r["validity_period"] for r in recorded} == {smpptime.absolute(expires)}
        told = smpptime.parse(recorded[0]["validity_period"], datetime.now(UTC))
        assert told is not None and timedelta(0) <= expires - told < timedelta(seconds=0.1)


def test_an_explicit_expiry_is_kept_and_what_outlives_it_ends_expired(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("viettel",), sim={"receipt_delay": 1.5})
    numbers = world.numbers(60)
    alert_id = world.make_alert({"viettel": numbers}, status=AlertStatus.PENDING_APPROVAL)
    with world.database.session() as s:
        s.get(Alert, alert_id).expires_at = datetime.now(UTC) + timedelta(seconds=1)
    alert = _approve(world, alert_id)
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel"])
    sent = world.sims["viettel"].submits()
    assert {r.validity_period for r in sent} == {smpptime.absolute(as_utc(alert.expires_at))}
    # The SMSC held every message past its validity: every receipt says EXPIRED.
    assert drain(world.runtime, ["viettel"], alert_id, timeout=10)
    assert states(world.database, alert_id) == {"expired": 60}


def test_every_failed_row_says_why_in_the_report(make_world: Callable[..., World]) -> None:
    world = make_world(
        ("viettel", "vinaphone"),
        max_attempts=2,
        sim={
            "receipt_delay": 0.02,
            "transient_error_rate": 0.1,
            "permanent_error_rate": 0.05,
            "receipt_mix": {"DELIVRD": 0.7, "UNDELIV": 0.15, "REJECTD": 0.1, "EXPIRED": 0.05},
        },
    )
    client, people = _web(world)
    # vinaphone sends no receipts: its rows wait for the alert's expiry.
    world.sims["vinaphone"].set_config(receipt_delay=None)
    numbers = {"viettel": world.numbers(400), "vinaphone": world.numbers(40)}
    alert_id = world.make_alert(numbers)
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel", "vinaphone"])
    drain(world.runtime, ["viettel"], alert_id, timeout=3)
    with world.database.session() as s:
        s.get(Alert, alert_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    jobs.reconcile()
    response = client.get(f"/api/v1/alerts/{alert_id}/report.csv", headers=people.auth("auditor"))
    assert response.status_code == 200
    # The report in the auditor's language (Vietnamese): states and reasons in words.
    text = response.get_data(as_text=True).removeprefix("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 440
    state, reason = "Trạng thái", "Lý do không thành công"
    failed = [r for r in rows if r[state] in FAILED_WORDS]
    assert len(failed) > 60
    assert [r for r in failed if not r[reason]] == []
    reasons = {r[reason] for r in failed}
    smsc = "Tổng đài tin nhắn của nhà mạng từ chối: "
    assert smsc + "ESME_RINVDSTADR (0x0B)" in reasons
    assert any(r.startswith("Dừng sau 2 lần thử: " + smsc + "ESME_R") for r in reasons), reasons
    assert {
        "Nhà mạng không chuyển được tới máy (mã lỗi 001)",
        "Nhà mạng từ chối (mã lỗi 001)",
        "Hết hạn tại nhà mạng trước khi tới máy (mã lỗi 001)",
        "Hết thời hạn hiệu lực mà chưa có báo nhận",
    } <= reasons
    assert all(r[reason] == "" for r in rows if r[state] == "Đã nhận")


def test_an_alert_completed_by_a_sender_while_reconcile_expires_its_rows_shows_100(
    make_world: Callable[..., World],
) -> None:
    """Reconcile expires the overdue rows in the database and recounts the live counters of
    the alerts still active; a sender checking for open rows in between completes the alert
    first, which then is not active any more: its counters keep the row as submitted."""
    world = make_world(("viettel", "vinaphone"), sim={"receipt_delay": 0.02})
    client, people = _web(world)
    world.sims["vinaphone"].set_config(receipt_delay=None)  # its one row waits for expiry
    numbers = {"viettel": world.numbers(20), "vinaphone": world.numbers(1)}
    alert_id = world.make_alert(numbers)
    jobs.fan_out(alert_id)
    work(world.runtime, ["viettel", "vinaphone"])
    drain(world.runtime, ["viettel"], alert_id, timeout=3)
    assert states(world.database, alert_id) == {"delivered": 20, "submitted": 1}
    with world.database.session() as s:
        s.get(Alert, alert_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    # The interleaving, step by step: reconcile's first step, the sender's periodic check
    # for open rows (it completes the alert), then the rest of reconcile.
    assert world.runtime.store.expire_overdue() == [alert_id]
    sender_for(world.runtime, "vinaphone").flush_receipts(force_match=True)
    jobs.reconcile()
    got = client.get(f"/api/v1/alerts/{alert_id}/progress", headers=people.auth("auditor"))
    figures = got.get_json()
    assert figures["status"] == "completed"
    assert (figures["done"], figures["total"], figures["percent"]) == (21, 21, 100.0), figures
    vinaphone = figures["carriers"]["vinaphone"]
    assert (vinaphone["submitted"], vinaphone["failed"], vinaphone["percent"]) == (0, 1, 100.0)


def test_progress_adds_up_at_every_poll_and_is_100_only_when_done(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("viettel", "vinaphone"), mps=600, sim={"receipt_delay": 0.05})
    client, people = _web(world)
    # 2,000 + 1: the one vinaphone row has no receipt until vinaphone sends them again, so
    # 2,000 of 2,001 rows are final for a while (99.95 %, not 100).
    world.sims["vinaphone"].set_config(receipt_delay=None)
    numbers = {"viettel": world.numbers(2000), "vinaphone": world.numbers(1)}
    alert_id = world.make_alert(numbers)
    jobs.fan_out(alert_id)
    polls: list[dict] = []

    def poll() -> dict:
        got = client.get(f"/api/v1/alerts/{alert_id}/progress", headers=people.auth("auditor"))
        assert got.status_code == 200
        figures = got.get_json()
        polls.append(figures)
        for code, carrier in figures["carriers"].items():
            assert sum(carrier[k] for k in COLUMNS) == carrier["total"] == len(numbers[code])
            if any(carrier[k] for k in ("pending", "queued", "submitted")):
                assert carrier["percent"] < 100, carrier
        assert figures["total"] == 2001
        if figures["done"] < figures["total"]:
            assert figures["percent"] < 100, figures
        if figures["status"] == "completed":
            # At the first poll that says so, not a moment later: no row is open any more.
            assert figures["done"] == figures["total"] and figures["percent"] == 100, figures
        return figures

    with sender_processes(world, list(numbers)):
        assert wait_for(lambda: poll()["done"] == 2000, timeout=60, step=0.05)
        for _ in range(5):
            assert poll()["percent"] == 99.9
        # A move applied twice (queued -> delivered once too often) leaves a counter below
        # zero: the next read recounts from the database instead of showing 2,005 of 2,001.
        counters = keys.alert_counters_key(alert_id, "viettel")
        world.runtime.redis.hincrby(counters, "queued", -5)
        world.runtime.redis.hincrby(counters, "delivered", 5)
        assert poll()["carriers"]["viettel"]["delivered"] == 2000
        world.sims["vinaphone"].set_config(receipt_delay=0.01)
        # The row is resent only if its lease and the alert allow: let its receipt come by
        # resending nothing; finish it by expiry instead, as an unanswered row would.
        with world.database.session() as s:
            s.get(Alert, alert_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        jobs.reconcile()
        assert wait_for(lambda: poll()["status"] == "completed", timeout=20, step=0.05)
    assert poll()["percent"] == 100.0
    assert len(polls) > 20
    # A completed alert's figures are the database's: its counters in Redis no longer count.
    world.runtime.redis.hincrby(counters, "delivered", -7)
    world.runtime.redis.hincrby(counters, "queued", 7)
    assert poll()["carriers"]["viettel"]["delivered"] == 2000
    with world.database.session() as s:
        assert s.scalar(select(Alert.status).where(Alert.id == alert_id)).value == "completed"
