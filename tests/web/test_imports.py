"""Carrier uploads through the API and the console: reports, refusals, isolation, coverage."""

from __future__ import annotations

import io

from conftest import People
from flask.testing import FlaskClient
from webtools import assert_error, login, page_csrf

LIST_CSV = "so_thue_bao,ma_huyen\n0961234501,436\n0961234502,436\n84961234503,437\nabc,436\n"
COUNTS_CSV = "ma_huyen,so_luong,ngay\n436,120000,2026-01-15\n437,45000,2026-01-15\n"


def upload(
    client: FlaskClient,
    people: People,
    who: str,
    carrier: str,
    text: str,
    kind: str = "list",
    name: str = "list.csv",
    token: str | None = None,
):
    data = {"kind": kind, "file": (io.BytesIO(text.encode()), name)}
    if token:
        data["progress_token"] = token
    return client.post(
        f"/api/v1/carriers/{carrier}/imports",
        data=data,
        headers=people.auth(who),
        content_type="multipart/form-data",
    )


def test_carrier_uploads_its_list_and_reads_the_report(client: FlaskClient, people: People) -> None:
    response = upload(client, people, "viettel", "viettel", LIST_CSV, token="tok12345abc")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "succeeded" and body["report"]["accepted"] == 3
    assert sum(body["report"]["rejected"].values()) == 1
    assert "rejects_csv" not in body["report"]
    progress = client.get("/api/v1/imports/progress/tok12345abc", headers=people.auth("viettel"))
    assert progress.get_json()["state"] == "done"
    listed = client.get("/api/v1/carriers/viettel/imports", headers=people.auth("viettel"))
    assert [i["id"] for i in listed.get_json()] == [body["id"]]
    counts = upload(
        client, people, "viettel", "viettel", COUNTS_CSV, kind="counts", name="counts.csv"
    )
    assert counts.status_code == 201, counts.get_json()
    cover = client.get("/api/v1/carriers/viettel/coverage", headers=people.auth("drafter"))
    rows = {r["area_code"]: r for r in cover.get_json()}
    assert rows["436"]["accepted"] == 2 and rows["436"]["reported"] == 120000


def test_a_carrier_never_sees_another_carriers_data(client: FlaskClient, people: People) -> None:
    mine = upload(client, people, "viettel", "viettel", LIST_CSV).get_json()
    other = people.auth("mobifone")
    assert_error(client.get(f"/api/v1/imports/{mine['id']}", headers=other), 404)
    assert_error(client.get("/api/v1/carriers/viettel/imports", headers=other), 404)
    assert_error(client.get("/api/v1/carriers/viettel/coverage", headers=other), 404)
    assert_error(upload(client, people, "mobifone", "viettel", LIST_CSV), 404)
    assert_error(
        client.get("/api/v1/carriers/viettel/imports", headers=people.auth("drafter")), 403
    )
    assert_error(upload(client, people, "drafter", "viettel", LIST_CSV), 403)
    # the console says the same
    login(client, "mobifone")
    assert client.get(f"/carriers/imports/{mine['id']}").status_code == 404
    assert client.get("/carriers/viettel").status_code == 404


def test_refused_files_say_why_and_change_nothing(client: FlaskClient, people: People) -> None:
    assert_error(upload(client, people, "viettel", "viettel", LIST_CSV, kind="everything"), 422)
    missing = client.post(
        "/api/v1/carriers/viettel/imports",
        data={"kind": "list"},
        headers=people.auth("viettel"),
        content_type="multipart/form-data",
    )
    assert "file" in assert_error(missing, 422)["details"]
    bad = upload(client, people, "viettel", "viettel", "name,age\nAn,3\n")
    error = assert_error(bad, 422)
    assert error["details"]["import_id"]
    record = client.get(
        f"/api/v1/imports/{error['details']['import_id']}", headers=people.auth("viettel")
    ).get_json()
    assert record["status"] == "rejected"
    cover = client.get("/api/v1/carriers/viettel/coverage", headers=people.auth("viettel"))
    assert all(r["accepted"] == 0 for r in cover.get_json())
    assert_error(upload(client, people, "viettel", "nowhere", LIST_CSV), 404)
    assert_error(client.get("/api/v1/imports/progress/x", headers=people.auth("viettel")), 404)
    assert_error(upload(client, people, "viettel", "viettel", LIST_CSV, token="bad token!"), 422)


def test_console_upload_and_report_page(client: FlaskClient, people: People) -> None:
    login(client, "viettel")
    page = client.get("/carriers/", follow_redirects=True)
    assert "upload-form" in page.get_data(as_text=True)
    token = page_csrf(client, "/carriers/viettel")
    response = client.post(
        "/carriers/viettel/upload",
        data={
            "csrf_token": token,
            "kind": "list",
            "file": (io.BytesIO(LIST_CSV.encode()), "ds.csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "ds.csv" in text and "succeeded" in text
