"""Alert safety through the console and the API: nobody acts as somebody else, an approval is
pinned to the version read, sessions end, logins are throttled and redirected safely."""

from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import func, select
from webtools import (
    PASSWORD,
    People,
    assert_error,
    create_alert,
    csrf_from,
    hidden_fields,
    login,
    page_csrf,
    read_back,
    submit_alert,
    upload,
)

from broadcast import accounts
from broadcast.db import Database
from broadcast.models import ApiToken, Approval, AuditEntry, Role, User
from broadcast.web import create_app
from tests.conftest import people_password_hash

ALERT = {
    "title": "Lũ quét",
    "body": "Lũ quét tại Hương Khê trong 2 giờ tới. Người dân lên chỗ cao.",
    "category": "emergency",
    "areas": ["18073"],
    "carriers": ["viettel"],
    "brandname": "UBND HaTinh",
    "urgency": "Immediate",
    "severity": "Extreme",
    "certainty": "Likely",
}


def pending_alert(client: FlaskClient, people: People, who: str = "drafter") -> dict[str, Any]:
    """A new alert by `who`, submitted for approval."""
    aid = create_alert(client, people, who, **ALERT)["id"]
    return submit_alert(client, people, aid, who)


def edit_and_resubmit(client: FlaskClient, people: People, aid: int) -> dict[str, Any]:
    """The author withdraws, changes the text and resubmits (the race an approver loses)."""
    auth = people.auth("drafter")
    assert client.post(f"/api/v1/alerts/{aid}/withdraw", headers=auth).status_code == 200
    changed = {**ALERT, "body": "Đã hủy cảnh báo: không có lũ."}
    assert client.put(f"/api/v1/alerts/{aid}", json=changed, headers=auth).status_code == 200
    return client.post(f"/api/v1/alerts/{aid}/submit", headers=auth).get_json()


def add_user(database: Database, username: str, role: Role) -> str:
    """A staff user with the shared test password; returns the token they made themselves."""
    with database.session() as s:
        user = User(
            username=username,
            display_name=username,
            password_hash=people_password_hash(PASSWORD),
            role=role,
        )
        s.add(user)
        s.flush()
        _row, token = accounts.create_token(s, user, "own", actor=user)
    return token


def approvals(database: Database, alert_id: int) -> int:
    with database.session() as s:
        return s.scalar(
            select(func.count()).select_from(Approval).where(Approval.alert_id == alert_id)
        )


def audit_actions(database: Database, alert_id: int) -> list[tuple[str, str]]:
    with database.session() as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.object_type == "alert", AuditEntry.object_id == str(alert_id))
            .order_by(AuditEntry.id)
        )
        return [(action, actor) for action, actor in rows]


# -- nobody acts as somebody else ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "approver", "drafter"])
def test_nobody_creates_a_token_for_someone_else(
    client: FlaskClient, people: People, seeded_database: Database, who: str
) -> None:
    victim = people.ids["approver" if who != "approver" else "drafter"]
    refused = client.post(
        "/api/v1/tokens", json={"name": "x", "user_id": victim}, headers=people.auth(who)
    )
    assert "chính chủ" in assert_error(refused, 403, "forbidden")["message"]
    unknown = client.post(
        "/api/v1/tokens", json={"name": "x", "user_id": 99999}, headers=people.auth(who)
    )
    assert_error(unknown, 403, "forbidden")  # no probing for which ids exist
    with seeded_database.session() as s:
        assert s.scalar(select(func.count()).where(ApiToken.user_id == victim)) == 1  # fixture's
    own = client.post(
        "/api/v1/tokens",
        json={"name": "mine", "user_id": people.ids[who]},
        headers=people.auth(who),
    )
    assert own.status_code == 201 and own.get_json()["user"] == who


def test_the_console_makes_tokens_only_for_oneself(client: FlaskClient, people: People) -> None:
    login(client, "admin")
    token = page_csrf(client, "/admin/users")
    # the old form that made a token for any user is gone
    forged = client.post(
        "/admin/tokens", data={"csrf_token": token, "name": "x", "user_id": people.ids["approver"]}
    )
    assert forged.status_code in (404, 405)
    page = client.get("/account/tokens").get_data(as_text=True)
    assert "user_id" not in page
    made = client.post(
        "/account/tokens",
        data={"csrf_token": token, "name": "ci", "user_id": str(people.ids["approver"])},
    )
    shown = made.get_data(as_text=True)
    assert "Mã truy cập API của admin" in shown
    new_token = shown.split('id="new-token">')[1].split("<")[0]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {new_token}"})
    assert me.get_json()["username"] == "admin"  # a form field does not choose the owner


