"""Carrier scope, route by route: carrier B asks for everything of carrier A and learns nothing.

Each answer to B about A's data must be the very answer about data that does not exist, so a
404 cannot confirm that an import id, an upload token or a carrier's list is there.
"""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from webtools import CSRF_RE, ControlJobs, People, login, page_csrf, upload

# viettel's list: two numbers accepted, one refused (so there is a rejects file to ask for)
LIST_CSV = "so_thue_bao,ma_huyen\n0961234501,18073\n0961234502,18100\nabc,18073\n"
SECRETS = ("0961234501", "84961234501", "961234501", "viettel-list.csv", "18100")
TOKEN = "viettelprogress1"
MISSING_ID = 987654

# Every route that takes a carrier code, an import id or an upload token, and how B tries it.
API_ROUTES = {
    "/api/v1/carriers/<code>/imports": ("GET", "POST"),
    "/api/v1/carriers/<code>/coverage": ("GET",),
    "/api/v1/carriers/<code>/status": ("GET", "PUT"),
    "/api/v1/imports/<int:import_id>": ("GET",),
    "/api/v1/imports/<int:import_id>/rejects.csv": ("GET",),
    "/api/v1/imports/progress/<token>": ("GET",),
}
CONSOLE_ROUTES = {
    "/carriers/<code>": ("GET",),
    "/carriers/<code>/upload": ("POST",),
    "/carriers/<code>/status": ("GET", "POST"),
    "/carriers/<code>/uploads/<token>": ("GET",),
    "/carriers/imports/<int:import_id>": ("GET",),
    "/carriers/imports/<int:import_id>/confirm-shrink": ("POST",),
    "/carriers/imports/<int:import_id>/rejects.csv": ("GET",),
}


