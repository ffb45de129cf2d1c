"""The public CAP feed (/cap/feed.atom) and its documents (/cap/<identifier>.xml): only actual
alerts that went on the air, newest first, every document valid against the OASIS CAP 1.2
schema (tests/schemas/CAP-v1.2.xsd, as OASIS publishes it), cacheable, no login, on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import xmlschema
from flask.testing import FlaskClient
from webtools import ControlJobs, People

from broadcast.cap import ATOM_NS, CAP_NS
from tests.delivery.helpers import wait_for

CAP_SCHEMA = xmlschema.XMLSchema(Path(__file__).parents[1] / "schemas" / "CAP-v1.2.xsd")
A = {"atom": ATOM_NS}
C = {"cap": CAP_NS}


def _draft(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Bão số 3",
        "body": "Bão số 3 đổ bộ vào Hà Tĩnh đêm nay. Gọi 0912345678 nếu cần giúp.",
        "category": "warning",
        "areas": ["18073", "18100"],
        "carriers": ["viettel"],
        "brandname": "UBND HaTinh",
        "event": "Storm",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Likely",
        "instruction": "Ở trong nhà.",
        **overrides,
    }


def _create(client: FlaskClient, people: People, **overrides: Any) -> dict[str, Any]:
    created = client.post(
        "/api/v1/alerts", json=_draft(**overrides), headers=people.auth("drafter")
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def _submit(client: FlaskClient, people: People, aid: int) -> dict[str, Any]:
    submitted = client.post(f"/api/v1/alerts/{aid}/submit", headers=people.auth("drafter"))
    assert submitted.status_code == 200, submitted.get_json()
    return submitted.get_json()


def _approve(client: FlaskClient, people: People, aid: int, version: int) -> dict[str, Any]:
    approved = client.post(
        f"/api/v1/alerts/{aid}/approve",
        json={"version": version, "waive_quiet_hours": True},
        headers=people.auth("approver"),
    )
    assert approved.status_code == 200, approved.get_json()
    return approved.get_json()


def _sent(client: FlaskClient, people: People, **overrides: Any) -> dict[str, Any]:
    """An alert approved, then on the air: the control worker's fan-out starts it."""
    alert = _create(client, people, **overrides)
    _approve(client, people, alert["id"], _submit(client, people, alert["id"])["version"])

    def started() -> bool:
        got = client.get(f"/api/v1/alerts/{alert['id']}", headers=people.auth("auditor"))
        return got.get_json()["started_at"] is not None

    assert wait_for(started), "the fan-out never started the alert"
    return alert


