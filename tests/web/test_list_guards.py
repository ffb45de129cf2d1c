"""Carrier data that cannot be knocked over, through the API and the console: a list cannot
shrink by accident, a carrier learns nothing of another carrier's subscribers, the drafter is
warned of a list far below its carrier's count, and the report speaks Vietnamese."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from webtools import (
    ControlJobs,
    People,
    assert_error,
    console_upload,
    login,
    page_csrf,
    upload,
)

from broadcast.db import Database
from broadcast.models import AuditEntry

LIST_HEADER = "so_thue_bao,ma_xa\n"


def _list(count: int, prefix: str = "096", area: str = "18073") -> str:
    return LIST_HEADER + "".join(f"{prefix}{n:07d},{area}\n" for n in range(1, count + 1))


def _upload(client: FlaskClient, people: People, who: str, text: str, **form: str) -> Any:
    carrier = "mobifone" if who == "mobifone" else "viettel"
    return upload(client, people, who, carrier, text, **form)


def _in_list(client: FlaskClient, people: People) -> int:
    rows = client.get("/api/v1/carriers/viettel/coverage", headers=people.auth("admin"))
    return {r["area_code"]: r["accepted"] for r in rows.get_json()}.get("18073", 0)


def test_api_refuses_a_shrinking_list_until_allow_shrink(
    client: FlaskClient, people: People, control_jobs: ControlJobs, seeded_database: Database
) -> None:
    first = _upload(client, people, "viettel", _list(50))
    assert first.status_code == 201, first.get_json()
    before = client.get("/api/v1/carriers/viettel/imports", headers=people.auth("viettel"))

    error = assert_error(_upload(client, people, "viettel", _list(3)), 422, "list_shrinks")
    assert (error["details"]["current"], error["details"]["new"]) == (50, 3)
    assert "from 50 to 3 numbers" in error["message"]
    assert _in_list(client, people) == 50  # nothing changed
    after = client.get("/api/v1/carriers/viettel/imports", headers=people.auth("viettel"))
    assert [i["status"] for i in after.get_json()] == ["rejected"] + [
        i["status"] for i in before.get_json()
    ]
    assert_error(_upload(client, people, "viettel", _list(3), allow_shrink="maybe"), 422)

    confirmed = _upload(client, people, "viettel", _list(3), allow_shrink="true")
    assert confirmed.status_code == 201, confirmed.get_json()
    report = confirmed.get_json()["report"]
    assert report["shrink_confirmed"] is True and report["replaced_count"] == 50
    assert _in_list(client, people) == 3
    with seeded_database.session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.list").order_by(AuditEntry.id)
        ).all()[-1]
    assert entry.actor == f"user:{people.ids['viettel']}"
    assert entry.after["shrink_confirmed"] is True and entry.after["replaced_count"] == 50


def test_a_carrier_sees_only_a_count_of_numbers_also_on_another_list(
    client: FlaskClient, people: People, control_jobs: ControlJobs, seeded_database: Database
) -> None:
    # viettel's list holds numbers in MobiFone's range (ported to viettel), and mobifone's
    # stale list holds two of them: mobifone must not learn that viettel has them
    assert _upload(client, people, "viettel", _list(5, prefix="090")).status_code == 201
    theirs = LIST_HEADER + "0900000001,18073\n0900000002,18073\n0901234567,18073\n"
    uploaded = _upload(client, people, "mobifone", theirs)
    assert uploaded.status_code == 201, uploaded.get_json()
    body = uploaded.get_json()
    assert body["report"]["conflicts"] == 2
    assert "conflicts_by_carrier" not in body["report"]
    assert "viettel" not in uploaded.get_data(as_text=True)
    again = client.get(f"/api/v1/imports/{body['id']}", headers=people.auth("mobifone"))
    assert "viettel" not in again.get_data(as_text=True)
    # the admin and the audit see who else holds them
    admin = client.get(f"/api/v1/imports/{body['id']}", headers=people.auth("admin")).get_json()
    assert admin["report"]["conflicts_by_carrier"] == {"viettel": 2}
    with seeded_database.session() as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "import.list", AuditEntry.object_id == str(body["id"])
            )
        ).one()
    assert entry.after["conflicts_by_carrier"] == {"viettel": 2}
    # the console says the same
    login(client, "mobifone")
    page = client.get(f"/carriers/imports/{body['id']}").get_data(as_text=True)
    assert "viettel" not in page.lower() and 'id="conflicts-by-carrier"' not in page
    assert "Có trong danh sách nhà mạng khác" in page
    login(client, "admin")
    page = client.get(f"/carriers/imports/{body['id']}").get_data(as_text=True)
    assert 'id="conflicts-by-carrier"' in page and "<td>Viettel</td>" in page  # by name


RAW_KEYS = (
    "rows", "accepted", "converted", "duplicates", "conflicts", "possible_ported", "version",
    "seconds", "empty", "invalid", "not_mobile", "landline", "too_short", "too_long",
    "unknown_area", "succeeded", "list",
)  # fmt: skip


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style|head)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_the_import_report_speaks_vietnamese_with_vi_numbers(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    rows = (
        _list(1234) + "02393855555,18073\n0961111111,Nowhere\nabc,18073\n0912,18073\n0961111112,\n"
    )
    login(client, "viettel")
    response = console_upload(
        client, "viettel", rows, name="ds.csv", headers={"Accept": "application/json"}
    )
    assert response.status_code == 202
    import_id = _wait_for_import(client, people)  # the first import of this test
    text = _visible_text(client.get(f"/carriers/imports/{import_id}").get_data(as_text=True))
    words = set(re.findall(r"[a-z_]+", text))
    assert not words & set(RAW_KEYS), words & set(RAW_KEYS)
    for label in (
        "Số dòng trong tệp",
        "Số cố định",
        "Giữ lại, không rõ địa bàn: nhãn không nhận ra",
        "Đã nhập",
    ):
        assert label in text
    assert (
        "1.239" in text and "1.236" in text
    )  # rows, accepted (unknown label kept): vi-VN grouping
    carrier_page = _visible_text(client.get("/carriers/viettel").get_data(as_text=True))
    assert "1.236" in carrier_page and "Danh sách thuê bao" in carrier_page


def _wait_for_import(client: FlaskClient, people: People, after: int = 0) -> int:
    """The id of viettel's newest import once it has ended (newer than `after`)."""
    import time

    end = time.monotonic() + 30
    while time.monotonic() < end:
        rows = client.get("/api/v1/carriers/viettel/imports", headers=people.auth("viettel"))
        latest = rows.get_json()[0] if rows.get_json() else None
        if latest is not None and latest["id"] > after and latest["status"] != "running":
            return latest["id"]
        time.sleep(0.1)
    raise AssertionError("the import did not finish in 30 s")


