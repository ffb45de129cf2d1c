"""Factory, health, metrics, security headers, i18n, login and its throttle, CSRF."""

from __future__ import annotations

from conftest import People
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from webtools import PASSWORD, csrf_from, login

from broadcast.db import Database
from broadcast.models import AuditEntry


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_metrics_exposes_requests_and_alert_states(client: FlaskClient) -> None:
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert "loa_http_requests_total" in text
    assert "loa_queue_length" in text


def test_security_headers_and_cookie_flags(client: FlaskClient) -> None:
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_pages_need_login(client: FlaskClient) -> None:
    response = client.get("/alerts/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_page_is_vietnamese_by_default_and_switches_to_english(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "Đăng nhập" in page
    token = csrf_from(page)
    client.post("/locale/en", data={"csrf_token": token, "next": "/login"})
    assert "Log in" in client.get("/login").get_data(as_text=True)


def test_login_logout_and_audit(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    response = login(client, "drafter")
    assert response.status_code == 302
    page = client.get("/alerts/").get_data(as_text=True)
    assert "Drafter" in page
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert client.get("/alerts/").status_code == 302
    with seeded_database.session() as s:
        actions = [
            e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.actor == "drafter"))
        ]
    assert "login" in actions and "logout" in actions


def test_wrong_password_is_refused_and_audited(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    response = login(client, "drafter", "wrong-password")
    assert response.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in response.get_data(as_text=True)
    with seeded_database.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "login.failed"))
    assert entry is not None and entry.actor == "drafter"


def test_login_attempts_are_throttled_per_user_and_ip(
    app: Flask, client: FlaskClient, people: People
) -> None:
    limit = app.extensions["loa"].settings.web.login_attempts_per_minute
    for _ in range(limit):
        assert login(client, "approver", "nope-nope-nope").status_code == 401
    blocked = login(client, "approver", PASSWORD)  # even the right password waits now
    assert blocked.status_code == 429
    assert login(client, "drafter").status_code == 302  # another username is not blocked


def test_form_without_csrf_token_is_refused(client: FlaskClient, people: People) -> None:
    response = client.post("/login", data={"username": "drafter", "password": PASSWORD})
    assert response.status_code == 400
    assert "Biểu mẫu đã hết hạn" in response.get_data(as_text=True)


def test_roles_guard_pages(client: FlaskClient, people: People) -> None:
    login(client, "viettel")
    assert client.get("/alerts/").status_code == 403
    assert client.get("/admin/users").status_code == 403


def test_static_assets_are_local(client: FlaskClient, people: People) -> None:
    login(client, "drafter")
    page = client.get("/alerts/").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page
    with client.get("/static/loa.css") as css:
        assert css.status_code == 200


def test_vietnamese_catalogue_is_complete() -> None:
    from babel.messages.pofile import read_po

    from broadcast.web.i18n import SOURCE

    with (SOURCE / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    missing = [m.id for m in catalog if m.id and not m.string]
    assert missing == []
