"""The JSON API: every endpoint's errors (anonymous, wrong role, bad JSON, wrong types, missing
fields) with the one error body, and the happy paths a console user takes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select
from webtools import ALERT, People, assert_error, create_alert, login, page_csrf

from broadcast.db import Database
from broadcast.models import AuditEntry

# (method, path, json body or None): every API endpoint but the OpenAPI document.
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/me", None),
    ("POST", "/api/v1/preview", {"text": "x"}),
    ("GET", "/api/v1/areas", None),
    ("GET", "/api/v1/carriers", None),
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {}),
    ("PATCH", "/api/v1/users/1", {}),
    ("GET", "/api/v1/tokens", None),
    ("POST", "/api/v1/tokens", {}),
    ("DELETE", "/api/v1/tokens/1", None),
    ("GET", "/api/v1/alerts", None),
    ("POST", "/api/v1/alerts", {}),
    ("GET", "/api/v1/alerts/1", None),
    ("PUT", "/api/v1/alerts/1", {}),
    ("POST", "/api/v1/alerts/1/submit", None),
    ("POST", "/api/v1/alerts/1/withdraw", None),
    ("POST", "/api/v1/alerts/1/approve", {}),
    ("POST", "/api/v1/alerts/1/reject", {}),
    ("POST", "/api/v1/alerts/1/pause", None),
    ("POST", "/api/v1/alerts/1/resume", None),
    ("POST", "/api/v1/alerts/1/cancel", None),
    ("POST", "/api/v1/alerts/1/derive", {}),
    ("GET", "/api/v1/alerts/1/progress", None),
    ("GET", "/api/v1/alerts/1/report.csv", None),
    ("GET", "/api/v1/alerts/1/report.xlsx", None),
    ("GET", "/api/v1/alerts/1/replies", None),
    ("GET", "/api/v1/alerts/1/help.csv", None),
    ("GET", "/api/v1/templates", None),
    ("GET", "/api/v1/alerts/1/cap.xml", None),
    ("POST", "/api/v1/carriers/viettel/imports", None),
    ("GET", "/api/v1/carriers/viettel/imports", None),
    ("GET", "/api/v1/imports/1", None),
    ("GET", "/api/v1/imports/progress/abcdefgh", None),
    ("GET", "/api/v1/carriers/viettel/coverage", None),
    ("GET", "/api/v1/carriers/viettel/status", None),
    ("PUT", "/api/v1/carriers/viettel/status", {}),
    ("GET", "/api/v1/imports/1/rejects.csv", None),
    ("GET", "/api/v1/brandnames", None),
    ("POST", "/api/v1/brandnames", {}),
    ("POST", "/api/v1/brandnames/1/deactivate", None),
    ("GET", "/api/v1/test-recipients", None),
    ("POST", "/api/v1/test-recipients", {}),
    ("DELETE", "/api/v1/test-recipients/1", None),
    ("GET", "/api/v1/drill-recipients", None),
    ("POST", "/api/v1/drill-recipients", {}),
    ("DELETE", "/api/v1/drill-recipients/1", None),
    ("GET", "/api/v1/drill-schedules", None),
    ("POST", "/api/v1/drill-schedules", {}),
    ("DELETE", "/api/v1/drill-schedules/1", None),
]


def call(client: FlaskClient, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    return client.open(path, method=method, json=body, **kw)


def test_every_endpoint_is_listed_here_and_documented(app: Flask, client: FlaskClient) -> None:
    rules = {
        (m, r.rule)
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("api.") and r.endpoint != "api.openapi"
        for m in r.methods - {"HEAD", "OPTIONS"}
    }
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for method, rule in rules:
        path = rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        assert (method, path) in documented, (method, path)
        assert "401" in spec["paths"][path][method.lower()]["responses"]
    listed = {
        (m, p.replace("/1/", "/<int:alert_id>/").replace("/1", "/<int:x>")) for m, p, _ in ENDPOINTS
    }
    assert len(listed) == len(rules), "a new endpoint needs a row in ENDPOINTS"
    assert "Error" in spec["components"]["schemas"]


def test_anonymous_calls_get_401_with_the_error_body(client: FlaskClient) -> None:
    for method, path, body in ENDPOINTS:
        error = assert_error(call(client, method, path, body), 401, "unauthorized")
        assert "Bearer" in error["message"]


def test_bad_and_revoked_tokens_get_401(client: FlaskClient, people: People) -> None:
    assert_error(client.get("/api/v1/me", headers={"Authorization": "Bearer loa_nope"}), 401)
    assert_error(client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401)
    mine = client.get("/api/v1/tokens", headers=people.auth("viettel")).get_json()
    revoked = client.delete(f"/api/v1/tokens/{mine[0]['id']}", headers=people.auth("viettel"))
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert_error(client.get("/api/v1/me", headers=people.auth("viettel")), 401)


FORBIDDEN = [
    ("viettel", "GET", "/api/v1/alerts", None),
    ("viettel", "POST", "/api/v1/preview", {"text": "x"}),
    ("viettel", "POST", "/api/v1/alerts", ALERT),
    ("auditor", "POST", "/api/v1/alerts", ALERT),
    ("drafter", "GET", "/api/v1/users", None),
    ("approver", "POST", "/api/v1/users", {}),
    ("drafter", "PATCH", "/api/v1/users/1", {}),
    ("drafter", "POST", "/api/v1/alerts/1/approve", {}),
    ("drafter", "POST", "/api/v1/alerts/1/reject", {"reason": "x"}),
    ("drafter", "POST", "/api/v1/alerts/1/pause", None),
    ("auditor", "POST", "/api/v1/alerts/1/cancel", None),
    ("auditor", "POST", "/api/v1/alerts/1/resume", None),
    ("viettel", "GET", "/api/v1/alerts/1/report.csv", None),
    ("viettel", "GET", "/api/v1/alerts/1/replies", None),
    ("drafter", "GET", "/api/v1/alerts/1/help.csv", None),
    ("auditor", "GET", "/api/v1/alerts/1/help.csv", None),
    ("mobifone", "GET", "/api/v1/alerts/1/progress", None),
    ("drafter", "POST", "/api/v1/tokens", {"name": "x", "user_id": 1}),
    ("drafter", "GET", "/api/v1/brandnames", None),
    ("approver", "POST", "/api/v1/brandnames", {"name": "UBND HaTinh"}),
    ("auditor", "POST", "/api/v1/brandnames/1/deactivate", None),
    ("viettel", "GET", "/api/v1/test-recipients", None),
    ("drafter", "POST", "/api/v1/test-recipients", {"msisdn": "0961234567", "carrier": "viettel"}),
    ("approver", "DELETE", "/api/v1/test-recipients/1", None),
    ("drafter", "GET", "/api/v1/imports/1/rejects.csv", None),
]


def test_wrong_roles_get_403(client: FlaskClient, people: People) -> None:
    create_alert(client, people)
    for who, method, path, body in FORBIDDEN:
        response = call(client, method, path, body, headers=people.auth(who))
        assert_error(response, 403, "forbidden")


JSON_ENDPOINTS = [
    ("admin", "POST", "/api/v1/users"),
    ("admin", "PATCH", "/api/v1/users/{drafter}"),
    ("drafter", "POST", "/api/v1/tokens"),
    ("drafter", "POST", "/api/v1/preview"),
    ("drafter", "POST", "/api/v1/alerts"),
    ("drafter", "PUT", "/api/v1/alerts/{alert}"),
    ("approver", "POST", "/api/v1/alerts/{alert}/approve"),
    ("approver", "POST", "/api/v1/alerts/{alert}/reject"),
    ("drafter", "POST", "/api/v1/alerts/{alert}/derive"),
    ("admin", "POST", "/api/v1/brandnames"),
    ("admin", "POST", "/api/v1/test-recipients"),
]


def _fill(path: str, people: People, alert_id: int) -> str:
    return path.format(drafter=people.ids["drafter"], alert=alert_id)


def test_bad_json_gets_400(client: FlaskClient, people: People) -> None:
    alert_id = create_alert(client, people)["id"]
    for who, method, path in JSON_ENDPOINTS:
        url = _fill(path, people, alert_id)
        headers = {**people.auth(who), "Content-Type": "application/json"}
        response = client.open(url, method=method, data="{not json", headers=headers)
        assert_error(response, 400, "bad_json")
        response = client.open(url, method=method, json=["a", "list"], headers=people.auth(who))
        assert_error(response, 400, "bad_json")


MISSING_AND_WRONG = [
    ("admin", "POST", "/api/v1/users", {}, ["username", "password", "role"]),
    (
        "admin",
        "POST",
        "/api/v1/users",
        {"username": 5, "password": "x" * 12, "role": "king"},
        ["username", "role"],
    ),
    ("admin", "PATCH", "/api/v1/users/{drafter}", {"active": "maybe"}, ["active"]),
    ("drafter", "POST", "/api/v1/tokens", {}, ["name"]),
    ("drafter", "POST", "/api/v1/tokens", {"name": "x", "user_id": "me"}, ["user_id"]),
    ("drafter", "POST", "/api/v1/preview", {}, ["text"]),
    ("drafter", "POST", "/api/v1/preview", {"text": 1, "fold": "sometimes"}, ["text", "fold"]),
    (
        "drafter",
        "POST",
        "/api/v1/alerts",
        {"title": "x"},
        ["body", "category", "areas", "carriers", "brandname"],
    ),
    (
        "drafter",
        "POST",
        "/api/v1/alerts",
        {**ALERT, "areas": "18073", "schedule_at": "tomorrow"},
        ["areas", "schedule_at"],
    ),
    ("drafter", "POST", "/api/v1/alerts", {**ALERT, "colour": "red"}, ["colour"]),
    ("drafter", "PUT", "/api/v1/alerts/{alert}", {"title": 3}, ["title", "body"]),
    (
        "approver",
        "POST",
        "/api/v1/alerts/{alert}/approve",
        {"waive_quiet_hours": "yes please"},
        ["waive_quiet_hours"],
    ),
    ("approver", "POST", "/api/v1/alerts/{alert}/reject", {}, ["reason"]),
    ("drafter", "POST", "/api/v1/alerts/{alert}/derive", {"kind": "retract"}, ["kind"]),
    ("drafter", "GET", "/api/v1/alerts?status=lost&limit=0", None, ["status", "limit"]),
    ("admin", "POST", "/api/v1/brandnames", {}, ["name"]),
    ("admin", "POST", "/api/v1/brandnames", {"name": 7, "colour": "red"}, ["name", "colour"]),
    ("admin", "POST", "/api/v1/test-recipients", {}, ["msisdn", "carrier"]),
    (
        "admin",
        "POST",
        "/api/v1/test-recipients",
        {"msisdn": 961234567, "carrier": ["viettel"]},
        ["msisdn", "carrier"],
    ),
]


def test_missing_fields_and_wrong_types_get_422_naming_them(
    client: FlaskClient, people: People
) -> None:
    alert_id = create_alert(client, people)["id"]
    for who, method, path, body, fields in MISSING_AND_WRONG:
        url = _fill(path, people, alert_id)
        response = call(client, method, url, body, headers=people.auth(who))
        error = assert_error(response, 422, "validation_failed")
        assert set(fields) <= set(error["details"]), (path, error)


def test_business_refusals_name_the_field(client: FlaskClient, people: People) -> None:
    response = client.post(
        "/api/v1/alerts",
        json={**ALERT, "brandname": "12345", "areas": ["nowhere"], "carriers": []},
        headers=people.auth("drafter"),
    )
    error = assert_error(response, 422, "validation_failed")
    assert {"brandname", "area_codes", "carrier_codes"} <= set(error["details"])
    assert_error(client.get("/api/v1/alerts/999", headers=people.auth("drafter")), 404)


def test_preview_counts_parts_and_folds(client: FlaskClient, people: People) -> None:
    text = "Bão số 3 đổ bộ vào Hà Tĩnh đêm nay. " * 3
    body = client.post(
        "/api/v1/preview",
        json={"text": text, "areas": ["42"], "carriers": ["viettel"]},
        headers=people.auth("drafter"),
    ).get_json()
    assert body["preview"]["encoding"] == "ucs2"
    assert "đ" in body["preview"]["ucs2_chars"]
    assert body["folded"]["encoding"] == "gsm7"
    assert body["folded"]["parts"] < body["preview"]["parts"]
    assert body["folded"]["text"].startswith("Bao so 3 do bo vao Ha Tinh")
    assert body["audience_available"] is True
    assert body["audience"][0]["carrier"] == "viettel"


def test_two_person_rule_and_the_whole_flow(
    client: FlaskClient, people: People, seeded_database: Database, redis_client: Any
) -> None:
    alert = create_alert(client, people)
    assert alert["status"] == "draft" and alert["parts"] >= 1
    aid = alert["id"]
    # only the author edits and submits
    assert_error(
        client.put(f"/api/v1/alerts/{aid}", json=ALERT, headers=people.auth("drafter2")), 403
    )
    assert_error(client.post(f"/api/v1/alerts/{aid}/submit", headers=people.auth("drafter2")), 403)
    # an approver cannot approve a draft that was never submitted
    assert_error(
        client.post(
            f"/api/v1/alerts/{aid}/approve",
            json={"version": alert["version"]},
            headers=people.auth("approver"),
        ),
        409,
        "invalid_transition",
    )
    ok = client.post(f"/api/v1/alerts/{aid}/submit", headers=people.auth("drafter"))
    assert ok.get_json()["status"] == "pending_approval"
    # an approver who drafted the alert cannot approve it
    own = create_alert(client, people, who="approver")
    client.post(f"/api/v1/alerts/{own['id']}/submit", headers=people.auth("approver"))
    error = assert_error(
        client.post(
            f"/api/v1/alerts/{own['id']}/approve",
            json={"version": own["version"]},
            headers=people.auth("approver"),
        ),
        403,
    )
    assert "tự phê duyệt" in error["message"]
    assert_error(
        client.post(
            f"/api/v1/alerts/{aid}/reject", json={"reason": "  "}, headers=people.auth("approver")
        ),
        422,
    )
    approved = client.post(
        f"/api/v1/alerts/{aid}/approve",
        json={"version": alert["version"], "waive_quiet_hours": True},
        headers=people.auth("approver"),
    )
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    # the fan-out job is on the control queue, by dotted path, with the id only
    from rq import Queue

    jobs = Queue("loa-control", connection=redis_client).jobs
    assert [(j.func_name, j.args) for j in jobs] == [("workers.jobs.fan_out", (aid,))]
    assert redis_client.get(f"loa:alert:{aid}:control") == b"sending"
    progress = client.get(f"/api/v1/alerts/{aid}/progress", headers=people.auth("auditor"))
    assert progress.status_code == 200 and progress.get_json()["status"] == "approved"
    cancelled = client.post(f"/api/v1/alerts/{aid}/cancel", headers=people.auth("approver"))
    assert cancelled.get_json()["status"] == "cancelled"
    assert redis_client.get(f"loa:alert:{aid}:control") == b"cancelled"
    derived = client.post(
        f"/api/v1/alerts/{aid}/derive", json={"kind": "correction"}, headers=people.auth("drafter")
    )
    assert derived.status_code == 201
    assert derived.get_json()["references_id"] == aid
    with seeded_database.session() as s:
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(aid))))
    assert {"alert.create", "alert.submit", "alert.approve", "alert.cancel"} <= actions


def test_reports_stream_csv_and_xlsx_and_are_audited(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    aid = create_alert(client, people)["id"]
    csv_response = client.get(f"/api/v1/alerts/{aid}/report.csv", headers=people.auth("auditor"))
    assert csv_response.status_code == 200
    assert csv_response.get_data(as_text=True).startswith("\ufeffSố thuê bao,Nhà mạng,")
    with client.get(f"/api/v1/alerts/{aid}/report.xlsx", headers=people.auth("auditor")) as xlsx:
        assert xlsx.status_code == 200
        book = load_workbook(io.BytesIO(xlsx.data), read_only=True)
    rows = book.worksheets[-1].iter_rows(values_only=True)
    assert next(rows)[:3] == ("Số thuê bao", "Nhà mạng", "Mã xã/phường")
    book.close()
    cap = client.get(f"/api/v1/alerts/{aid}/cap.xml", headers=people.auth("auditor"))
    assert cap.status_code == 200 and b"urn:oasis:names:tc:emergency:cap:1.2" in cap.data
    assert_error(client.get("/api/v1/alerts/999/cap.xml", headers=people.auth("auditor")), 404)
    with seeded_database.session() as s:
        exports = s.scalars(select(AuditEntry).where(AuditEntry.action == "alert.export")).all()
    assert [e.after["format"] for e in exports] == ["csv", "xlsx"]


def test_users_and_tokens_admin(client: FlaskClient, people: People) -> None:
    created = client.post(
        "/api/v1/users",
        json={
            "username": "vina1",
            "password": "long-enough-pw",
            "role": "carrier",
            "carrier": "vinaphone",
        },
        headers=people.auth("admin"),
    )
    assert created.status_code == 201 and created.get_json()["carrier"] == "vinaphone"
    dup = client.post(
        "/api/v1/users",
        json={"username": "vina1", "password": "long-enough-pw", "role": "drafter"},
        headers=people.auth("admin"),
    )
    assert "username" in assert_error(dup, 422)["details"]
    uid = created.get_json()["id"]
    # an admin manages users, never their credentials
    refused = client.post(
        "/api/v1/tokens", json={"name": "upload", "user_id": uid}, headers=people.auth("admin")
    )
    assert_error(refused, 403, "forbidden")
    # the user makes their own, in a session opened with their password
    login(client, "vina1", "long-enough-pw")
    token = client.post(
        "/api/v1/tokens",
        json={"name": "upload"},
        headers={"X-CSRFToken": page_csrf(client, "/account/tokens")},
    ).get_json()
    assert token["token"].startswith("loa_") and token["user"] == "vina1"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert me.get_json()["carrier"] == "vinaphone"
    off = client.patch(f"/api/v1/users/{uid}", json={"active": False}, headers=people.auth("admin"))
    assert off.get_json()["active"] is False
    assert_error(
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {token['token']}"}), 401
    )
    assert_error(client.patch("/api/v1/users/9999", json={}, headers=people.auth("admin")), 404)
    # someone else's token is invisible
    assert_error(
        client.delete(f"/api/v1/tokens/{token['id']}", headers=people.auth("drafter")), 404
    )


def test_carrier_sees_only_its_own_carrier(client: FlaskClient, people: People) -> None:
    rows = client.get("/api/v1/carriers", headers=people.auth("viettel")).get_json()
    assert [r["code"] for r in rows] == ["viettel"]


def test_cookie_session_writes_need_the_csrf_header(client: FlaskClient, people: People) -> None:

    login(client, "drafter")
    refused = client.post("/api/v1/preview", json={"text": "x"})
    assert_error(refused, 400, "csrf_failed")
    token = page_csrf(client)
    ok = client.post("/api/v1/preview", json={"text": "x"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/nowhere", "/api/v1/alerts/abc"])
def test_unknown_api_paths_answer_json(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404)
