"""The console's alert pages through the test client: forms, refusals, escaping, test mark."""

from __future__ import annotations

from flask.testing import FlaskClient
from webtools import People, hidden_fields, login, page_csrf, read_back

FORM = {
    "title": "Mưa lớn",
    "body": "<script>alert('x')</script> Mưa lớn tại Hà Tĩnh",
    "category": "warning",
    "areas": ["18073"],
    "carriers": ["viettel"],
    "brandname": "UBND HaTinh",
    "urgency": "Expected",
    "severity": "Moderate",
    "certainty": "Likely",
}


def _draft(client: FlaskClient, **over: object) -> str:
    token = page_csrf(client, "/alerts/new")
    response = client.post("/alerts/new", data={**FORM, **over, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response.headers["Location"]


def test_draft_submit_approve_and_escaping(client: FlaskClient, people: People) -> None:
    login(client, "drafter")
    location = _draft(client)
    page = client.get(location).get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    token = page_csrf(client, location)
    client.post(f"{location}/submit", data={"csrf_token": token})
    # the drafter has no approve button, and posting the form anyway is refused
    page = client.get(location).get_data(as_text=True)
    assert 'id="do-approve"' not in page
    assert client.post(f"{location}/approve", data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    login(client, "approver")
    page = client.get(location).get_data(as_text=True)
    assert 'id="do-approve"' in page
    done = client.post(
        f"{location}/approve",
        data=hidden_fields(read_back(client, location, waive_quiet_hours="1"), "approve-form"),
        follow_redirects=True,
    )
    assert "Đã phê duyệt" in done.get_data(as_text=True)


def test_refused_draft_names_the_fields_and_keeps_the_input(
    client: FlaskClient, people: People
) -> None:
    login(client, "drafter")
    token = page_csrf(client, "/alerts/new")
    response = client.post("/alerts/new", data={**FORM, "brandname": "123", "csrf_token": token})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "Tên định danh (brandname)" in text
    assert "“123” chỉ gồm chữ số" in text and "all digits" not in text
    assert "Mưa lớn tại Hà Tĩnh" in text


def test_test_alerts_are_unmistakable(client: FlaskClient, people: People) -> None:
    login(client, "drafter")
    location = _draft(client, category="test")
    page = client.get(location).get_data(as_text=True)
    assert 'class="test-banner"' in page and "THỬ NGHIỆM / TEST" in page
    assert "[TEST - THU NGHIEM]" in page  # the text on the air carries it too
    listing = client.get("/alerts/").get_data(as_text=True)
    assert "test-row" in listing and "THỬ NGHIỆM / TEST" in listing


def test_admin_pages(client: FlaskClient, people: People) -> None:
    login(client, "admin")
    token = page_csrf(client, "/admin/users")
    created = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "new1",
            "password": "long-password",
            "role": "auditor",
        },
        follow_redirects=True,
    )
    assert "new1" in created.get_data(as_text=True)
    shown = client.post("/account/tokens", data={"csrf_token": token, "name": "ci"})
    assert 'id="new-token"' in shown.get_data(as_text=True)
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "token.create" in audit and "user.create" in audit
