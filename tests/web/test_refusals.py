"""Refusals of the core, said in the reader's language: once, in Vietnamese or English, on the
console's pages (flash and error page) and in the API's `message` (the request's language),
with the machine-readable `code` unchanged."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from webtools import ALERT, People, login, page_csrf

from broadcast.web.refusals import REFUSALS

ROOT = Path(__file__).resolve().parents[2]

# Words of the core's English refusals: none may reach a Vietnamese page.
ENGLISH = re.compile(
    r"\b(refused|unknown|not allowed|cannot|is required|at most|must|not found|"
    r"check|is all digits|already|only the|needs the)\b",
    re.I,
)


def _reasons() -> dict[str, set[str]]:
    """Every Reason the code makes: its key and the names of its parameters."""
    found: dict[str, set[str]] = {}
    for path in [*ROOT.joinpath("broadcast").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Reason":
                key = node.args[0]
                assert isinstance(key, ast.Constant), f"{path}: a Reason key must be literal"
                found.setdefault(key.value, set()).update(k.arg for k in node.keywords if k.arg)
    return found


def test_every_reason_of_the_core_has_words_in_the_console() -> None:
    reasons = _reasons()
    assert len(reasons) > 90
    missing = sorted(set(reasons) - set(REFUSALS))
    assert not missing, f"no console text for {missing}"
    for key, params in reasons.items():
        named = set(re.findall(r"%\((\w+)\)s", REFUSALS[key]._args[0]))
        assert named <= params, f"{key}: the console text names {named - params}, not given"


def _said(page: str) -> list[str]:
    """What a page says to refuse: its flashed errors, the error page's message and details."""
    found = re.findall(r'<p class="flash error" role="status">(.*?)</p>', page, re.S)
    found += re.findall(r'<p id="error-message">(.*?)</p>', page, re.S)
    found += re.findall(r'<ul class="details">(.*?)</ul>', page, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", t)).split()) for t in found]


def _choose(client: FlaskClient, locale: str) -> None:
    client.post(f"/locale/{locale}", data={"csrf_token": page_csrf(client, "/alerts/")})


def _draft(client: FlaskClient, **over: object) -> str:
    form = {
        "title": "Mưa lớn",
        "body": "Mưa lớn tại Hà Tĩnh",
        "category": "warning",
        "areas": ["18073"],
        "carriers": ["viettel"],
        "brandname": "UBND HaTinh",
        "urgency": "Expected",
        "severity": "Moderate",
        "certainty": "Likely",
        **over,
    }
    done = client.post("/alerts/new", data={**form, "csrf_token": page_csrf(client, "/alerts/new")})
    return done.get_data(as_text=True) if done.status_code != 302 else done.headers["Location"]


# Each refusal: who, what they do, and a phrase that must be said exactly once (vi, en).
WALK = [
    (
        "drafter",
        "draft",
        ("“123” chỉ gồm chữ số", "“123” is only digits"),
        ("Tên định danh (brandname)", "Sender brandname"),
    ),
    (
        "approver",
        "pause a draft",
        ("không thể tạm dừng lúc này", "cannot be paused now"),
        ("Bản nháp", "Draft"),
    ),
    ("approver", "approve own", ("không thể tự phê duyệt", "cannot approve their own"), None),
    (
        "drafter",
        "no such alert",
        ("Không có cảnh báo số 999999", "Alert 999999 does not exist"),
        None,
    ),
    (
        "admin",
        "brandname",
        ("“12345678901234” có 14 ký tự; tối đa 11", "“12345678901234” has 14 characters"),
        ("Tên định danh bị từ chối", "The brandname was refused"),
    ),
    (
        "admin",
        "test group",
        ("“12ab” không phải số di động Việt Nam", "“12ab” is not a Vietnamese mobile number"),
        ("nhà mạng “nosuch” không tồn tại", "unknown carrier “nosuch”"),
    ),
    (
        "admin",
        "drill",
        ("40 không phải một ngày từ 1 đến 28", "40 is not a day from 1 to 28"),
        ("Lịch diễn tập định kỳ bị từ chối", "The recurring drill was refused"),
    ),
    (
        "viettel",
        "network",
        ("“burning” không phải một tình trạng mạng", "“burning” is not a network state"),
        ("Tình trạng mạng bị từ chối", "The network status was refused"),
    ),
]


def _refuse(client: FlaskClient, what: str) -> str:
    """Do what is refused as a person would with the console; the page it ends on."""
    if what == "draft":
        return _draft(client, brandname="123", web="ftp://x")
    if what == "pause a draft":
        return client.post(
            f"{_draft(client)}/pause",
            data={"csrf_token": page_csrf(client)},
            follow_redirects=True,
        ).get_data(as_text=True)
    if what == "approve own":
        location = _draft(client)
        client.post(f"{location}/submit", data={"csrf_token": page_csrf(client)})
        return client.post(
            f"{location}/approve",
            data={"csrf_token": page_csrf(client), "version": "2", "waive_quiet_hours": "1"},
        ).get_data(as_text=True)
    if what == "no such alert":
        return client.get("/alerts/999999").get_data(as_text=True)
    if what == "brandname":
        token = page_csrf(client, "/admin/brandnames")
        return client.post(
            "/admin/brandnames", data={"name": "12345678901234", "csrf_token": token}
        ).get_data(as_text=True)
    if what == "test group":
        token = page_csrf(client, "/admin/test-group")
        form = {"msisdn": "12ab", "carrier": "nosuch", "name": "A", "csrf_token": token}
        return client.post("/admin/test-group", data=form).get_data(as_text=True)
    if what == "drill":
        token = page_csrf(client, "/admin/drills")
        form = {
            "title": "Diễn tập",
            "body": "Diễn tập báo động",
            "brandname": "UBND HaTinh",
            "at_time": "09:00",
            "day_of_month": "40",
            "lead_days": "7",
            "areas": ["18073"],
            "carriers": ["viettel"],
            "csrf_token": token,
        }
        return client.post("/admin/drills", data=form).get_data(as_text=True)
    assert what == "network"
    token = page_csrf(client, "/carriers/viettel/status")
    form = {"area": "18073", "state": "burning", "note": "", "csrf_token": token}
    return client.post("/carriers/viettel/status", data=form, follow_redirects=True).get_data(
        as_text=True
    )


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_refusals_walked_through_the_console_are_said_once_in_the_readers_language(
    app: Flask, people: People, locale: str
) -> None:
    vi = locale == "vi"
    for who, what, phrase, also in WALK:
        client = app.test_client()
        login(client, who)
        _choose(client, locale)
        page = _refuse(client, what)
        said = _said(page)
        assert said, f"{what}: nothing refused on the page"
        text = " | ".join(said)
        wanted = phrase[0] if vi else phrase[1]
        assert text.count(wanted) == 1, f"{what}: {wanted!r} not said once in {text!r}"
        if also:
            assert text.count(also[0] if vi else also[1]) == 1, f"{what}: {text!r}"
        if vi:
            english = ENGLISH.findall(text)
            assert not english, f"{what}: English {english} on a Vietnamese page: {text!r}"
            assert phrase[1] not in text


def test_the_api_says_a_refusal_in_the_requests_language_and_keeps_its_code(
    client: FlaskClient, people: People
) -> None:
    sent = {**ALERT, "brandname": "123"}
    answers = {}
    for language in ("vi-VN,vi;q=0.9", "en-US,en;q=0.8", None):
        headers = people.auth("drafter")
        if language:
            headers["Accept-Language"] = language
        refused = client.post("/api/v1/alerts", json=sent, headers=headers)
        assert refused.status_code == 422
        answers[language] = refused.get_json()["error"]
    vi, en, plain = answers.values()
    assert vi["code"] == en["code"] == plain["code"] == "validation_failed"
    assert vi["details"] == en["details"] and list(vi["details"]) == ["brandname"]
    assert "“123” chỉ gồm chữ số" in vi["message"] and not ENGLISH.search(vi["message"])
    assert "“123” is only digits" in en["message"]
    assert plain["message"] == vi["message"]  # no header: the token user's language (vi)