def _console_report(client: FlaskClient, posted: Any) -> int:
    """Follow a console upload as the browser does: its progress page until it hands over to
    the import report (only once the job has finished, the upload held included)."""
    import time

    assert posted.status_code == 302, posted.status_code
    location, end = posted.headers["Location"], time.monotonic() + 30
    while time.monotonic() < end:
        page = client.get(location)
        target = page.headers.get("Location", "") if page.status_code == 302 else ""
        if "/carriers/imports/" in target:
            return int(target.rstrip("/").rsplit("/", 1)[1])
        time.sleep(0.1)
    raise AssertionError("the upload did not finish in 30 s")


def _two_communes_and_counts(client: FlaskClient, people: People, in_18100: int) -> None:
    """viettel's list: 40 numbers in 18073 and `in_18100` in 18100, which it reports as
    99,935 and 80 subscribers."""
    both = _list(40) + _list(in_18100, prefix="097", area="18100").removeprefix(LIST_HEADER)
    assert _upload(client, people, "viettel", both).status_code == 201
    counts = "ma_xa,so_luong,ngay\n18073,99935,2026-01-15\n18100,80,2026-01-15\n"
    posted = upload(client, people, "viettel", "viettel", counts, kind="counts", name="counts.csv")
    assert posted.status_code == 201, posted.get_json()