def test_tokens_expire_and_are_listed_with_their_last_use(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    auth = people.auth("drafter")
    default = client.post("/api/v1/tokens", json={"name": "default"}, headers=auth).get_json()
    one_day = client.post(
        "/api/v1/tokens", json={"name": "day", "expires_in_days": 1}, headers=auth
    ).get_json()
    never = client.post(
        "/api/v1/tokens", json={"name": "never", "expires_in_days": None}, headers=auth
    ).get_json()
    now = datetime.now(UTC)

    def expiry(body: dict[str, Any]) -> timedelta:
        return datetime.fromisoformat(body["expires_at"]).replace(tzinfo=UTC) - now  # UTC

    assert timedelta(days=89) < expiry(default) <= timedelta(days=90)  # web.token_expiry_days
    assert timedelta(hours=23) < expiry(one_day) <= timedelta(days=1)
    assert never["expires_at"] is None
    for bad in (0, -1, 3651, "soon"):
        refused = client.post(
            "/api/v1/tokens", json={"name": "x", "expires_in_days": bad}, headers=auth
        )
        assert "expires_in_days" in assert_error(refused, 422)["details"]
    use = {"Authorization": f"Bearer {one_day['token']}"}
    assert client.get("/api/v1/me", headers=use).status_code == 200
    listed = {t["name"]: t for t in client.get("/api/v1/tokens", headers=auth).get_json()}
    assert listed["day"]["last_used_at"] is not None and listed["never"]["last_used_at"] is None
    assert abs(expiry(listed["day"]) - expiry(one_day)) < timedelta(seconds=1)
    # a day later
    with seeded_database.session() as s:
        row = s.get(ApiToken, one_day["id"])
        row.expires_at = now - timedelta(seconds=1)
    assert_error(client.get("/api/v1/me", headers=use), 401)
    never_auth = {"Authorization": f"Bearer {never['token']}"}
    assert client.get("/api/v1/me", headers=never_auth).status_code == 200


def test_deactivation_revokes_tokens_and_an_admin_cannot_deactivate_themselves(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    off = client.patch(
        f"/api/v1/users/{people.ids['drafter']}",
        json={"active": False},
        headers=people.auth("admin"),
    )
    assert off.status_code == 200
    assert_error(client.get("/api/v1/me", headers=people.auth("drafter")), 401)
    myself = client.patch(
        f"/api/v1/users/{people.ids['admin']}", json={"active": False}, headers=people.auth("admin")
    )
    assert "active" in assert_error(myself, 422)["details"]
    assert client.get("/api/v1/me", headers=people.auth("admin")).status_code == 200
    with seeded_database.session() as s:
        assert s.get(User, people.ids["admin"]).active


# -- approval pinned to the version read ------------------------------------------------------


def test_approve_needs_the_version_read(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    alert = pending_alert(client, people)
    aid = alert["id"]
    missing = client.post(f"/api/v1/alerts/{aid}/approve", json={}, headers=people.auth("approver"))
    assert "version" in assert_error(missing, 422)["details"]
    for bad in ("1", 0, None, 1.5):
        wrong = client.post(
            f"/api/v1/alerts/{aid}/approve", json={"version": bad}, headers=people.auth("approver")
        )
        assert "version" in assert_error(wrong, 422)["details"]
    read = client.get(f"/api/v1/alerts/{aid}", headers=people.auth("approver")).get_json()
    changed = edit_and_resubmit(client, people, aid)
    assert changed["version"] == read["version"] + 1
    stale = client.post(
        f"/api/v1/alerts/{aid}/approve",
        json={"version": read["version"]},
        headers=people.auth("approver"),
    )
    error = assert_error(stale, 409, "version_changed")
    assert f"phiên bản {read['version']}" in error["message"]
    assert f"phiên bản {changed['version']}" in error["message"]
    after = client.get(f"/api/v1/alerts/{aid}", headers=people.auth("approver")).get_json()
    assert after["status"] == "pending_approval" and after["approved_by"] is None
    assert approvals(seeded_database, aid) == 0
    fresh = client.post(
        f"/api/v1/alerts/{aid}/approve",
        json={"version": changed["version"]},
        headers=people.auth("approver"),
    )
    assert fresh.status_code == 200 and fresh.get_json()["status"] == "approved"
    assert ("alert.approve", "approver") in audit_actions(seeded_database, aid)


def test_a_stale_console_page_does_not_approve(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    aid = pending_alert(client, people)["id"]
    login(client, "approver")
    form = hidden_fields(read_back(client, f"/alerts/{aid}"), "approve-form")
    assert form["version"] == "1"
    edit_and_resubmit(client, people, aid)  # meanwhile, through the drafter's token
    shown = client.post(f"/alerts/{aid}/approve", data=form, follow_redirects=True)
    text = shown.get_data(as_text=True)
    assert "đã đọc phiên bản 1, nay là phiên bản 2" in text and "Chưa phê duyệt gì" in text
    assert 'data-status="pending_approval"' in text
    assert approvals(seeded_database, aid) == 0
    # a form without the version (an old page, a forged post) approves nothing either
    no_version = {"csrf_token": form["csrf_token"]}
    text = client.post(f"/alerts/{aid}/approve", data=no_version, follow_redirects=True).get_data(
        as_text=True
    )
    assert "Trang này đã cũ" in text and approvals(seeded_database, aid) == 0
    page = read_back(client, f"/alerts/{aid}")
    done = client.post(
        f"/alerts/{aid}/approve", data=hidden_fields(page, "approve-form"), follow_redirects=True
    )
    assert "Đã phê duyệt" in done.get_data(as_text=True)
    assert approvals(seeded_database, aid) == 1


def test_self_approval_is_refused_by_token_console_and_after_a_role_change(
    app: Flask, people: People, seeded_database: Database
) -> None:
    client = app.test_client()
    # an approver drafts: their own token cannot approve it
    own = pending_alert(client, people, who="approver")
    refused = client.post(
        f"/api/v1/alerts/{own['id']}/approve",
        json={"version": own["version"]},
        headers=people.auth("approver"),
    )
    assert "tự phê duyệt" in assert_error(refused, 403, "forbidden")["message"]
    # nor their console session, with the form forged
    login(client, "approver")
    page = client.get(f"/alerts/{own['id']}").get_data(as_text=True)
    assert 'id="readback-form"' not in page
    forged = {"csrf_token": csrf_from(page), "version": str(own["version"])}
    assert client.post(f"/alerts/{own['id']}/approve", data=forged).status_code == 403
    # a drafter's alert, then the drafter is made an approver
    mine = pending_alert(client, people, who="drafter")
    drafter = app.test_client()
    login(drafter, "drafter")
    promoted = client.patch(
        f"/api/v1/users/{people.ids['drafter']}",
        json={"role": "approver"},
        headers=people.auth("admin"),
    )
    assert promoted.get_json()["role"] == "approver"
    again = client.post(
        f"/api/v1/alerts/{mine['id']}/approve",
        json={"version": mine["version"]},
        headers=people.auth("drafter"),
    )
    assert "tự phê duyệt" in assert_error(again, 403)["message"]
    assert drafter.get("/alerts/").status_code == 302  # the role change ended the session
    login(drafter, "drafter")
    page = drafter.get(f"/alerts/{mine['id']}").get_data(as_text=True)
    assert 'id="readback-form"' not in page
    assert approvals(seeded_database, own["id"]) == approvals(seeded_database, mine["id"]) == 0
    with seeded_database.session() as s:
        change = s.scalar(select(AuditEntry).where(AuditEntry.action == "user.set_role"))
    assert change.actor == "admin" and change.after == {"role": "approver"}


def test_a_carrier_account_is_never_turned_into_staff(client: FlaskClient, people: People) -> None:
    changed = client.patch(
        f"/api/v1/users/{people.ids['viettel']}",
        json={"role": "approver"},
        headers=people.auth("admin"),
    )
    assert "role" in assert_error(changed, 422)["details"]
    assert client.get("/api/v1/me", headers=people.auth("viettel")).get_json()["role"] == "carrier"


def test_two_approvals_at_once_approve_once(
    app: Flask, people: People, seeded_database: Database
) -> None:
    second = add_user(seeded_database, "approver2", Role.APPROVER)
    headers = [people.auth("approver"), {"Authorization": f"Bearer {second}"}]
    for _round in range(3):
        alert = pending_alert(app.test_client(), people)
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def approve(
            i: int, alert: dict[str, Any] = alert, barrier: Any = barrier, answers: Any = answers
        ) -> None:
            client = app.test_client()
            barrier.wait()
            answers[i] = client.post(
                f"/api/v1/alerts/{alert['id']}/approve",
                json={"version": alert["version"]},
                headers=headers[i],
            )

        threads = [threading.Thread(target=approve, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409], [a.get_json() for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert_error(refused, 409, "invalid_transition")
        assert approvals(seeded_database, alert["id"]) == 1
        approved = [a for a, _ in audit_actions(seeded_database, alert["id"])].count(
            "alert.approve"
        )
        assert approved == 1


# -- sessions that end ----------------------------------------------------------------------


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("loa_session")
    assert cookie is not None
    return cookie.value


def replay(app: Flask, cookie: str) -> FlaskClient:
    """Another browser holding a copy of the cookie. (Tests that replay use clients outside a
    `with` block: a preserved request context would lend its logged-in user to the next one.)"""
    other = app.test_client()
    other.set_cookie("loa_session", cookie)
    return other


def assert_logged_out(app: Flask, cookie: str) -> None:
    copy = replay(app, cookie)
    assert_error(copy.get("/api/v1/me"), 401)
    page = copy.get("/alerts/", follow_redirects=True)
    assert 'id="login-submit"' in page.get_data(as_text=True)


def test_the_cookie_holds_only_a_session_id(app: Flask, people: People) -> None:
    client = app.test_client()
    login(client, "drafter")
    cookie = session_cookie(client)
    assert len(cookie) == 43 and "." not in cookie  # no signed payload, just the id
    copy = replay(app, cookie)
    assert copy.get("/api/v1/me").get_json()["username"] == "drafter"
    # One character of the id changed (the first: the last of 43 carries 2 padding bits, and
    # replacing it with "A" left it unchanged in 1 run in 16).
    tampered = ("B" if cookie[0] == "A" else "A") + cookie[1:]
    assert_error(replay(app, tampered).get("/api/v1/me"), 401)
    assert_error(replay(app, "../../etc/passwd").get("/api/v1/me"), 401)


def test_logout_ends_the_session_on_the_server(app: Flask, people: People) -> None:
    client = app.test_client()
    login(client, "drafter")
    cookie = session_cookie(client)
    assert replay(app, cookie).get("/api/v1/me").status_code == 200
    client.post("/logout", data={"csrf_token": page_csrf(client)})
    assert_logged_out(app, cookie)


def test_login_starts_a_new_session(app: Flask, people: People) -> None:
    client = app.test_client()
    client.get("/login")
    before = session_cookie(client)  # a session planted before login is worth nothing after
    login(client, "drafter")
    assert session_cookie(client) != before
    assert_logged_out(app, before)


@pytest.mark.parametrize(
    "change",
    [{"password": "a-brand-new-password"}, {"active": False}, {"role": "auditor"}],
    ids=["password", "deactivation", "role"],
)
def test_credential_changes_end_every_session_of_the_user(
    app: Flask, people: People, change: dict[str, Any]
) -> None:
    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        login(browser, "approver")
    cookies = [session_cookie(b) for b in browsers]
    bystander = app.test_client()
    login(bystander, "drafter")
    answer = app.test_client().patch(
        f"/api/v1/users/{people.ids['approver']}", json=change, headers=people.auth("admin")
    )
    assert answer.status_code == 200
    if change.get("active") is False:  # the sessions stay ended when the user comes back
        back = app.test_client().patch(
            f"/api/v1/users/{people.ids['approver']}",
            json={"active": True},
            headers=people.auth("admin"),
        )
        assert back.get_json()["active"] is True
    for cookie in cookies:
        assert_logged_out(app, cookie)
    assert bystander.get("/api/v1/me").status_code == 200  # other users keep theirs


def test_console_deactivation_ends_the_sessions(app: Flask, people: People) -> None:
    victim = app.test_client()
    login(victim, "drafter")
    cookie = session_cookie(victim)
    admin = app.test_client()
    login(admin, "admin")
    for active in ("0", "1"):  # deactivated, then back: the old sessions stay ended
        admin.post(
            f"/admin/users/{people.ids['drafter']}/active",
            data={"csrf_token": page_csrf(admin, "/admin/users"), "active": active},
        )
    assert_logged_out(app, cookie)
    login(victim, "drafter")
    assert victim.get("/api/v1/me").status_code == 200


def test_console_password_reset_ends_the_sessions_and_only_the_new_password_works(
    app: Flask, people: People
) -> None:
    victim = app.test_client()
    login(victim, "drafter")
    cookie = session_cookie(victim)
    admin = app.test_client()
    login(admin, "admin")
    url = f"/admin/users/{people.ids['drafter']}/password"
    short = admin.post(
        url,
        data={"csrf_token": page_csrf(admin, "/admin/users"), "password": "short"},
        follow_redirects=True,
    )
    assert "10" in short.get_data(as_text=True)  # refused, naming the minimum
    assert victim.get("/api/v1/me").status_code == 200  # nothing changed
    done = admin.post(
        url,
        data={"csrf_token": page_csrf(admin, "/admin/users"), "password": "a-new-secret-42"},
        follow_redirects=True,
    )
    assert "drafter" in done.get_data(as_text=True)
    assert_logged_out(app, cookie)
    old = app.test_client()
    login(old, "drafter")  # the old password no longer opens a session
    assert old.get("/api/v1/me").status_code == 401
    fresh = app.test_client()
    login(fresh, "drafter", password="a-new-secret-42")
    assert fresh.get("/api/v1/me").status_code == 200
    # a drafter cannot reset anyone's password
    forged = {"csrf_token": page_csrf(fresh), "password": "another-secret-42"}
    assert (
        fresh.post(f"/admin/users/{people.ids['admin']}/password", data=forged).status_code == 403
    )


def test_redis_out_of_reach_is_a_503_never_a_500(
    app: Flask, people: People, settings: Any, seeded_database: Database
) -> None:
    """Sessions live in Redis: with Redis gone, a request holding a session cookie and the
    login form are told the service is unavailable (nothing is done), never a 500 nor a login
    page as if the user had been logged out."""
    client = app.test_client()
    login(client, "drafter")
    cookie = session_cookie(client)
    # Nothing listens on port 1. No retries: the app sees the same ConnectionError at once
    # instead of after redis-py's default three tries with backoff (about 3 s a command).
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    down = create_app(settings, database=seeded_database, redis_client=dead)
    down.testing = True  # unexpected exceptions would propagate: a 500 fails the test
    browser = down.test_client()
    browser.set_cookie("loa_session", cookie)
    assert_error(browser.get("/api/v1/me"), 503)
    page = browser.get("/alerts/")
    assert page.status_code == 503
    assert "Redis" in page.get_data(as_text=True) and 'id="login-submit"' not in page.get_data(
        as_text=True
    )
    stranger = down.test_client()  # no session yet: the login form says so at once
    form = stranger.get("/login")
    assert form.status_code == 503 and "Redis" in form.get_data(as_text=True)
    # a token needs no session: what needs no Redis still answers
    assert stranger.get("/api/v1/alerts", headers=people.auth("drafter")).status_code == 200
    assert client.get("/api/v1/me").status_code == 200  # back on the live Redis: still logged in


def test_idle_timeout_and_absolute_lifetime(
    tmp_path: Path, seeded_database: Database, redis_url: str, people: People
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        database_url=seeded_database.url,
        redis_url=redis_url,
        web={"session_idle_minutes": 1, "session_hours": 1},
    )
    conn = redis.Redis.from_url(redis_url)
    app = create_app(settings, database=seeded_database, redis_client=conn)
    app.testing = True
    client = app.test_client()
    login(client, "drafter")
    cookie = session_cookie(client)
    key = f"loa:session:{cookie}"
    assert 0 < conn.ttl(key) <= 60  # the idle timeout, renewed by every request
    conn.expire(key, 5)
    assert client.get("/api/v1/me").status_code == 200
    assert conn.ttl(key) > 50
    conn.delete(key)  # a minute without a request
    assert_logged_out(app, cookie)
    # busy all along, but begun more than session_hours ago
    login(client, "drafter")
    cookie = session_cookie(client)
    stored = json.loads(conn.get(key := f"loa:session:{cookie}"))
    stored["started"] = time.time() - 3601
    conn.set(key, json.dumps(stored), ex=60)
    assert_logged_out(app, cookie)
    conn.close()


# -- logging in -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/alerts/\r\nSet-Cookie: x=1",
        "/ /evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_next_stays_on_this_site(client: FlaskClient, people: People, target: str) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "drafter", "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/alerts/"


def test_login_next_to_a_page_of_this_site_is_kept(client: FlaskClient, people: People) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post(
        "/login",
        query_string={"next": "/carriers/viettel?tab=imports"},
        data={"username": "drafter", "password": PASSWORD, "csrf_token": token},
    )
    assert answer.headers["Location"] == "/carriers/viettel?tab=imports"


def test_parallel_wrong_passwords_are_checked_at_most_the_limit(
    app: Flask, people: People, seeded_database: Database
) -> None:
    clients = [app.test_client() for _ in range(20)]
    tokens = [csrf_from(c.get("/login").get_data(as_text=True)) for c in clients]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def attempt(client: FlaskClient, token: str) -> None:
        barrier.wait()
        answer = client.post(
            "/login", data={"username": "approver", "password": "wrong", "csrf_token": token}
        )
        statuses.append(answer.status_code)

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(statuses) == [401] * 5 + [429] * 15  # web.login_attempts_per_minute
    with seeded_database.session() as s:
        failed = s.scalar(select(func.count()).where(AuditEntry.action == "login.failed"))
    assert failed == 5
    # the right password is not even checked inside the window
    blocked = login(app.test_client(), "approver")
    assert blocked.status_code == 429


def test_a_password_is_stored_at_scrypt_full_cost(seeded_database: Database) -> None:
    """What accounts.create_user stores (the console, the API and `loa users add` create users
    through it): werkzeug's scrypt at N=2**15, r=8, p=1. The tests' own people carry a cheaper
    hash (tests/conftest.py people_password_hash); this is the cost real accounts get."""
    with seeded_database.session() as s:
        user = accounts.create_user(s, username="fullcost", password=PASSWORD, role=Role.DRAFTER)
        assert user.password_hash.startswith("scrypt:32768:8:1$"), user.password_hash[:20]
        assert accounts.check_login(user, PASSWORD)
        assert not accounts.check_login(user, PASSWORD + "!")


def test_an_unknown_user_takes_as_long_as_a_known_one(
    app: Flask, people: People, seeded_database: Database
) -> None:
    # A known user whose hash has the production cost (the tests' people have a cheap one,
    # against which an unknown user answered without any hashing would look as slow).
    with seeded_database.session() as s:
        accounts.create_user(s, username="timed", password=PASSWORD, role=Role.APPROVER)

    def timed(username: str) -> float:
        client = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        start = time.perf_counter()
        answer = client.post(
            "/login", data={"username": username, "password": "wrong", "csrf_token": token}
        )
        assert answer.status_code == 401
        return time.perf_counter() - start

    known = statistics.median(timed("timed") for _ in range(3))
    unknown = statistics.median(timed("nobody-here") for _ in range(3))
    assert unknown > known * 0.5, (known, unknown)


def test_throttling_keys_on_the_client_behind_a_trusted_proxy(
    tmp_path: Path, seeded_database: Database, redis_url: str, people: People
) -> None:
    from tests.conftest import make_settings

    def app_with(proxies: int) -> Flask:
        settings = make_settings(
            tmp_path,
            database_url=seeded_database.url,
            redis_url=redis_url,
            web={"trusted_proxies": proxies, "login_attempts_per_minute": 2},
        )
        app = create_app(
            settings, database=seeded_database, redis_client=redis.Redis.from_url(redis_url)
        )
        app.testing = True
        return app

    def wrong(app: Flask, forwarded_for: str) -> int:
        client = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        return client.post(
            "/login",
            data={"username": "auditor", "password": "wrong", "csrf_token": token},
            headers={"X-Forwarded-For": forwarded_for},
        ).status_code

    behind = app_with(1)
    assert [wrong(behind, "203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert wrong(behind, "203.0.113.8") == 401  # another client behind the same proxy
    # no proxy trusted: the header is the client's word and changes nothing
    direct = app_with(0)
    assert [wrong(direct, f"198.51.100.{i}") for i in range(3)] == [401, 401, 429]


def test_production_sends_hsts(tmp_path: Path, seeded_database: Database, redis_url: str) -> None:
    from tests.conftest import make_settings

    def app_in(mode: str) -> Flask:
        settings = make_settings(
            tmp_path,
            database_url=seeded_database.url,
            redis_url=redis_url,
            mode=mode,
            secret_key="production-secret-3f9a1c7e5b2d8046",
        )
        return create_app(
            settings, database=seeded_database, redis_client=redis.Redis.from_url(redis_url)
        )

    hsts = app_in("production").test_client().get("/login").headers
    assert hsts["Strict-Transport-Security"].startswith("max-age=31536000")
    assert (
        "Strict-Transport-Security" not in app_in("development").test_client().get("/login").headers
    )


# -- throttling with several addresses -----------------------------------------------------------


def throttled_app(tmp_path: Path, database: Database, redis_url: str, **web: Any) -> Flask:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url=database.url, redis_url=redis_url, web=web)
    app = create_app(settings, database=database, redis_client=redis.Redis.from_url(redis_url))
    app.testing = True
    return app


def attempt_from(
    app: Flask, ip: str, username: str, password: str, client: FlaskClient | None = None
) -> Any:
    """One login form sent from the client address `ip` (a browser of its own unless given)."""
    client = client or app.test_client()
    where = {"REMOTE_ADDR": ip}
    token = csrf_from(client.get("/login", environ_base=where).get_data(as_text=True))
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=where,
    )


def test_one_throttled_address_leaves_other_addresses_and_users_alone(
    app: Flask, people: People
) -> None:
    attacker, office = "203.0.113.7", "198.51.100.20"
    statuses = [attempt_from(app, attacker, "approver", "wrong").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]  # web.login_attempts_per_minute
    # the right password from the throttled address is not even checked…
    assert attempt_from(app, attacker, "approver", PASSWORD).status_code == 429
    # …while the approver at the office logs in, and the address may still try another user
    assert attempt_from(app, office, "approver", PASSWORD).status_code == 302
    assert attempt_from(app, attacker, "auditor", "wrong").status_code == 401


def test_a_guess_from_rotating_addresses_is_slowed_without_locking_the_user_out(
    tmp_path: Path, seeded_database: Database, redis_url: str, people: People
) -> None:
    app = throttled_app(
        tmp_path,
        seeded_database,
        redis_url,
        login_attempts_per_account=4,
        # The steps inside the window take about 1 s: room for a machine five times slower.
        login_account_window_seconds=5,
    )
    # the approver's own browser logged in yesterday and logged out
    own = app.test_client()
    assert attempt_from(app, "127.0.0.1", "approver", PASSWORD, own).status_code == 302
    own.post("/logout", data={"csrf_token": page_csrf(own)})
    # an insider's browser knows their own account only
    insider = app.test_client()
    assert attempt_from(app, "198.51.100.66", "auditor", PASSWORD, insider).status_code == 302
    # one wrong password from each of many addresses: only 4 checked, whatever the address
    window_start = time.monotonic()  # the first failure opens the account's window
    statuses = [
        attempt_from(app, f"203.0.113.{i}", "approver", f"guess-{i}").status_code
        for i in range(1, 8)
    ]
    assert statuses == [401] * 4 + [429] * 3
    refused = attempt_from(app, "203.0.113.50", "approver", PASSWORD)  # even the right one
    assert refused.status_code == 429
    assert "1 phút" in refused.get_data(as_text=True)  # how long, in the reader's language
    # the insider's browser is not the approver's
    assert attempt_from(app, "203.0.113.51", "approver", "x", insider).status_code == 429
    # the approver's own browser, from a new address (a phone on the road), still logs in
    assert attempt_from(app, "100.64.0.9", "approver", PASSWORD, own).status_code == 302
    # and a new browser gets in once the window is over: no lock lasts longer than it
    time.sleep(max(0.0, window_start + 5.2 - time.monotonic()))
    assert attempt_from(app, "198.51.100.21", "approver", PASSWORD).status_code == 302
    with seeded_database.session() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "approver").order_by(AuditEntry.id)
        ).all()
    assert actions.count("login.failed") == 4 and actions.count("login.throttled") == 5


def test_a_forged_or_stale_device_cookie_is_worth_nothing(
    tmp_path: Path, seeded_database: Database, redis_url: str, people: People
) -> None:
    app = throttled_app(tmp_path, seeded_database, redis_url, login_attempts_per_account=1)
    assert attempt_from(app, "203.0.113.1", "drafter", "wrong").status_code == 401
    for value in ("drafter", "ImRyYWZ0ZXIi.Zz.forged", ""):
        forged = app.test_client()
        forged.set_cookie("loa_device", value)
        assert attempt_from(app, "203.0.113.2", "drafter", PASSWORD, forged).status_code == 429


# -- the same guarantee, every way in ------------------------------------------------------------


def test_self_approval_is_refused_through_the_api_with_a_console_session(
    app: Flask, people: People, seeded_database: Database
) -> None:
    """The API with the console's cookie and CSRF header, not a token: still not one's own."""
    own = pending_alert(app.test_client(), people, who="approver")
    browser = app.test_client()
    login(browser, "approver")
    refused = browser.post(
        f"/api/v1/alerts/{own['id']}/approve",
        json={"version": own["version"]},
        headers={"X-CSRFToken": page_csrf(browser)},
    )
    assert "tự phê duyệt" in assert_error(refused, 403, "forbidden")["message"]
    assert approvals(seeded_database, own["id"]) == 0


def test_a_cookie_replayed_after_logout_approves_nothing_and_reads_no_import(
    app: Flask, people: People, seeded_database: Database, control_jobs: Any
) -> None:
    import io

    # an approver's session, copied before logout, replayed after it on the API and console
    alert = pending_alert(app.test_client(), people, who="drafter")
    approver = app.test_client()
    login(approver, "approver")
    csrf, cookie = page_csrf(approver), session_cookie(approver)
    approver.post("/logout", data={"csrf_token": csrf})
    thief = replay(app, cookie)
    api = thief.post(
        f"/api/v1/alerts/{alert['id']}/approve",
        json={"version": alert["version"]},
        headers={"X-CSRFToken": csrf},
    )
    assert api.status_code in (400, 401)
    console = thief.post(
        f"/alerts/{alert['id']}/approve", data={"csrf_token": csrf, "version": alert["version"]}
    )
    assert console.status_code in (302, 400) and approvals(seeded_database, alert["id"]) == 0
    # a carrier's session, replayed after logout: no import, no progress, no upload
    csv_text = "so_thue_bao,ma_huyen\n0961234501,18073\n"
    anyone = app.test_client()
    sent = upload(anyone, people, "viettel", "viettel", csv_text, token="replayprogress1")
    assert sent.status_code == 201, sent.get_json()
    carrier = app.test_client()
    login(carrier, "viettel")
    csrf, cookie = page_csrf(carrier, "/carriers/viettel"), session_cookie(carrier)
    assert carrier.get("/api/v1/imports/progress/replayprogress1").status_code == 200
    carrier.post("/logout", data={"csrf_token": csrf})
    thief = replay(app, cookie)
    for path in (
        "/api/v1/carriers/viettel/imports",
        "/api/v1/imports/progress/replayprogress1",
        "/api/v1/carriers/viettel/coverage",
    ):
        assert_error(thief.get(path), 401)
    page = thief.get("/carriers/viettel/uploads/replayprogress1", follow_redirects=True)
    assert 'id="login-submit"' in page.get_data(as_text=True)
    again = thief.post(
        "/carriers/viettel/upload",
        data={"csrf_token": csrf, "kind": "list", "file": (io.BytesIO(b"x"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert again.status_code in (302, 400)
    listed = app.test_client().get(
        "/api/v1/carriers/viettel/imports", headers=people.auth("viettel")
    )
    assert len(listed.get_json()) == 1  # the replayed upload went nowhere


def test_a_revoked_or_other_carriers_token_reads_no_progress(
    app: Flask, people: People, seeded_database: Database, control_jobs: Any
) -> None:
    client = app.test_client()
    csv_text = "so_thue_bao,ma_huyen\n0961234501,18073\n"
    sent = upload(client, people, "viettel", "viettel", csv_text, token="tokenscope0001")
    assert sent.status_code == 201, sent.get_json()
    path = "/api/v1/imports/progress/tokenscope0001"
    assert client.get(path, headers=people.auth("viettel")).get_json()["state"] == "done"
    # another carrier's session and token do not see it, nor does viettel's revoked token
    mobifone = app.test_client()
    login(mobifone, "mobifone")
    assert_error(mobifone.get(path), 404)
    assert_error(client.get(path, headers=people.auth("mobifone")), 404)
    with seeded_database.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.user_id == people.ids["viettel"]))
        row.revoked_at = datetime.now(UTC)
    assert_error(client.get(path, headers=people.auth("viettel")), 401)
