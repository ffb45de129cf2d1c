"""The audit log page: Vietnamese text as text, actions in words, local time, vi-VN numbers,
filters by actor/action/date, bounded pages, and a clear 400 for a filter it cannot use."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert
from webtools import People, login, page_csrf

from broadcast import audit
from broadcast.alerts import Action
from broadcast.db import Database
from broadcast.models import AuditEntry, ImportKind
from broadcast.web.admin import AUDIT_PAGE_SIZE
from broadcast.web.templating import AUDIT_ACTION_LABELS, AUDIT_OBJECT_LABELS


def _page(client: FlaskClient, query: str = "") -> tuple[int, str]:
    response = client.get(f"/admin/audit{query}")
    return response.status_code, html.unescape(response.get_data(as_text=True))


def _rows(text: str) -> int:
    body = text.split('<table id="audit">', 1)[1].split("</table>", 1)[0]
    return body.count("<tr>") - 1  # the header row


@pytest.fixture
def entries(seeded_database: Database, people: People) -> None:
    with seeded_database.session() as session:
        # Older entries first. 2026-11-19 23:30 UTC is 20/11/2026 06:30 in Hà Tĩnh.
        session.execute(
            insert(AuditEntry),
            [
                {
                    "at": datetime(2026, 11, 19, 23, 30, tzinfo=UTC),
                    "actor": "admin",
                    "action": "brandname.add",
                    "object_type": "brandname",
                    "object_id": str(n),
                    "after": {"name": f"Sở TN&MT {n}"},
                }
                for n in range(AUDIT_PAGE_SIZE + 5)
            ],
        )
        audit.record(
            session,
            actor="drafter",
            action="alert.create",
            object_type="alert",
            object_id=7,
            after={"title": "Cảnh báo lũ quét ở Hương Khê", "recipients": 12345, "alert_id": 7},
        )
        audit.record(
            session,
            actor="approver",
            action="alert.approve",
            object_type="alert",
            object_id=7,
            before={"status": "pending_approval"},
            after={"status": "approved"},
        )


def test_vietnamese_text_actions_in_words_local_time_and_numbers(
    client: FlaskClient, entries: None
) -> None:
    login(client, "auditor")
    status, text = _page(client)
    assert status == 200
    assert "Cảnh báo lũ quét ở Hương Khê" in text
    # no escapes such as \u1ea3 in what a person reads (the JSON for i18n.js may escape)
    assert "\\u" not in re.sub(r"<script.*?</script>", "", text, flags=re.S)
    assert "Soạn cảnh báo" in text and "Phê duyệt cảnh báo" in text  # alert.create, approve
    assert ">alert.create<" not in text and "Cảnh báo 7" in text  # the object in words
    assert "12.345" in text  # a count in vi-VN
    assert "20/11/2026 06:30:00" in text  # local time, not 23:30 UTC
    client.post("/locale/en", data={"csrf_token": page_csrf(client, "/admin/audit")})
    status, text = _page(client, "?action=alert.create")
    assert "Alert drafted" in text and "12,345" in text


def test_filters_and_pages(client: FlaskClient, entries: None) -> None:
    login(client, "admin")
    status, text = _page(client, "?actor=approver")
    assert status == 200 and _rows(text) == 1 and "Phê duyệt cảnh báo" in text
    status, text = _page(client, "?action=alert.create")
    assert _rows(text) == 1 and "Hương Khê" in text
    # by local date: the brandnames were added on 20/11 in Hà Tĩnh (19/11 in UTC)
    status, text = _page(client, "?action=brandname.add&from=2026-11-20&to=2026-11-20")
    assert status == 200 and _rows(text) == AUDIT_PAGE_SIZE
    assert f"{AUDIT_PAGE_SIZE + 5} mục" in text
    assert 'id="audit-older"' in text
    status, text = _page(client, "?action=brandname.add&from=2026-11-20&to=2026-11-20&page=2")
    assert _rows(text) == 5 and 'id="audit-older"' not in text and 'id="audit-newer"' in text
    status, text = _page(client, "?action=brandname.add&to=2026-11-19")
    assert _rows(text) == 0


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?action=alert.explode", "Nhật ký không có thao tác 'alert.explode'"),
        ("?from=2026-13-45", "'2026-13-45' không phải là ngày"),
        ("?to=yesterday", "'yesterday' không phải là ngày"),
        ("?from=2026-11-21&to=2026-11-20", "Ngày bắt đầu sau ngày kết thúc"),
        ("?actor=" + "x" * 121, "tối đa 120 ký tự"),
    ],
)
def test_bad_filters_are_a_clear_400(
    client: FlaskClient, entries: None, query: str, words: str
) -> None:
    login(client, "admin")
    status, text = _page(client, query)
    assert status == 400
    assert words in text
    assert _rows(text) == 0


def test_only_admins_and_auditors(client: FlaskClient, people: People) -> None:
    login(client, "drafter")
    assert client.get("/admin/audit").status_code == 403


def test_every_action_and_object_of_the_code_has_words() -> None:
    """An action or object type the code records is never shown as its raw code."""
    root = Path(__file__).resolve().parents[2]
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("broadcast", "subscriber_import", "workers")
        for p in (root / folder).rglob("*.py")
    )
    actions = set(re.findall(r'action="([a-z_.]+)"', source))
    actions |= {f"alert.{a.value}" for a in Action}
    actions |= {f"import.{k.value}" for k in ImportKind}
    assert actions - set(AUDIT_ACTION_LABELS) == set()
    objects = set(re.findall(r'object_type="([a-z_]+)"', source))
    assert objects - set(AUDIT_OBJECT_LABELS) == set()


def test_before_and_after_read_as_words(client: FlaskClient, entries: None) -> None:
    login(client, "auditor")
    _status, text = _page(client, "?action=alert.approve")
    row = " ".join(re.sub(r"<[^>]+>", " ", text.split('<table id="audit">', 1)[1]).split())
    assert "Trạng thái : Chờ phê duyệt" in row and "Trạng thái : Đã phê duyệt" in row
    assert "status" not in row and "pending_approval" not in row
    client.post("/locale/en", data={"csrf_token": page_csrf(client, "/admin/audit")})
    _status, text = _page(client, "?action=alert.approve")
    row = " ".join(re.sub(r"<[^>]+>", " ", text.split('<table id="audit">', 1)[1]).split())
    assert "Status : Awaiting approval" in row and "Status : Approved" in row
