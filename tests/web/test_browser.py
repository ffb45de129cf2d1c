"""The console in a real browser (Debian's chromium, headless, driven by Playwright).

A new user's path: drafter drafts in Vietnamese and sees the parts drop when folding, asks for
approval; approver approves; the report is exported. And the refusals: a drafter approving
their own alert, a carrier reading another carrier's import, a form without its CSRF token, a
script tag in an alert body.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from werkzeug.serving import make_server

from broadcast.areas import load_area_file
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BODY = "Bão số 3 đổ bộ vào Hà Tĩnh đêm nay. Người dân ở trong nhà, tránh xa bờ biển. " * 2

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not installed (apt-get install chromium; CI installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path, redis_url: str) -> Iterator[dict[str, Any]]:
    from conftest import add_people

    from tests.conftest import make_settings

    db_path = tmp_path / "loa.db"
    shutil.copyfile(sqlite_template, db_path)
    settings = make_settings(tmp_path, database_url=f"sqlite:///{db_path}", redis_url=redis_url)
    database = Database(settings.sqlalchemy_url)
    with database.session() as session:
        sync_carriers(session, settings)
        load_area_file(session, settings.areas_file)
    people = add_people(database)
    client = redis.Redis.from_url(redis_url)
    app = create_app(settings, database=database, redis_client=client)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {
        "url": f"http://127.0.0.1:{httpd.server_port}",
        "database": database,
        "settings": settings,
        "people": people,
    }
    httpd.shutdown()
    thread.join(10)
    client.close()
    database.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def log_in(browser: Any, base: str, username: str) -> Any:
    from webtools import PASSWORD

    # CSP bypassed for the test's own probes (wait_for_function evaluates strings): the
    # script-tag check then proves autoescaping alone keeps a body's script from running.
    page = browser.new_context(accept_downloads=True, bypass_csp=True).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#whoami")
    return page


def draft(page: Any, base: str, body: str = BODY, title: str = "Bão số 3") -> str:
    page.goto(f"{base}/alerts/new")
    page.fill("#title", title)
    page.fill("#body", body)
    for selector in ('input[data-area][value="436"]', 'input[data-carrier][value="viettel"]'):
        page.click(selector)
        page.wait_for_function(f"document.querySelector('{selector}').checked")
    page.fill("#brandname", "UBND HaTinh")
    page.wait_for_function("document.getElementById('pv-encoding').textContent === 'UCS-2'")
    return page


def test_draft_fold_submit_approve_export(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    page = log_in(browser, base, "drafter")
    draft(page, base)
    parts_ucs2 = int(page.text_content("#pv-parts"))
    assert page.locator("#pv-text mark").count() > 0  # the characters forcing UCS-2
    assert page.is_visible("#pv-folded")
    page.click("#use-folded")
    page.wait_for_function("document.getElementById('pv-encoding').textContent === 'GSM 7-bit'")
    parts_gsm = int(page.text_content("#pv-parts"))
    assert parts_gsm < parts_ucs2
    assert page.text_content("#pv-audience tbody").strip().startswith("Viettel")
    page.click("#save-draft")
    page.wait_for_selector("#do-submit")
    alert_url = page.url
    page.click("#do-submit")
    page.wait_for_selector('#alert-status[data-status="pending_approval"]')
    assert not page.is_visible("#do-approve")

    approver = log_in(browser, base, "approver")
    approver.goto(alert_url)
    approver.check('input[name="waive_quiet_hours"]')
    approver.click("#do-approve")
    approver.wait_for_selector('#alert-status[data-status="approved"]')
    assert "Đã phê duyệt" in approver.text_content("#alert-status")
    with approver.expect_download() as info:
        approver.click("#export-csv")
    path = info.value.path()
    assert Path(path).read_text().startswith("msisdn,carrier,state")


def test_refusals(server: dict[str, Any], browser: Any) -> None:
    from subscriber_import import service

    base = server["url"]
    page = log_in(browser, base, "drafter")
    draft(page, base, body="<script>window.pwned = 1</script> Mưa lớn", title="<b>x</b>")
    page.click("#save-draft")
    page.wait_for_selector("#do-submit")
    # a script tag in the body is text, never code
    assert "<script>window.pwned = 1</script>" in page.text_content("#alert-body")
    assert page.evaluate("window.pwned") is None
    assert page.text_content("#alert-title") == "<b>x</b>"
    page.click("#do-submit")
    page.wait_for_selector('#alert-status[data-status="pending_approval"]')
    # the drafter has no approve button; forging the form anyway is refused
    page.evaluate("""() => {
        const f = document.createElement('form'); f.method = 'post';
        f.action = location.pathname + '/approve';
        const t = document.createElement('input'); t.name = 'csrf_token';
        t.value = document.querySelector('meta[name=csrf-token]').content; f.appendChild(t);
        document.body.appendChild(f); f.submit(); }""")
    page.wait_for_selector("#error-message")
    assert page.text_content("h1").startswith("403")
    # a form without its CSRF token
    page.goto(f"{base}/alerts/new")
    page.evaluate("""() => { const f = document.getElementById('draft-form');
        f.querySelector('input[name=csrf_token]').remove(); f.submit(); }""")
    page.wait_for_selector("#error-message")
    assert page.text_content("h1").startswith("400")
    assert "Biểu mẫu đã hết hạn" in page.text_content("h1")
    # a carrier reading another carrier's import
    csv = Path(server["settings"].instance_path) / "vt.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("so_thue_bao,ma_huyen\n0961234501,436\n")
    report = service.import_file(
        server["database"], server["settings"], carrier_code="viettel", kind="list", path=csv
    )
    viettel = log_in(browser, base, "viettel")
    viettel.goto(f"{base}/carriers/imports/{report.import_id}")
    assert viettel.text_content("#import-status") == "succeeded"
    mobifone = log_in(browser, base, "mobifone")
    response = mobifone.goto(f"{base}/carriers/imports/{report.import_id}")
    assert response.status == 404
    assert "0961234501" not in mobifone.content()
