"""Before sending, through HTTP on both databases: template blanks are marked and refused by
API and console alike; approving reads back what will happen and pins the version read; the
sending rules are said on the pages before they refuse, and a refusal is said once, in
Vietnamese."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from webtools import (
    People,
    add_people,
    assert_error,
    csrf_from,
    hidden_fields,
    login,
    page_csrf,
    read_back,
)

from broadcast.db import Database
from broadcast.models import Alert, Approval
from broadcast.settings import Settings
from broadcast.web import create_app
from subscriber_import import service
from tests.conftest import make_settings

ALERT = {
    "title": "Mưa lớn",
    "body": "Mưa lớn tại Hà Tĩnh đêm nay. Người dân hạn chế ra đường, tránh xa sông suối.",
    "category": "warning",
    "areas": ["18073"],
    "carriers": ["viettel", "vinaphone"],
    "brandname": "UBND HaTinh",
}


def _alerts(database: Database) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(Alert))


def _approvals(database: Database, aid: int) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(Approval).where(Approval.alert_id == aid))


def _flashes(page: str, kind: str) -> list[str]:
    found = re.findall(rf'<p class="flash {kind}" role="status">(.*?)</p>', page, re.S)
    return [html.unescape(text) for text in found]


def _text(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert match, element_id
    return " ".join(html.unescape(match.group(1)).split())


def _value(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}" value="([^"]*)"', page)
    assert match, element_id
    return html.unescape(match.group(1))


def _lists(database: Database, settings: Settings, tmp_path: Path, sizes: dict[str, int]) -> None:
    """Each carrier's list: `sizes[code]` numbers in Phường Thành Sen (18073)."""
    prefixes = {"viettel": "96", "vinaphone": "91"}
    for code, size in sizes.items():
        path = tmp_path / f"{code}.csv"
        numbers = [f"0{prefixes[code]}{n:07d}" for n in range(1, size + 1)]
        path.write_text("so_thue_bao,ma_xa\n" + "".join(f"{n},18073\n" for n in numbers))
        service.import_file(database, settings, carrier_code=code, kind="list", path=path)


def _pending(client: FlaskClient, people: People, **over: Any) -> dict[str, Any]:
    created = client.post("/api/v1/alerts", json={**ALERT, **over}, headers=people.auth("drafter"))
    assert created.status_code == 201, created.get_json()
    aid = created.get_json()["id"]
    submitted = client.post(f"/api/v1/alerts/{aid}/submit", headers=people.auth("drafter"))
    assert submitted.get_json()["status"] == "pending_approval"
    return submitted.get_json()


