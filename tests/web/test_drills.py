"""Recurring drills through the API and the control worker's periodic reconcile, and the drill
group, on SQLite and PostgreSQL: a schedule makes the next drill as an alert awaiting a second
person's approval, once, `lead_days` ahead; a missed drill is skipped, never sent late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from webtools import ControlJobs, People, assert_error, login, page_csrf

from broadcast.models import AuditEntry, DrillSchedule
from workers import jobs

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _plan(**overrides: Any) -> dict[str, Any]:
    soon = datetime.now(ZONE) + timedelta(days=2)
    return {
        "title": "Diễn tập sơ tán lũ hằng tháng",
        "body": "Diễn tập: tập trung tại nhà văn hoá xã.",
        "areas": ["18073", "18196"],
        "carriers": ["viettel", "mobifone"],
        "brandname": "UBND HaTinh",
        "day_of_month": soon.day if soon.day <= 28 else 1,
        "at_time": "09:00",
        "lead_days": 7,
        **overrides,
    }


def _drills(client: FlaskClient, people: People) -> list[dict[str, Any]]:
    listed = client.get("/api/v1/alerts", headers=people.auth("auditor")).get_json()
    return [a for a in listed if a["category"] == "exercise"]


def test_a_recurring_drill_makes_the_next_drill_for_approval_once(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    made = client.post("/api/v1/drill-schedules", json=_plan(), headers=people.auth("admin"))
    assert made.status_code == 201, made.get_json()
    schedule = made.get_json()
    first_at = datetime.fromisoformat(schedule["next_at"])
    local = first_at.astimezone(ZONE)
    assert (local.day, f"{local:%H:%M}") == (_plan()["day_of_month"], "09:00")
    assert first_at > datetime.now(UTC)

    report = jobs.reconcile()  # what the control worker runs every delivery.reconcile_interval
    assert report["drills_created"] == 1
    assert jobs.reconcile()["drills_created"] == 0  # once per drill
    (drill,) = _drills(client, people)
    assert drill["status"] == "pending_approval"
    assert drill["drill"] is True and drill["test"] is False
    assert drill["created_by"] == people.ids["admin"]
    assert datetime.fromisoformat(drill["schedule_at"]) == first_at
    assert drill["text"].startswith("[DIỄN TẬP] ")
    assert {a["code"] for a in drill["areas"]} == {"18073", "18196"}

    after = client.get("/api/v1/drill-schedules", headers=people.auth("auditor")).get_json()
    assert after[0]["last_alert_id"] == drill["id"]
    following = datetime.fromisoformat(after[0]["next_at"]).astimezone(ZONE)
    assert following.day == local.day and following > local + timedelta(days=27)

    # The two-person rule holds: the admin who set it cannot approve; an approver can.
    own = client.post(
        f"/api/v1/alerts/{drill['id']}/approve",
        json={"version": drill["version"]},
        headers=people.auth("admin"),
    )
    assert_error(own, 403)
    approved = client.post(
        f"/api/v1/alerts/{drill['id']}/approve",
        json={"version": drill["version"]},
        headers=people.auth("approver"),
    )
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "scheduled"


def test_a_missed_drill_is_skipped_not_sent_late(
    app: Flask, client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    schedule = client.post(
        "/api/v1/drill-schedules", json=_plan(), headers=people.auth("admin")
    ).get_json()
    database = app.extensions["loa"].database
    with database.session() as session:  # no worker ran on the day
        session.execute(
            update(DrillSchedule)
            .where(DrillSchedule.id == schedule["id"])
            .values(next_at=datetime.now(UTC) - timedelta(hours=1))
        )
    assert jobs.reconcile()["drills_created"] == 0
    assert _drills(client, people) == []
    with database.session() as session:
        row = session.get(DrillSchedule, schedule["id"])
        assert row is not None
        next_at = row.next_at if row.next_at.tzinfo else row.next_at.replace(tzinfo=UTC)
        assert next_at > datetime.now(UTC)
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "drill_schedule")
        ).all()
        assert "drill_schedule.missed" in actions


def test_drill_schedules_refuse_bad_input_and_other_roles(
    client: FlaskClient, people: People
) -> None:
    bad_day = client.post(
        "/api/v1/drill-schedules", json=_plan(day_of_month=31), headers=people.auth("admin")
    )
    assert "day_of_month" in assert_error(bad_day, 422)["details"]
    bad_time = client.post(
        "/api/v1/drill-schedules", json=_plan(at_time="25:00"), headers=people.auth("admin")
    )
    assert "at_time" in assert_error(bad_time, 422)["details"]
    bad_area = client.post(
        "/api/v1/drill-schedules", json=_plan(areas=["99999"]), headers=people.auth("admin")
    )
    assert "area_codes" in assert_error(bad_area, 422)["details"]
    drafter = client.post("/api/v1/drill-schedules", json=_plan(), headers=people.auth("drafter"))
    assert_error(drafter, 403)
    assert client.get("/api/v1/drill-schedules", headers=people.auth("viettel")).status_code == 403
    assert client.get("/api/v1/drill-schedules", headers=people.auth("admin")).get_json() == []
    assert_error(client.delete("/api/v1/drill-schedules/7", headers=people.auth("admin")), 404)


def test_the_drill_group_is_apart_from_the_test_group(client: FlaskClient, people: People) -> None:
    number = {"msisdn": "0912345678", "carrier": "viettel", "name": "Đội cứu hộ xã"}
    added = client.post("/api/v1/drill-recipients", json=number, headers=people.auth("admin"))
    assert added.status_code == 201, added.get_json()
    twin = client.post("/api/v1/drill-recipients", json=number, headers=people.auth("admin"))
    assert "msisdn" in assert_error(twin, 422)["details"]
    # The same number may also be in the test group; the two lists stay apart.
    test = client.post("/api/v1/test-recipients", json=number, headers=people.auth("admin"))
    assert test.status_code == 201
    drill_rows = client.get("/api/v1/drill-recipients", headers=people.auth("admin")).get_json()
    assert [r["msisdn"] for r in drill_rows] == ["84912345678"]
    wrong_group = client.delete(
        f"/api/v1/test-recipients/{added.get_json()['id']}", headers=people.auth("admin")
    )
    assert_error(wrong_group, 404)
    preview = client.post(
        "/api/v1/preview",
        json={"text": "Diễn tập", "category": "exercise", "carriers": ["viettel"], "areas": []},
        headers=people.auth("drafter"),
    )
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["audience_total"] == 1  # the drafter's preview counts the group


def test_an_admin_schedules_and_stops_a_drill_in_the_console(
    client: FlaskClient, people: People
) -> None:
    plan = _plan()
    login(client, "admin")
    page = client.get("/admin/drills").get_data(as_text=True)
    assert "Diễn tập định kỳ" in page and "Chưa có lịch diễn tập định kỳ." in page
    form = {
        "csrf_token": page_csrf(client, "/admin/drills"),
        "title": plan["title"],
        "body": plan["body"],
        "brandname": plan["brandname"],
        "day_of_month": "31",
        "at_time": "09:00",
        "lead_days": "7",
        "areas": plan["areas"],
        "carriers": plan["carriers"],
    }
    refused = client.post("/admin/drills", data=form, follow_redirects=True)
    text = refused.get_data(as_text=True)
    assert "31 không phải một ngày từ 1 đến 28" in text
    assert "Chưa có lịch diễn tập định kỳ." in text  # nothing stored

    form["day_of_month"] = str(plan["day_of_month"])
    made = client.post("/admin/drills", data=form, follow_redirects=True)
    text = made.get_data(as_text=True)
    assert "Đã lên lịch diễn tập định kỳ." in text
    assert f"ngày {plan['day_of_month']} lúc 09:00" in text
    listed = client.get("/api/v1/drill-schedules", headers=people.auth("admin")).get_json()
    assert [s["active"] for s in listed] == [True]

    stop = client.post(
        f"/admin/drills/{listed[0]['id']}/deactivate",
        data={"csrf_token": page_csrf(client, "/admin/drills")},
        follow_redirects=True,
    )
    assert "Đã dừng diễn tập định kỳ." in stop.get_data(as_text=True)
    listed = client.get("/api/v1/drill-schedules", headers=people.auth("admin")).get_json()
    assert [s["active"] for s in listed] == [False]

    login(client, "drafter")
    assert client.get("/admin/drills").status_code == 403