def _feed(client: FlaskClient) -> ET.Element:
    response = client.get("/cap/feed.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    return ET.fromstring(response.data)  # noqa: S314 (Loa's own output, parsed to check it)


def _atom_problems(feed: ET.Element) -> list[str]:
    """RFC 4287's required elements: feed id, title, updated, author (or every entry's);
    each entry id, title, updated, and here a link to its CAP document."""
    problems = [
        f"feed lacks {name}"
        for name in ("id", "title", "updated")
        if not (feed.findtext(f"atom:{name}", namespaces=A) or "").strip()
    ]
    feed_author = feed.find("atom:author/atom:name", A) is not None
    for i, entry in enumerate(feed.findall("atom:entry", A)):
        for name in ("id", "title", "updated"):
            if not (entry.findtext(f"atom:{name}", namespaces=A) or "").strip():
                problems.append(f"entry {i} lacks {name}")
        if not feed_author and entry.find("atom:author/atom:name", A) is None:
            problems.append(f"entry {i} lacks an author")
        links = [
            link
            for link in entry.findall("atom:link", A)
            if link.get("type") == "application/cap+xml" and link.get("href")
        ]
        if not links:
            problems.append(f"entry {i} has no CAP link")
    for name in ("updated",):
        for element in feed.iter(f"{{{ATOM_NS}}}{name}"):
            datetime.fromisoformat(element.text or "")  # RFC 3339: raises when it is not
    return problems


def _links(feed: ET.Element) -> list[str]:
    return [
        link.get("href") or ""
        for entry in feed.findall("atom:entry", A)
        for link in entry.findall("atom:link", A)
        if link.get("type") == "application/cap+xml"
    ]


def test_the_feed_lists_actual_alerts_on_the_air_newest_first_with_valid_cap_documents(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    first = _sent(client, people, title="Bão số 3 — tin đầu")
    second = _sent(client, people, title="Lũ quét ở Sơn Kim", category="emergency")
    # Never published: a test alert, a draft, one awaiting approval, one rejected back to draft,
    # and one approved for later but cancelled before it went out.
    _sent(client, people, title="Thử hệ thống", category="test")
    drill = _sent(client, people, title="Diễn tập sơ tán", category="exercise")
    _create(client, people, title="Bản nháp")
    pending = _create(client, people, title="Chờ duyệt")
    _submit(client, people, pending["id"])
    rejected = _create(client, people, title="Bị trả lại")
    client.post(
        f"/api/v1/alerts/{rejected['id']}/reject",
        json={"reason": "sai địa bàn"},
        headers=people.auth("approver"),
    )
    later = _create(
        client,
        people,
        title="Hẹn giờ rồi huỷ",
        schedule_at=(datetime.now(UTC) + timedelta(hours=2)).isoformat(),
    )
    scheduled = _approve(
        client, people, later["id"], _submit(client, people, later["id"])["version"]
    )
    assert scheduled["status"] == "scheduled"
    cancelled = client.post(f"/api/v1/alerts/{later['id']}/cancel", headers=people.auth("approver"))
    assert cancelled.status_code == 200

    feed = _feed(client)  # no login, no token
    assert _atom_problems(feed) == []
    titles = [e.findtext("atom:title", namespaces=A) for e in feed.findall("atom:entry", A)]
    assert titles == ["Lũ quét ở Sơn Kim", "Bão số 3 — tin đầu"]

    links = _links(feed)
    assert [urlsplit(u).path for u in links] == [
        f"/cap/{second['identifier']}.xml",
        f"/cap/{first['identifier']}.xml",
    ]
    for url in links:
        response = client.get(urlsplit(url).path)
        assert response.status_code == 200
        assert response.mimetype == "application/cap+xml"
        CAP_SCHEMA.validate(response.data.decode())  # raises naming the first violation
        document = ET.fromstring(response.data)  # noqa: S314
        assert document.findtext("cap:status", namespaces=C) == "Actual"
        assert document.findtext("cap:scope", namespaces=C) == "Public"
        assert urlsplit(url).path == f"/cap/{document.findtext('cap:identifier', namespaces=C)}.xml"

    # A drill is never in the feed, but its CAP document (for staff) says Exercise, validly.
    assert client.get(f"/cap/{drill['identifier']}.xml").status_code == 404
    staff = client.get(f"/api/v1/alerts/{drill['id']}/cap.xml", headers=people.auth("auditor"))
    CAP_SCHEMA.validate(staff.data.decode())
    assert ET.fromstring(staff.data).findtext("cap:status", namespaces=C) == "Exercise"  # noqa: S314

    # Nothing internal: no alert ids in URLs, no user ids, no subscriber numbers.
    body = client.get("/cap/feed.atom").get_data(as_text=True)
    assert "/api/v1/" not in body and "created_by" not in body
    assert not re.search(r"/alerts/\d+", body)


def test_unpublished_or_unknown_identifiers_are_not_found(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    test_alert = _sent(client, people, category="test")
    draft = _create(client, people)
    for identifier in (test_alert["identifier"], draft["identifier"], "loa-nothing", "x" * 300):
        assert client.get(f"/cap/{identifier}.xml").status_code == 404
    # The same documents stay readable to staff through the API.
    staff = client.get(f"/api/v1/alerts/{draft['id']}/cap.xml", headers=people.auth("auditor"))
    assert staff.status_code == 200
    CAP_SCHEMA.validate(staff.data.decode())


def test_pollers_get_a_304_until_the_feed_changes(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    empty = client.get("/cap/feed.atom")
    assert empty.status_code == 200
    assert _atom_problems(ET.fromstring(empty.data)) == []  # noqa: S314
    alert = _sent(client, people)
    first = client.get("/cap/feed.atom")
    assert first.headers["ETag"] and first.headers["Last-Modified"]
    assert "max-age=60" in first.headers["Cache-Control"]
    assert "public" in first.headers["Cache-Control"]
    assert first.headers["ETag"] != empty.headers.get("ETag")
    again = client.get("/cap/feed.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    since = client.get(
        "/cap/feed.atom", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert since.status_code == 304

    _sent(client, people, title="Tin mới")
    changed = client.get("/cap/feed.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200

    path = f"/cap/{alert['identifier']}.xml"
    doc = client.get(path)
    assert client.get(path, headers={"If-None-Match": doc.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("days_ago", [31])
def test_the_feed_is_bounded_to_recent_alerts(
    client: FlaskClient, people: People, control_jobs: ControlJobs, app: Any, days_ago: int
) -> None:
    from sqlalchemy import update

    from broadcast.models import Alert

    old = _sent(client, people, title="Tin cũ")
    new = _sent(client, people, title="Tin gần đây")
    with app.extensions["loa"].database.session() as session:
        session.execute(
            update(Alert)
            .where(Alert.id == old["id"])
            .values(approved_at=datetime.now(UTC) - timedelta(days=days_ago))
        )
    paths = [urlsplit(u).path for u in _links(_feed(client))]
    assert paths == [f"/cap/{new['identifier']}.xml"]
    # Older alerts stay reachable by identifier (an archive link does not break).
    assert client.get(f"/cap/{old['identifier']}.xml").status_code == 200
