"""Hostile values through HTTP: each gets a clear 4xx naming what was refused, never a 5xx, and
nothing is written. Every test runs on SQLite and PostgreSQL (the `app` fixture's database)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from webtools import ControlJobs, People, assert_error, login, page_csrf, upload
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from broadcast import alerts as core
from broadcast.alerts import AlertDraft
from broadcast.db import Database
from broadcast.models import Alert, AlertCategory, Approval, AuditEntry, Brandname, User

BRAND = "UBND HT"
LIST_CSV = "so_thue_bao,ma_xa\n0961234501,18073\n0961234502,18073\n"
COUNTS_CSV = "ma_xa,so_luong,ngay\n18073,120000,2026-01-15\n"


def draft_body(**changes: Any) -> dict[str, Any]:
    body = {
        "title": "Bão số 3 đổ bộ",
        "body": "Bão số 3 đổ bộ Hà Tĩnh đêm nay; người dân ở trong nhà.",
        "category": "warning",
        "areas": ["42"],
        "carriers": ["viettel"],
        "brandname": BRAND,
    }
    body.update(changes)
    return body


@pytest.fixture
def brand(seeded_database: Database) -> None:
    with seeded_database.session() as session:
        session.add(Brandname(name=BRAND, active=True))


def count(database: Database, model: Any) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def post_alert(client: FlaskClient, people: People, body: Any, who: str = "drafter") -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        "/api/v1/alerts",
        data=raw,
        content_type="application/json",
        headers=people.auth(who),
    )


# -- ids and page numbers ------------------------------------------------------------------


OUT_OF_RANGE = [
    "/api/v1/alerts/9223372036854775808",
    "/api/v1/alerts/9223372036854775807",
    "/api/v1/alerts/2147483648",
    "/api/v1/alerts/0",
    "/api/v1/alerts/" + "9" * 5000,
    "/api/v1/imports/18446744073709551616",
    "/api/v1/alerts/9223372036854775808/cap.xml",
]


def test_ids_out_of_range_are_not_found(
    client: FlaskClient, people: People, subtests: pytest.Subtests
) -> None:
    # One application and database for every path (a read changes nothing); each path is
    # reported on its own.
    for path in OUT_OF_RANGE:
        with subtests.test(path=path[:60]):
            assert_error(client.get(path, headers=people.auth("admin")), 404, "not_found")


def test_ids_out_of_range_in_writes_and_bodies(client: FlaskClient, people: People) -> None:
    admin = people.auth("admin")
    assert_error(
        client.patch("/api/v1/users/9223372036854775808", json={"active": False}, headers=admin),
        404,
    )
    refused = client.post(
        "/api/v1/tokens", json={"name": "x", "user_id": 9223372036854775808}, headers=admin
    )
    assert "user_id" in assert_error(refused, 422)["details"]


def test_console_ids_and_audit_pages_out_of_range(client: FlaskClient, people: People) -> None:
    login(client, "admin")
    assert client.get("/alerts/9223372036854775808").status_code == 404
    assert client.get("/admin/audit?page=9223372036854775808").status_code == 404
    assert client.get("/admin/audit?page=92233720368547758").status_code == 404
    assert client.get("/admin/audit?page=-3").status_code == 200  # not a page number: page 1
    assert client.get("/admin/audit?page=2").status_code == 200


# -- text that is not text ------------------------------------------------------------------


def test_lone_surrogate_in_json_is_refused(
    client: FlaskClient, people: People, brand: None, seeded_database: Database
) -> None:
    raw = json.dumps(draft_body(title="Bão \ud800"), ensure_ascii=True)
    assert "\\ud800" in raw
    error = assert_error(post_alert(client, people, raw), 400, "bad_json")
    assert "title" in error["details"]
    nested = json.dumps(draft_body(areas=["42", "\udfff"]), ensure_ascii=True)
    assert "areas.1" in assert_error(post_alert(client, people, nested), 400)["details"]
    assert count(seeded_database, Alert) == 0


def test_nesting_deeper_than_the_parser_is_a_400(client: FlaskClient, people: People) -> None:
    assert_error(post_alert(client, people, "[" * 100_000 + "]" * 100_000), 400, "bad_json")


REFUSED_DRAFT_FIELDS: list[tuple[dict[str, Any], str, str]] = [
    ({"title": "\u200b\u200c\u200d\u2060\ufeff"}, "title", "invisible"),
    ({"title": "   "}, "title", "required"),
    ({"body": "\u3164\u2800 \u200b"}, "body", "invisible"),
    ({"title": "Cảnh báo \u202elũ quét"}, "title", "U+202E"),
    ({"body": "Sơ tán ngay \u2066khỏi vùng trũng\u2069"}, "body", "U+2066"),
    ({"body": "Đi \u200fngay"}, "body", "U+200F"),
    ({"body": "Đi \u061cngay"}, "body", "U+061C"),
    ({"instruction": "Ở \u202bnhà"}, "instruction", "U+202B"),
    ({"title": "Bão\x00"}, "title", "U+0000"),
    ({"title": "Bão\nlũ"}, "title", "U+000A"),
    ({"title": "B" * 201}, "title", "at most 200"),
    ({"event": "E" * 201}, "event", "at most 200"),
    ({"instruction": "I" * 2001}, "instruction", "at most 2000"),
    ({"web": "https://x.vn/" + "a" * 500}, "web", "at most 500"),
    ({"areas": ["4" * 33]}, "areas", "at most 32"),
    ({"schedule_at": "0001-01-01T00:00:00+05:00"}, "schedule_at", "2000"),
    ({"schedule_at": "9999-12-31T23:59:59-05:00"}, "schedule_at", "2999"),
    ({"expires_at": "9999-12-31T23:59:59+14:00"}, "expires_at", "2999"),
    ({"expires_at": "0001-01-01T00:00:00-12:00"}, "expires_at", "2000"),
]


def test_refused_draft_fields_name_the_field_and_store_nothing(
    client: FlaskClient, people: People, brand: None, seeded_database: Database,
    subtests: pytest.Subtests,
) -> None:  # fmt: skip
    # One application and database for every case: each refusal is checked to store nothing
    # before the next is sent, and each case is reported on its own.
    for changes, field, words in REFUSED_DRAFT_FIELDS:
        with subtests.test(field=field, words=words):
            error = assert_error(post_alert(client, people, draft_body(**changes)), 422)
            assert field in error["details"], error
            assert words in json.dumps(error["details"][field], ensure_ascii=False), error
            assert count(seeded_database, Alert) == 0


def test_vietnamese_text_at_the_limits_is_accepted(
    client: FlaskClient, people: People, brand: None
) -> None:
    body = draft_body(
        title=("Cảnh báo lũ quét " * 20)[:200],
        instruction="Người dân vùng trũng sơ tán; mang theo giấy tờ.\n" * 40,
        schedule_at="2999-12-31T23:00:00+00:00",
    )
    body["instruction"] = body["instruction"][:2000]
    response = post_alert(client, people, body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["title"] == body["title"]


def test_console_refuses_bidi_and_invisible_titles(
    client: FlaskClient, people: People, brand: None, seeded_database: Database
) -> None:
    login(client, "drafter")
    token = page_csrf(client, "/alerts/new")
    for title in ("\u200b\u2060", "Lũ \u202equét"):
        page = client.post(
            "/alerts/new",
            data={
                "csrf_token": token,
                "title": title,
                "body": "Sơ tán ngay.",
                "category": "warning",
                "areas": "42",
                "carriers": "viettel",
                "brandname": BRAND,
                "schedule_at": "9999-12-31T23:59",
            },
        ).get_data(as_text=True)
        assert "title" in page and "schedule_at" in page
    assert count(seeded_database, Alert) == 0


def test_a_long_reject_reason_is_refused_through_the_api_and_the_console(
    client: FlaskClient, people: People, brand: None, seeded_database: Database
) -> None:
    with seeded_database.session() as session:
        drafter = session.get(User, people.ids["drafter"])
        alert = core.create_draft(
            session,
            AlertDraft(
                title="Bão",
                body="Bão số 3.",
                category=AlertCategory.WARNING,
                area_codes=("42",),
                carrier_codes=("viettel",),
                brandname=BRAND,
            ),
            user=drafter,
        )
        core.submit_for_approval(session, alert.id, user=drafter)
        alert_id = alert.id
    url = f"/api/v1/alerts/{alert_id}/reject"
    error = assert_error(
        client.post(url, json={"reason": "x" * 1001}, headers=people.auth("approver")), 422
    )
    assert "at most 1000" in str(error["details"]["reason"])
    login(client, "approver")
    token = page_csrf(client, f"/alerts/{alert_id}")
    client.post(f"/alerts/{alert_id}/reject", data={"csrf_token": token, "reason": "r" * 1001})
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Approval)) == 0
        assert session.get(Alert, alert_id).status == "pending_approval"


def test_account_texts_have_limits(client: FlaskClient, people: People) -> None:
    admin = people.auth("admin")
    uid = people.ids["drafter"]
    long_name = client.patch(
        f"/api/v1/users/{uid}", json={"display_name": "D" * 201}, headers=admin
    )
    assert "display_name" in assert_error(long_name, 422)["details"]
    huge_password = client.patch(
        f"/api/v1/users/{uid}", json={"password": "p" * 257}, headers=admin
    )
    assert "password" in assert_error(huge_password, 422)["details"]
    nul = client.post(
        "/api/v1/users",
        json={"username": "a\x00b", "password": "correct-horse-9", "role": "drafter"},
        headers=admin,
    )
    assert "username" in assert_error(nul, 422)["details"]
    assert client.get("/api/v1/me", headers=people.auth("drafter")).get_json()["display_name"] == (
        "Drafter"
    )


# -- sizes ---------------------------------------------------------------------------------


def test_json_bodies_over_the_cap_are_413_and_store_nothing(
    client: FlaskClient, people: People, brand: None, seeded_database: Database
) -> None:
    before = count(seeded_database, AuditEntry)
    error = assert_error(
        post_alert(client, people, draft_body(instruction="x" * (5 * 1024 * 1024))), 413
    )
    assert error["code"] == "too_large"
    assert count(seeded_database, Alert) == 0
    assert count(seeded_database, AuditEntry) == before


def test_uploads_still_take_files_larger_than_the_json_cap(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    rows = "".join(f"09612{n:05d},18073\n" for n in range(100_000))  # about 1.6 MB
    big = "so_thue_bao,ma_xa\n" + rows
    assert len(big) > 1024 * 1024
    # an encoded body: the test client's own multipart builder leaves a temporary file open
    boundary, body = encode_multipart(
        MultiDict({"kind": "list", "file": FileStorage(io.BytesIO(big.encode()), "big.csv")})
    )
    response = client.post(
        "/api/v1/carriers/viettel/imports?wait=10",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=people.auth("viettel"),
    )
    assert response.status_code in (201, 202), response.get_json()


def test_a_counts_date_outside_what_pandas_holds_is_no_5xx(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    bad = "ma_xa,so_luong,ngay\n18073,120000,0001-01-01\n18100,45000,9999-12-31\n"
    response = upload(client, people, "viettel", "viettel", bad, kind="counts", wait=10)
    assert response.status_code < 500, response.get_json()
    good = upload(client, people, "viettel", "viettel", COUNTS_CSV, kind="counts", wait=10)
    assert good.status_code == 201, good.get_json()


# -- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["/alerts/\r\nSet-Cookie: x=1", "/\nLocation: //evil", "/\\evil.example"]
)
def test_login_never_redirects_to_a_forged_location(
    client: FlaskClient, people: People, target: str
) -> None:
    client.get("/login")
    token = page_csrf(client, "/login")
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "drafter", "password": "correct-horse-battery", "csrf_token": token},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "\r" not in location and "\n" not in location and "evil" not in location
    assert "Set-Cookie" not in location


# -- progress tokens -----------------------------------------------------------------------


def test_a_progress_token_belongs_to_one_upload(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    first = upload(client, people, "viettel", "viettel", LIST_CSV, token="sharedtoken1", wait=0)
    assert first.status_code == 202
    # another carrier sends the same token: refused, viettel's progress untouched and hidden
    stolen = upload(client, people, "mobifone", "mobifone", LIST_CSV, token="sharedtoken1", wait=0)
    assert assert_error(stolen, 409, "progress_token_taken")["details"]["progress_token"]
    mine = client.get("/api/v1/imports/progress/sharedtoken1", headers=people.auth("viettel"))
    assert mine.get_json()["carrier"] == "viettel" and mine.get_json()["state"] == "queued"
    theirs = client.get("/api/v1/imports/progress/sharedtoken1", headers=people.auth("mobifone"))
    assert_error(theirs, 404)
    # the same carrier cannot reuse it either: one token, one upload
    again = upload(client, people, "viettel", "viettel", LIST_CSV, token="sharedtoken1", wait=0)
    assert_error(again, 409)
    # the console says so too
    login(client, "mobifone")
    token = page_csrf(client, "/carriers/mobifone")
    page = client.post(
        "/carriers/mobifone/upload",
        data={
            "csrf_token": token,
            "kind": "list",
            "progress_token": "sharedtoken1",
            "file": (io.BytesIO(LIST_CSV.encode()), "l.csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Mã theo dõi tiến trình này đã được dùng" in page.get_data(as_text=True)


def test_upload_names_are_bounded(client: FlaskClient, people: People) -> None:
    long = upload(client, people, "viettel", "viettel", LIST_CSV, name="l" * 252 + ".csv", wait=0)
    assert "file" in assert_error(long, 422)["details"]


# -- an unexpected error still answers the error body -----------------------------------------


def test_an_unexpected_error_in_the_api_answers_the_json_error_body(app: Flask) -> None:
    app.config["PROPAGATE_UNEXPECTED"] = False

    @app.get("/api/v1/_test_breaks")
    def breaks() -> Any:
        raise RuntimeError("a bug")

    with app.test_client() as client:
        error = assert_error(client.get("/api/v1/_test_breaks"), 500, "internal_error")
    assert "a bug" not in error["message"]