def test_preview_warns_of_a_list_far_below_the_reported_count(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    _two_communes_and_counts(client, people, 40)

    def preview(areas: list[str]) -> dict:  # type: ignore[type-arg]
        response = client.post(
            "/api/v1/preview",
            json={"text": "Bão", "areas": areas, "carriers": ["viettel", "mobifone"]},
            headers=people.auth("drafter"),
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    warned = preview(["18073"])["warnings"]
    assert [(w["carrier"], w["audience"], w["reported"]) for w in warned] == [
        ("viettel", 40, 99935)
    ]
    assert "Viettel" in warned[0]["message"] and "99.935" in warned[0]["message"]
    assert "40" in warned[0]["message"]
    assert preview(["18100"])["warnings"] == []  # 40 of 80 is half: not "far fewer"


def test_a_stale_confirmation_changes_nothing_and_cannot_be_replayed(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    first = _upload(client, people, "viettel", _list(50)).get_json()["id"]
    login(client, "viettel")
    posted = console_upload(client, "viettel", _list(3), name="short.csv")
    refused = _console_report(client, posted)
    assert refused > first
    page = client.get(f"/carriers/imports/{refused}").get_data(as_text=True)
    assert 'id="shrink-confirm"' in page and "từ 50 xuống 3 số" in page
    # another carrier, and a role that may not upload, cannot confirm it
    for who, page_path, status in (
        ("mobifone", "/carriers/mobifone", 404),
        ("drafter", "/alerts/", 403),
    ):
        login(client, who)
        token = page_csrf(client, page_path)
        url = f"/carriers/imports/{refused}/confirm-shrink"
        assert client.post(url, data={"csrf_token": token}).status_code == status
    # meanwhile another upload replaces the list the confirmation was about
    assert _upload(client, people, "viettel", _list(45, prefix="097")).status_code == 201
    login(client, "viettel")
    csrf = page_csrf(client, f"/carriers/imports/{refused}")
    confirmed = client.post(
        f"/carriers/imports/{refused}/confirm-shrink", data={"csrf_token": csrf}
    )
    assert confirmed.status_code == 302 and "/uploads/" in confirmed.headers["Location"]
    stale = _wait_for_import(client, people, after=refused + 1)  # after the API's upload
    page = client.get(f"/carriers/imports/{stale}").get_data(as_text=True)
    assert 'data-status="rejected"' in page and "Danh sách của nhà mạng đã thay đổi" in page
    assert _in_list(client, people) == 45  # nothing changed
    # the held file was taken by the first confirmation: a replay is told so
    again = client.post(
        f"/carriers/imports/{refused}/confirm-shrink",
        data={"csrf_token": csrf},
        follow_redirects=True,
    )
    assert "đã được xác nhận" in again.get_data(as_text=True)
    assert _in_list(client, people) == 45


def test_coverage_is_the_area_tree_with_totals_and_flags(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    _two_communes_and_counts(client, people, 60)
    rows = client.get("/api/v1/carriers/viettel/coverage", headers=people.auth("drafter"))
    table = [
        (r["area_code"], r["accepted"], r["reported"], r["short_of_reported"])
        for r in rows.get_json()
    ]
    assert table == [
        ("42", 100, 100015, True),  # the province: totals of its districts
        ("18073", 40, 99935, True),
        ("18100", 60, 80, False),
    ]
    login(client, "viettel")
    page = client.get("/carriers/viettel").get_data(as_text=True)
    flagged = re.findall(r'<tr[^>]* data-area="(\d+)"[^>]* class="short">', page)
    assert flagged == ["42", "18073"]
    assert "100.015" in page and "99.935" in page and "Thấp hơn nhiều so với báo cáo" in page