def test_a_template_blank_is_marked_and_refused_by_api_and_console(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    auth = people.auth("drafter")
    before = _alerts(seeded_database)
    # the API: a text still holding a marker is refused, naming the marker and the field
    refused = client.post(
        "/api/v1/alerts", json={**ALERT, "body": "Sơ tán ngay khỏi [[địa bàn]]."}, headers=auth
    )
    error = assert_error(refused, 422, "unfilled_placeholder")
    assert "[[địa bàn]]" in error["message"]
    assert any("[[địa bàn]]" in m for m in error["details"]["body"])
    # … and an edit cannot bring one in either
    made = client.post("/api/v1/alerts", json=ALERT, headers=auth).get_json()
    edited = client.put(
        f"/api/v1/alerts/{made['id']}", json={**ALERT, "title": "Lũ tại [[địa bàn]]"}, headers=auth
    )
    assert "title" in assert_error(edited, 422, "unfilled_placeholder")["details"]
    assert client.get(f"/api/v1/alerts/{made['id']}", headers=auth).get_json()["version"] == 1
    assert _alerts(seeded_database) == before + 1

    # the console: the evacuation template starts as an emergency, its blanks marked
    login(client, "drafter")
    page = client.get("/alerts/new?template=evacuate").get_data(as_text=True)
    assert '<option value="emergency" selected>' in page
    body = _text(page, "body")
    assert "Sơ tán ngay khỏi [[địa bàn]]. Đến [[nơi đến]]." in body
    assert 'id="tf-area"' in page and 'id="tf-place"' in page and 'id="tf-sender"' in page
    form = {
        "csrf_token": page_csrf(client, "/alerts/new"),
        "title": _value(page, "title"),
        "body": body,
        "category": "emergency",
        "areas": ["18073"],
        "carriers": ["viettel"],
        "brandname": "UBND HaTinh",
    }
    saved = client.post("/alerts/new", data=form)
    text = saved.get_data(as_text=True)
    assert saved.status_code == 200
    [message] = _flashes(text, "error")
    assert message.startswith("Còn ô của mẫu chưa điền: [[địa bàn]], [[đơn vị gửi]], [[nơi đến]].")
    assert "unfilled" not in message  # said in Vietnamese, once
    assert _alerts(seeded_database) == before + 1
    # with another problem besides, both are said, each once
    also = client.post("/alerts/new", data={**form, "brandname": "123"}).get_data(as_text=True)
    [message] = _flashes(also, "error")
    assert message.startswith("Còn ô của mẫu chưa điền: [[địa bàn]]")
    assert message.endswith("— Tên định danh (brandname): “123” chỉ gồm chữ số")
    assert message.count("[[địa bàn]]") == 1
    # the fields put the values in the text; then it saves
    filled = client.get(
        "/alerts/new",
        query_string={
            "template": "evacuate",
            "sender": "UBND HaTinh",
            "area": "Phường Thành Sen",
            "place": "Trường THCS Trần Phú",
        },
    ).get_data(as_text=True)
    body = _text(filled, "body")
    assert "[[" not in body and "Sơ tán ngay khỏi Phường Thành Sen. Đến Trường THCS" in body
    saved = client.post("/alerts/new", data={**form, "body": body, "title": "KHẨN CẤP: sơ tán"})
    assert saved.status_code == 302, _flashes(saved.get_data(as_text=True), "error")
    assert _alerts(seeded_database) == before + 2


def test_read_back_gives_the_totals_then_one_button_approves(
    client: FlaskClient,
    people: People,
    seeded_database: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    _lists(seeded_database, settings, tmp_path, {"viettel": 1200, "vinaphone": 5})
    alert = _pending(client, people)
    location = f"/alerts/{alert['id']}"
    login(client, "approver")
    shown = client.get(location).get_data(as_text=True)
    assert _text(shown, "audience-total") == "1.205"  # vi-VN digits, one total on every page
    # the alert page's button only reads back; nothing is approved by it
    page = read_back(client, location, waive_quiet_hours="1")
    assert _approvals(seeded_database, alert["id"]) == 0
    assert _text(page, "rb-lead") == "Cảnh báo THẬT: 1.205 người sẽ nhận."
    assert _text(page, "rb-total") == "1.205"
    rows = dict(re.findall(r'data-carrier="(\w+)">.*?data-k="audience">([^<]*)<', page, re.S))
    assert rows == {"viettel": "1.200", "vinaphone": "5"}
    parts = alert["parts"]
    assert _text(page, "rb-parts") == str(parts) and parts == 2
    assert _text(page, "rb-messages") == "2.410"
    assert _text(page, "rb-category") == "Cảnh báo · thật"
    assert _text(page, "rb-areas") == "Phường Thành Sen"
    assert _text(page, "rb-text") == ALERT["body"]
    assert _text(page, "rb-waived").startswith("giờ yên tĩnh")
    assert "giây" in _text(page, "rb-eta") or "phút" in _text(page, "rb-eta")
    assert "Xác nhận: gửi tới 1.205 người" in page
    form = hidden_fields(page, "approve-form")
    assert form["version"] == "1" and form["waive_quiet_hours"] == "1"
    assert "waive_daily_cap" not in form
    done = client.post(f"{location}/approve", data=form, follow_redirects=True)
    assert _flashes(done.get_data(as_text=True), "success") == ["Đã xong: Đã phê duyệt."]
    assert _approvals(seeded_database, alert["id"]) == 1
    after = client.get(f"/api/v1/alerts/{alert['id']}", headers=people.auth("approver"))
    assert after.get_json()["waive_quiet_hours"] is True
    assert after.get_json()["waive_daily_cap"] is False
    # a decided alert has no read-back any more
    again = client.get(f"{location}/readback?version=1", follow_redirects=True)
    assert _flashes(again.get_data(as_text=True), "error") == [
        "Cảnh báo này không còn chờ phê duyệt."
    ]


def test_a_stale_version_does_not_pass_the_read_back(
    app: Flask, people: People, seeded_database: Database
) -> None:
    client = app.test_client()  # plain clients: two identities in one test
    alert = _pending(client, people)
    aid, auth = alert["id"], people.auth("drafter")
    location = f"/alerts/{aid}"

    def rewrite(body: str) -> None:
        client.post(f"/api/v1/alerts/{aid}/withdraw", headers=auth)
        changed = client.put(f"/api/v1/alerts/{aid}", json={**ALERT, "body": body}, headers=auth)
        assert changed.status_code == 200
        client.post(f"/api/v1/alerts/{aid}/submit", headers=auth)

    login(client, "approver")
    page = client.get(location).get_data(as_text=True)
    read = hidden_fields(page, "readback-form")
    assert read == {"version": "1"}
    rewrite("Không có mưa.")  # between the alert page and the read-back
    stale = client.get(f"{location}/readback", query_string=read, follow_redirects=True)
    text = stale.get_data(as_text=True)
    [message] = _flashes(text, "error")
    assert "đã đọc phiên bản 1, nay là phiên bản 2" in message
    assert 'id="approve-form"' not in text and 'data-status="pending_approval"' in text
    # between the read-back and the final button
    page = read_back(client, location, waive_quiet_hours="1")
    assert _text(page, "rb-text") == "Không có mưa."
    rewrite("Mưa đá.")
    refused = client.post(
        f"{location}/approve", data=hidden_fields(page, "approve-form"), follow_redirects=True
    )
    [message] = _flashes(refused.get_data(as_text=True), "error")
    assert "đã đọc phiên bản 2, nay là phiên bản 3" in message
    assert _approvals(seeded_database, aid) == 0
    # a read-back without the version read sends back to the alert
    bare = client.get(f"{location}/readback", follow_redirects=True).get_data(as_text=True)
    assert _flashes(bare, "error") == ["Trang này đã cũ. Hãy đọc lại cảnh báo trước khi phê duyệt."]
    # the author cannot reach their own read-back
    author = app.test_client()
    login(author, "drafter")
    assert author.get(f"{location}/readback?version=3").status_code == 403
    assert _approvals(seeded_database, aid) == 0


def _night_app(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis, db: Database
) -> Flask:
    """An app whose quiet hours are the two hours round now, local time."""
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    window = {
        "quiet_hours_start": f"{now - timedelta(hours=1):%H:%M}",
        "quiet_hours_end": f"{now + timedelta(hours=1):%H:%M}",
    }
    night = make_settings(
        tmp_path,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        policy={**window, "daily_cap": 3},
    )
    app = create_app(night, database=db, redis_client=redis_client)
    app.testing = True
    return app


def test_quiet_hours_are_said_before_they_bite_and_a_refusal_once(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis, seeded_database: Database
) -> None:
    app = _night_app(tmp_path, settings, redis_client, seeded_database)
    people = add_people(seeded_database)
    client = app.test_client()
    # the drafter's live preview says it while the text is written
    login(client, "drafter")
    csrf = page_csrf(client, "/alerts/new")
    headers = {"X-CSRFToken": csrf}
    preview = client.post(
        "/api/v1/preview", json={"text": "Mưa", "category": "warning"}, headers=headers
    ).get_json()
    codes = [rule["code"] for rule in preview["rules"]]
    assert codes == ["quiet_hours_now", "daily_cap"]
    assert "Giờ yên tĩnh" in preview["rules"][0]["message"]
    emergency = client.post(
        "/api/v1/preview", json={"text": "Mưa", "category": "emergency"}, headers=headers
    ).get_json()
    assert [rule["code"] for rule in emergency["rules"]] == ["exempt"]

    alert = _pending(client, people)
    location = f"/alerts/{alert['id']}"
    approver = app.test_client()
    login(approver, "approver")
    shown = approver.get(location).get_data(as_text=True)
    assert 'data-rule="quiet_hours_now"' in shown and 'data-rule="daily_cap"' in shown
    # the read-back without the waiver says it would be refused and offers no final button
    page = read_back(approver, location)
    assert 'id="rb-refused"' in page and 'id="approve-form"' not in page
    # a forged approval without the waiver: refused, in Vietnamese, said once
    forged = {"csrf_token": csrf_from(shown), "version": str(alert["version"])}
    refused = approver.post(f"{location}/approve", data=forged, follow_redirects=True)
    [message] = _flashes(refused.get_data(as_text=True), "error")
    assert message.startswith("Giờ yên tĩnh ") and message.count("Giờ yên tĩnh") == 1
    assert "quiet hours" not in message and message.endswith("Chưa phê duyệt gì.")
    assert _approvals(seeded_database, alert["id"]) == 0
    # with the waiver the read-back offers the button, and it approves
    page = read_back(approver, location, waive_quiet_hours="1")
    done = approver.post(
        f"{location}/approve", data=hidden_fields(page, "approve-form"), follow_redirects=True
    )
    assert _flashes(done.get_data(as_text=True), "success") == ["Đã xong: Đã phê duyệt."]


def test_cancel_asks_first_and_is_not_the_first_button(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    alert = _pending(client, people)
    location = f"/alerts/{alert['id']}"
    login(client, "approver")
    page = client.get(location).get_data(as_text=True)
    buttons = re.findall(r'id="(do-[\w-]+)"', page)
    assert buttons[0] == "do-approve" and buttons[-1] == "do-cancel"
    # the cancel button only asks; the alert is untouched until the second page's button
    asked = client.get(f"{location}/cancel/confirm").get_data(as_text=True)
    assert "Hủy thì không thể hoàn tác" in asked
    status = client.get(f"/api/v1/alerts/{alert['id']}", headers=people.auth("approver"))
    assert status.get_json()["status"] == "pending_approval"
    done = client.post(
        f"{location}/cancel", data=hidden_fields(asked, "cancel-form"), follow_redirects=True
    )
    assert _flashes(done.get_data(as_text=True), "success") == ["Đã xong: Đã hủy."]
    # nothing left to cancel: the confirmation page sends back with a reason
    again = client.get(f"{location}/cancel/confirm", follow_redirects=True)
    assert _flashes(again.get_data(as_text=True), "error") == [
        "Bạn không thể hủy cảnh báo này lúc này."
    ]