def _scoped_rules(app: Flask) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if any(arg in rule.arguments for arg in ("code", "import_id", "token")) and (
            "carriers" in rule.rule or "imports" in rule.rule
        ):
            found.setdefault(rule.rule, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return found


def test_every_carrier_scoped_route_is_tried_below(app: Flask) -> None:
    """A new route under a carrier, an import or a token must join the lists of this file."""
    tried = {rule: set(methods) for rule, methods in {**API_ROUTES, **CONSOLE_ROUTES}.items()}
    assert _scoped_rules(app) == tried


def _viettel_import(client: FlaskClient, people: People) -> int:
    response = upload(
        client, people, "viettel", "viettel", LIST_CSV, name="viettel-list.csv", token=TOKEN
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["report"]["accepted"] == 2 and body["has_rejects"]
    return body["id"]


CSRF_META_RE = re.compile(r'name="csrf-token" content="[^"]+"')


def _same_as_missing(theirs: Any, missing: Any) -> None:
    """B's answer about A's data equals the answer about nothing, and names none of it."""
    assert theirs.status_code == missing.status_code, theirs.get_data(as_text=True)
    assert theirs.status_code in (403, 404)

    # the console's language switch echoes the path asked for, and a page's CSRF token (in
    # its forms and in its <meta name="csrf-token">) is signed with the second it was made
    # in: the parts allowed to differ. The meta was left out until two answers straddled a
    # second in CI.
    def plain(answer: Any) -> str:
        text = answer.get_data(as_text=True).replace(answer.request.path, "<path>")
        text = CSRF_META_RE.sub('name="csrf-token" content="<token>"', text)
        return CSRF_RE.sub('name="csrf_token" value="<token>"', text)

    text = plain(theirs)
    assert text == plain(missing)
    assert not any(secret in text for secret in SECRETS), text
    assert "Content-Disposition" not in theirs.headers


def test_another_carrier_gets_only_not_found_from_the_api(
    client: FlaskClient, people: People, control_jobs: ControlJobs
) -> None:
    import_id = _viettel_import(client, people)
    mine = people.auth("viettel")
    coverage_before = client.get("/api/v1/carriers/viettel/coverage", headers=mine).get_json()
    b = people.auth("mobifone")

    def get(path: str) -> Any:
        return client.get(path, headers=b)

    def post(code: str) -> Any:
        return client.post(
            f"/api/v1/carriers/{code}/imports",
            data={"kind": "list", "file": (io.BytesIO(LIST_CSV.encode()), "x.csv")},
            headers=b,
            content_type="multipart/form-data",
        )

    _same_as_missing(get("/api/v1/carriers/viettel/imports"), get("/api/v1/carriers/zz/imports"))
    _same_as_missing(get("/api/v1/carriers/viettel/coverage"), get("/api/v1/carriers/zz/coverage"))
    _same_as_missing(get(f"/api/v1/imports/{import_id}"), get(f"/api/v1/imports/{MISSING_ID}"))
    _same_as_missing(
        get(f"/api/v1/imports/{import_id}/rejects.csv"),
        get(f"/api/v1/imports/{MISSING_ID}/rejects.csv"),
    )
    _same_as_missing(
        get(f"/api/v1/imports/progress/{TOKEN}"), get("/api/v1/imports/progress/nosuchtoken1")
    )
    _same_as_missing(post("viettel"), post("zz"))
    _same_as_missing(get("/api/v1/carriers/viettel/status"), get("/api/v1/carriers/zz/status"))

    def report(code: str) -> Any:
        body = {"areas": [{"code": "18100", "state": "down", "note": ""}]}
        return client.put(f"/api/v1/carriers/{code}/status", json=body, headers=b)

    _same_as_missing(report("viettel"), report("zz"))

    # nothing of viettel's changed: one import, its progress, its coverage
    listed = client.get("/api/v1/carriers/viettel/imports", headers=mine).get_json()
    assert [i["id"] for i in listed] == [import_id]
    progress = client.get(f"/api/v1/imports/progress/{TOKEN}", headers=mine).get_json()
    assert progress["state"] == "done" and progress["import_id"] == import_id
    cover = client.get("/api/v1/carriers/viettel/coverage", headers=mine).get_json()
    assert cover == coverage_before and any(r["accepted"] for r in cover)
    # and mobifone's own list is still empty: the refused upload went nowhere
    own = client.get("/api/v1/carriers/mobifone/imports", headers=b).get_json()
    assert own == []


def test_another_carrier_gets_only_not_found_from_the_console(
    app: Flask, people: People, control_jobs: ControlJobs
) -> None:
    # plain clients: the `client` fixture keeps its request context (and user) open
    a = app.test_client()
    import_id = _viettel_import(a, people)
    b = app.test_client()
    login(b, "mobifone")
    csrf = page_csrf(b, "/carriers/mobifone")

    def upload(code: str) -> Any:
        return b.post(
            f"/carriers/{code}/upload",
            data={
                "csrf_token": csrf,
                "kind": "list",
                "file": (io.BytesIO(LIST_CSV.encode()), "x.csv"),
            },
            content_type="multipart/form-data",
        )

    def confirm(number: int) -> Any:
        return b.post(f"/carriers/imports/{number}/confirm-shrink", data={"csrf_token": csrf})

    _same_as_missing(b.get("/carriers/viettel"), b.get("/carriers/zz"))
    _same_as_missing(upload("viettel"), upload("zz"))
    _same_as_missing(b.get("/carriers/viettel/status"), b.get("/carriers/zz/status"))
    down = {"csrf_token": csrf, "area": "18100", "state": "down"}
    _same_as_missing(
        b.post("/carriers/viettel/status", data=down), b.post("/carriers/zz/status", data=down)
    )
    _same_as_missing(
        b.get(f"/carriers/viettel/uploads/{TOKEN}"), b.get("/carriers/viettel/uploads/nosuchtoken1")
    )
    # B's own carrier code with A's token: the token is A's, so still nothing
    _same_as_missing(
        b.get(f"/carriers/mobifone/uploads/{TOKEN}"),
        b.get("/carriers/mobifone/uploads/nosuchtoken1"),
    )
    _same_as_missing(
        b.get(f"/carriers/imports/{import_id}"), b.get(f"/carriers/imports/{MISSING_ID}")
    )
    _same_as_missing(
        b.get(f"/carriers/imports/{import_id}/rejects.csv"),
        b.get(f"/carriers/imports/{MISSING_ID}/rejects.csv"),
    )
    _same_as_missing(confirm(import_id), confirm(MISSING_ID))
    # the carriers index leads B to its own page only
    index = b.get("/carriers/")
    assert index.status_code == 302 and index.headers["Location"].endswith("/carriers/mobifone")
    own = b.get("/carriers/mobifone").get_data(as_text=True)
    assert not any(secret in own for secret in SECRETS)
    listed = a.get("/api/v1/carriers/viettel/imports", headers=people.auth("viettel"))
    assert [i["id"] for i in listed.get_json()] == [import_id]
