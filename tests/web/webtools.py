"""Helpers the web tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from broadcast import accounts
from broadcast.db import Database
from broadcast.models import Carrier, Role, User
from tests.conftest import people_password_hash

PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(html: str, form_id: str) -> dict[str, str]:
    """The hidden inputs of one form of a page (CSRF token, the version read…), as a browser
    would send them."""
    start = html.index(f'id="{form_id}"')
    return dict(HIDDEN_RE.findall(html[start : html.index("</form>", start)]))


def read_back(client: FlaskClient, location: str, **waivers: str) -> str:
    """The read-back page an approver reaches from the alert page: the version read on the
    alert page rides along, as the browser's GET form sends it."""
    page = client.get(location).get_data(as_text=True)
    query = {**hidden_fields(page, "readback-form"), **waivers}
    return client.get(f"{location}/readback", query_string=query).get_data(as_text=True)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def page_csrf(client: FlaskClient, path: str = "/alerts/") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The API's one error body, with the status and (optionally) the code expected."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


# A warning to viettel and mobifone over one commune, ready to submit.
ALERT: dict[str, Any] = {
    "title": "Bão số 3",
    "body": "Bão số 3 đổ bộ vào Hà Tĩnh đêm nay. Người dân ở trong nhà.",
    "category": "warning",
    "areas": ["18073"],
    "carriers": ["viettel", "mobifone"],
    "brandname": "UBND HaTinh",
    "event": "Storm",
    "urgency": "Immediate",
    "severity": "Severe",
    "certainty": "Likely",
}


def create_alert(client: FlaskClient, people: People, who: str = "drafter", **over: Any) -> dict:
    """A draft by `who` through the API: ALERT with `over` changed."""
    response = client.post("/api/v1/alerts", json={**ALERT, **over}, headers=people.auth(who))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def submit_alert(client: FlaskClient, people: People, aid: int, who: str = "drafter") -> dict:
    submitted = client.post(f"/api/v1/alerts/{aid}/submit", headers=people.auth(who))
    assert submitted.status_code == 200, submitted.get_json()
    assert submitted.get_json()["status"] == "pending_approval"
    return submitted.get_json()


def approved_alert(client: FlaskClient, people: People, **over: Any) -> dict[str, Any]:
    """A drafter's alert, submitted and approved by the approver (quiet hours waived), with
    the version read."""
    aid = create_alert(client, people, **over)["id"]
    submitted = submit_alert(client, people, aid)
    approved = client.post(
        f"/api/v1/alerts/{aid}/approve",
        json={"version": submitted["version"], "waive_quiet_hours": True},
        headers=people.auth("approver"),
    )
    assert approved.status_code == 200, approved.get_json()
    return approved.get_json()


def upload(
    client: FlaskClient,
    people: People,
    who: str,
    carrier: str,
    text: str,
    *,
    kind: str = "list",
    name: str = "list.csv",
    token: str | None = None,
    wait: float | None = None,
    **form: str,
) -> Any:
    """`who` sends a carrier file through the API (`wait`: the seconds the request may wait
    for the import; None: the server's default; `form`: other fields, e.g. allow_shrink)."""
    data: dict[str, Any] = {"kind": kind, "file": (io.BytesIO(text.encode()), name), **form}
    if token:
        data["progress_token"] = token
    query = "" if wait is None else f"?wait={wait}"
    return client.post(
        f"/api/v1/carriers/{carrier}/imports{query}",
        data=data,
        headers=people.auth(who),
        content_type="multipart/form-data",
    )


def console_upload(
    client: FlaskClient,
    carrier: str,
    text: str,
    *,
    kind: str = "list",
    name: str = "list.csv",
    headers: dict[str, str] | None = None,
    **form: str,
) -> Any:
    """The logged-in carrier user sends a file with the form of its console page."""
    data: dict[str, Any] = {
        "csrf_token": page_csrf(client, f"/carriers/{carrier}"),
        "kind": kind,
        "file": (io.BytesIO(text.encode()), name),
        **form,
    }
    return client.post(
        f"/carriers/{carrier}/upload",
        data=data,
        content_type="multipart/form-data",
        headers=headers or {},
    )


@dataclass
class People:
    """The test users' ids and API tokens, by username."""

    ids: dict[str, int]
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


class ControlJobs:
    """`loa worker --control` and `loa worker --imports` for web tests: the real
    `ControlWorker` and `ImportWorker`, each in a thread of the test process instead of a
    process of its own (see docs/testing.md, "Real workers in tests"), so that a request can
    wait for the job it enqueued. `in_thread=True` is their only difference from the command:
    no signal handlers, a timer for job timeouts. The control worker runs reconcile at start,
    as the command does, and the fixture waits for that first pass (a test that reconciles
    itself would otherwise race it); RQ's scheduler (`enqueue_at`) is not started."""

    def __init__(self, settings: Any, database: Any) -> None:
        from workers import runtime as rt_mod
        from workers.processes import ControlWorker, ImportWorker

        self.rt_mod = rt_mod
        self.runtime = rt_mod.build_runtime(settings, database)
        rt_mod.install(self.runtime)
        self.errors: list[BaseException] = []
        self.control = ControlWorker(self.runtime, in_thread=True)
        self.imports = ImportWorker(self.runtime, in_thread=True)
        self.threads = [
            threading.Thread(target=self._run, args=(worker,), daemon=True, name=name)
            for worker, name in ((self.control, "loa-control"), (self.imports, "loa-imports"))
        ]
        for thread in self.threads:
            thread.start()
        end = time.monotonic() + 30
        while self.control.last_reconcile is None and not self.errors:
            if time.monotonic() > end:
                self.close()
                raise AssertionError("the control worker's first reconcile took over 30 s")
            time.sleep(0.02)

    def _run(self, worker: Any) -> None:
        try:
            worker.work(logging_level="WARNING")
            if not worker._stop_requested:  # RQ logs an unhandled error and quits its loop
                raise RuntimeError(f"{type(worker).__name__} quit before it was stopped")
        except BaseException as exc:  # reported by close()
            self.errors.append(exc)

    def close(self) -> None:
        for worker in (self.control, self.imports):
            worker.stop()
        for thread in self.threads:
            thread.join(30)
        stuck = [t.name for t in self.threads if t.is_alive()]
        self.rt_mod.install(None)
        self.runtime.redis.close()
        assert not stuck, f"workers still running 30 s after stop(): {stuck}"
        assert not self.errors, self.errors


USERS: dict[str, tuple[Role, str | None]] = {
    "admin": (Role.ADMIN, None),
    "drafter": (Role.DRAFTER, None),
    "drafter2": (Role.DRAFTER, None),
    "approver": (Role.APPROVER, None),
    "auditor": (Role.AUDITOR, None),
    "viettel": (Role.CARRIER, "viettel"),
    "mobifone": (Role.CARRIER, "mobifone"),
}


def add_people(database: Database) -> People:
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with database.session() as session:
        carriers = {c.code: c.id for c in session.scalars(select(Carrier))}
        rows = []
        for name, (role, carrier) in USERS.items():
            user = User(
                username=name,
                display_name=name.title(),
                password_hash=people_password_hash(PASSWORD),
                role=role,
                carrier_id=carriers[carrier] if carrier else None,
            )
            session.add(user)
            rows.append(user)
        session.flush()
        for user in rows:
            ids[user.username] = user.id
            _, tokens[user.username] = accounts.create_token(session, user, "test", actor="test")
    return People(ids, tokens)
