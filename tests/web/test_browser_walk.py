# ruff: noqa: F811  (the fixtures of test_browser.py, imported, are parameters here)
"""The main Vietnamese pages in a real browser, on a desktop and on a 375 px phone.

One walk: login, alerts list, draft form with its live preview, alert page, read-back, watch,
carriers, an import report, the admin pages, API tokens and the error pages. On every page:
no raw key, no English unit, no English CAP value, no English number format, no ISO or UTC
timestamp, Werkzeug's English error texts nowhere; the demo banner is shown (the gateways are
simulators); on the phone no page is wider than the screen. Test alerts are marked on the list
row, the alert page and the read-back.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.test_browser import (  # noqa: F401  (fixtures, shared)
    BODY,
    browser,
    draft,
    log_in,
    server,
)

pytestmark = pytest.mark.browser

PHONE = 375
CAP_ENGLISH = re.compile(
    r"\b(Urgency|Severity|Certainty|Unknown|Immediate|Expected|Future|Past|Extreme|Severe|"
    r"Moderate|Minor|Observed|Likely|Possible|Unlikely)\b"
)
ENGLISH_UNIT = re.compile(r"\d\s?(min|s|h|ms)\b|/s\b|\bmin\b")
ISO_OR_UTC = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}|\d:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]00:?00)\b|\bUTC\b"
)
RAW_KEY = re.compile(r"\b(?!loa_)[a-z][a-z0-9]*_[a-z0-9_]+\b")  # snake_case (not a loa_ token)
ENGLISH_THOUSANDS = re.compile(r"\d,\d{3}(?!\d)")
WERKZEUG = re.compile(
    r"Not Found|Method Not Allowed|Forbidden|Unauthorized|Bad Request|The requested URL|"
    r"Internal Server Error|The method is not allowed"
)
# A carrier code where its name belongs (a file name such as viettel.csv is not one).
CARRIER_CODE = re.compile(
    r"(?<![\w.@/-])(viettel|vinaphone|mobifone|vietnamobile|gmobile|itel|reddi)(?![\w.@/-])"
)
DEMO = "Bản trình diễn"
# An API token (its shown prefix: loa_ and eight random characters, as on the admin's users
# page) is no English word: its random tail read "loa_WmFc8x2s" as the English unit "2s".
API_TOKEN = re.compile(r"\bloa_[A-Za-z0-9_-]+")


def problems(text: str, *, usernames_shown: bool = False) -> list[str]:
    """What a Vietnamese reader should never see on a page (`text`: its visible text)."""
    found = []
    text = API_TOKEN.sub("loa_", text)
    for name, pattern in (
        ("English CAP value", CAP_ENGLISH),
        ("English unit", ENGLISH_UNIT),
        ("ISO or UTC timestamp", ISO_OR_UTC),
        ("raw key", RAW_KEY),
        ("English number format", ENGLISH_THOUSANDS),
        ("English HTTP error text", WERKZEUG),
    ):
        for match in pattern.finditer(text):
            start = max(0, match.start() - 40)
            found.append(f"{name}: {match.group(0)!r} in …{text[start : match.end() + 40]!r}")
    if not usernames_shown:
        found += [f"carrier code {m.group(0)!r}" for m in CARRIER_CODE.finditer(text)]
    for technical in ("UCS-2", "GSM 7-bit"):
        if technical in text and "có dấu" not in text and "không dấu" not in text:
            found.append(f"{technical} without its Vietnamese name")
    return found


class Walk:
    """Checks each page the walk reaches; every failure is reported at the end, by page."""

    def __init__(self, width: int | None) -> None:
        self.width = width
        self.failures: dict[str, list[str]] = {}
        self.seen: list[str] = []

    def check(self, page: Any, name: str, *, usernames_shown: bool = False, skip: str = "") -> None:
        """`skip`: a part of the page this walk does not judge (CSS selector)."""
        self.seen.append(name)
        page.wait_for_load_state("load")
        text = page.evaluate(
            """skip => { const body = document.body.cloneNode(true);
                if (skip) { body.querySelectorAll(skip).forEach(n => n.remove()); }
                document.documentElement.appendChild(body);
                const text = body.innerText; body.remove(); return text; }""",
            skip,
        )
        found = problems(text, usernames_shown=usernames_shown)
        if DEMO not in text:
            found.append("no demo banner")
        if self.width is not None:
            wide = page.evaluate("document.scrollingElement.scrollWidth")
            if wide > self.width:
                found.append(f"{wide} px wide on a {self.width} px screen")
        if found:
            self.failures[name] = found

    def assert_clean(self) -> None:
        assert not self.failures, "\n".join(
            f"{name}:\n  " + "\n  ".join(found) for name, found in self.failures.items()
        )


@pytest.mark.parametrize("width", [None, PHONE], ids=["desktop", "phone"])
def test_the_vietnamese_console_walk(
    server: dict[str, Any], browser: Any, width: int | None
) -> None:
    from webtools import PASSWORD

    from subscriber_import import service

    base, settings = server["url"], server["settings"]
    walk = Walk(width)
    path = settings.instance_path / "viettel.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"096{n:07d},18073" for n in range(1, 1201)] + ["x1,18073", "0241234567,18073"]
    path.write_text("so_thue_bao,ma_xa\n" + "\n".join(rows) + "\n")
    report = service.import_file(
        server["database"], settings, carrier_code="viettel", kind="list", path=path
    )

    viewport = {"viewport": {"width": width, "height": 800}} if width else {}
    anonymous = browser.new_context(locale="en-US", **viewport).new_page()
    anonymous.goto(f"{base}/login")
    walk.check(anonymous, "login")
    anonymous.fill("#username", "drafter")
    anonymous.fill("#password", PASSWORD + "-wrong")
    anonymous.click("#login-submit")
    walk.check(anonymous, "login refused")

    page = log_in(browser, base, "drafter", width=width)
    page.goto(f"{base}/alerts/")
    walk.check(page, "alerts list (empty)")
    draft(page, base)
    page.wait_for_function("document.getElementById('pv-total').textContent === '1.200'")
    page.wait_for_function("document.getElementById('pv-eta').textContent !== '—'")
    walk.check(page, "draft form with preview")
    if width is not None:  # the save button is on screen without scrolling past the areas
        page.evaluate("window.scrollTo(0, 0)")
        box = page.locator("#save-draft").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 800, box
    page.click("#save-draft")
    page.wait_for_selector("#do-submit")
    walk.check(page, "alert page (draft)")
    page.click("#do-submit")
    page.wait_for_selector('#alert-status[data-status="pending_approval"]')
    alert_url = page.url
    walk.check(page, "alert page (awaiting approval)")

    # A test alert: marked on the list row, the alert page and the read-back.
    draft(page, base, title="Diễn tập")
    page.select_option("#category", "test")
    page.click("#save-draft")
    page.wait_for_selector("#do-submit")
    assert page.is_visible("#test-banner")
    page.click("#do-submit")
    page.wait_for_selector('#alert-status[data-status="pending_approval"]')
    test_url = page.url
    walk.check(page, "test alert page")
    page.goto(f"{base}/alerts/")
    test_row = page.locator("#alerts tbody tr", has_text="Diễn tập")
    assert "test-row" in test_row.get_attribute("class")
    assert "THỬ NGHIỆM" in test_row.inner_text()
    assert "THỬ NGHIỆM" not in page.locator("#alerts tbody tr", has_text="Bão số 3").inner_text()
    walk.check(page, "alerts list")
    page.goto(f"{base}/alerts/999999")
    assert page.text_content("h1").startswith("404")
    walk.check(page, "error 404")
    page.goto(f"{base}/admin/users")
    assert page.text_content("h1").startswith("403")
    walk.check(page, "error 403")
    page.goto(f"{base}/logout")
    assert page.text_content("h1").startswith("405")
    walk.check(page, "error 405")
    page.goto(f"{base}/account/tokens")
    walk.check(page, "API tokens")

    approver = log_in(browser, base, "approver", width=width)
    approver.goto(test_url)
    approver.click("#do-approve")
    approver.wait_for_selector("#readback")
    assert approver.is_visible("#test-banner")
    assert approver.text_content("#rb-lead").startswith("Tin THỬ NGHIỆM")
    walk.check(approver, "read-back (test alert)")
    approver.goto(alert_url)
    walk.check(approver, "alert page (approver)")
    approver.check('input[name="waive_quiet_hours"]')
    approver.click("#do-approve")
    approver.wait_for_selector("#readback")
    walk.check(approver, "read-back")
    approver.click("#do-confirm-approve")
    approver.wait_for_selector("#watch")
    walk.check(approver, "watch")

    viettel = log_in(browser, base, "viettel", width=width)
    viettel.goto(f"{base}/carriers/")
    walk.check(viettel, "carriers")
    viettel.goto(f"{base}/carriers/viettel")
    walk.check(viettel, "carrier page")
    viettel.goto(f"{base}/carriers/imports/{report.import_id}")
    walk.check(viettel, "import report")

    admin = log_in(browser, base, "admin", width=width)
    admin.goto(f"{base}/carriers/")
    walk.check(admin, "carriers (admin: every carrier)")
    for name in ("users", "brandnames", "test-group", "audit"):
        admin.goto(f"{base}/admin/{name}")
        # The audit entries' contents (the actions and changes as recorded) are not judged here.
        skip = "#audit tbody" if name == "audit" else ""
        walk.check(admin, f"admin {name}", usernames_shown=name in ("users", "audit"), skip=skip)
    walk.assert_clean()
    assert len(walk.seen) == 24


def test_english_mode_keeps_the_english_forms(server: dict[str, Any], browser: Any) -> None:
    """In English the same preview says min and s, and numbers read 1,200."""
    from subscriber_import import service

    base, settings = server["url"], server["settings"]
    path = settings.instance_path / "viettel.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("so_thue_bao,ma_xa\n" + "".join(f"096{n:07d},18073\n" for n in range(1, 1201)))
    service.import_file(
        server["database"], settings, carrier_code="viettel", kind="list", path=path
    )
    page = log_in(browser, base, "drafter")
    page.click("#locale-switch")
    page.wait_for_function("document.querySelector('nav').textContent.includes('New alert')")
    draft(page, base, body=BODY)
    page.wait_for_function("document.getElementById('pv-total').textContent === '1,200'")
    assert page.text_content("#pv-encoding-name") == "with diacritics"
    assert re.fullmatch(r"\d+ s|\d+ min \d+ s", page.text_content("#pv-eta")), page.text_content(
        "#pv-eta"
    )
    assert DEMO not in page.inner_text("body") and "Demo" in page.inner_text("#demo-banner")
