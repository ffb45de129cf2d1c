"""Factory, health, metrics, security headers, i18n, login and its throttle, CSRF."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from webtools import PASSWORD, People, csrf_from, login

from broadcast.db import Database
from broadcast.models import AuditEntry
from broadcast.web import create_app
from tests.conftest import make_settings


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


def _app_with(tmp_path: Path, database: Database, redis_url: str, **over: Any) -> Flask:
    """An app on the same database and Redis with some settings changed."""
    settings = make_settings(tmp_path, database_url=database.url, redis_url=redis_url, **over)
    app = create_app(settings, database=database, redis_client=redis.Redis.from_url(redis_url))
    app.testing = True
    return app


def test_a_new_instance_folder_gets_the_vietnamese_catalogue_compiled_at_start(
    tmp_path: Path, seeded_database: Database, redis_url: str
) -> None:
    """Test settings start with the catalogue compiled (tests/conftest.py make_settings); a
    new installation has none, and a stale one (its .po changed since) is compiled again."""
    settings = make_settings(tmp_path, database_url=seeded_database.url, redis_url=redis_url)
    compiled = settings.instance_path / "translations" / "vi" / "LC_MESSAGES" / "messages.mo"

    def console() -> Flask:  # started on the folder as it is (make_settings would fill it)
        client = redis.Redis.from_url(redis_url)
        return create_app(settings, database=seeded_database, redis_client=client)

    shutil.rmtree(settings.instance_path / "translations")
    app = console()
    assert compiled.is_file()
    assert "Đăng nhập" in app.test_client().get("/login").get_data(as_text=True)
    compiled.write_bytes(b"")  # stale: older than its source
    os.utime(compiled, (1, 1))
    app = console()
    assert compiled.stat().st_size > 0
    assert "Đăng nhập" in app.test_client().get("/login").get_data(as_text=True)


def test_metrics_need_the_bearer_token_when_one_is_set(
    tmp_path: Path, seeded_database: Database, redis_url: str
) -> None:
    app = _app_with(tmp_path, seeded_database, redis_url, web={"metrics_token": "scrape-me"})
    client = app.test_client()
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert "Bearer" in anonymous.get_data(as_text=True)
    assert "loa_http_requests" not in anonymous.get_data(as_text=True)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-you"})
    assert wrong.status_code == 401
    basic = client.get("/metrics", headers={"Authorization": "Basic scrape-me"})
    assert basic.status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200 and "loa_http_requests_total" in ok.get_data(as_text=True)


def test_production_refuses_metrics_without_a_token(
    tmp_path: Path, seeded_database: Database, redis_url: str
) -> None:
    secret = "production-secret-3f9a1c7e5b2d8046"
    app = _app_with(tmp_path, seeded_database, redis_url, mode="production", secret_key=secret)
    refused = app.test_client().get("/metrics")
    assert refused.status_code == 403
    assert "web.metrics_token" in refused.get_data(as_text=True)
    app = _app_with(
        tmp_path,
        seeded_database,
        redis_url,
        mode="production",
        secret_key=secret,
        web={"metrics_token": "scrape-me"},
    )
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200


ENGLISH_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


def test_vietnamese_whatever_the_browser_asks_until_the_person_chooses(
    client: FlaskClient, people: People
) -> None:
    page = client.get("/login", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert '<html lang="vi">' in page and "Đăng nhập" in page and "Log in" not in page
    login(client, "drafter")
    listing = client.get("/alerts/", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert "Soạn cảnh báo" in listing
    token = csrf_from(listing)
    client.post("/locale/en", data={"csrf_token": token, "next": "/alerts/"})
    assert "New alert" in client.get("/alerts/", headers=ENGLISH_BROWSER).get_data(as_text=True)
    # the choice outlives logging out and in again
    client.post("/logout", data={"csrf_token": token})
    assert "Log in" in client.get("/login").get_data(as_text=True)
    login(client, "drafter")
    assert "New alert" in client.get("/alerts/").get_data(as_text=True)
    page = client.get("/alerts/").get_data(as_text=True)
    client.post("/locale/vi", data={"csrf_token": csrf_from(page), "next": "/alerts/"})
    assert "Soạn cảnh báo" in client.get("/alerts/").get_data(as_text=True)


def test_unknown_locale_is_not_found(client: FlaskClient) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    assert client.post("/locale/fr", data={"csrf_token": token}).status_code == 404
    assert "Đăng nhập" in client.get("/login").get_data(as_text=True)
