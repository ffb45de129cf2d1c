"""Helpers the web tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from broadcast import accounts
from broadcast.db import Database
from broadcast.models import Carrier, Role, User

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
    """The control and imports workers' part for web tests: RQ's SimpleWorker takes their
    queues' jobs in a thread, as `loa worker --control` and `--imports` do in their own
    processes, so a request can wait for the job it enqueued. Timer death penalty: no
    signals in a thread."""

    def __init__(self, settings: Any, database: Any) -> None:
        from workers import runtime as rt_mod

        self.rt_mod = rt_mod
        self.runtime = rt_mod.build_runtime(settings, database)
        rt_mod.install(self.runtime)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                burst_worker(self.runtime.redis).work(burst=True, logging_level="WARNING")
                self.stop.wait(0.05)
        except BaseException as exc:  # reported by close()
            self.errors.append(exc)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.rt_mod.install(None)
        self.runtime.redis.close()
        assert not self.errors, self.errors


def burst_worker(connection: Any) -> Any:
    """A SimpleWorker of the control and imports queues that runs in any thread."""
    from rq import Queue, SimpleWorker
    from rq.timeouts import TimerDeathPenalty

    from broadcast import keys

    class _Worker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self) -> None:  # only the main thread may
            pass

    queues = [
        Queue(name, connection=connection) for name in (keys.CONTROL_QUEUE, keys.IMPORT_QUEUE)
    ]
    return _Worker(queues, connection=connection)


@cache
def _password_hash() -> str:
    """scrypt is slow on purpose; hash the shared test password once per session."""
    return accounts.hash_password(PASSWORD)


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
                password_hash=_password_hash(),
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
