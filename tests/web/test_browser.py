"""The console in a real browser (Debian's chromium, headless, driven by Playwright).

A new user's path: drafter drafts in Vietnamese and sees the parts drop when folding, asks for
approval; approver approves; the report is exported. And the refusals: a drafter approving
their own alert, a carrier reading another carrier's import, a form without its CSRF token, a
script tag in an alert body.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from openpyxl import load_workbook
from werkzeug.serving import make_server

from broadcast.areas import load_area_file
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.web import create_app
from smpp_gateway.simulator import SimulatorConfig, SmscSimulator

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


WALK_CARRIERS = ("viettel", "vinaphone")
CREDENTIALS = {"viettel": ("loa_viettel", "demo-vt"), "vinaphone": ("loa_vina", "demo-vn")}


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path, redis_url: str) -> Iterator[dict[str, Any]]:
    """The console on a threaded server, each walk carrier's gateway pointing at a simulator
    of its own (ephemeral ports)."""
    from webtools import add_people

    from tests.conftest import make_settings

    sims = {}
    for code in WALK_CARRIERS:
        system_id, password = CREDENTIALS[code]
        sim = SmscSimulator(
            SimulatorConfig(
                system_id=system_id,
                password=password,
                receipt_delay=0.05,
                receipt_id_format="dec" if code == "vinaphone" else "hex",
                seed=5,
            )
        )
        sim.start()
        sims[code] = sim
    db_path = tmp_path / "loa.db"
    shutil.copyfile(sqlite_template, db_path)
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite:///{db_path}",
        redis_url=redis_url,
        carriers={c: {"gateway": {"port": s.port}} for c, s in sims.items()},
        delivery={"batch_size": 10},
    )
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
        "sims": sims,
    }
    httpd.shutdown()
    thread.join(10)
    client.close()
    database.dispose()
    for sim in sims.values():
        sim.stop()


class Workers:
    """`loa worker --control`, `--imports` and `--carrier CODE` for each carrier, as separate
    processes on the server's settings (what an operator runs); stopped with SIGTERM."""

    def __init__(self, settings: Any, carriers: tuple[str, ...]) -> None:
        env = {
            **os.environ,
            "LOA_INSTANCE_PATH": str(settings.instance_path),
            "LOA_DATABASE_URL": settings.database_url,
            "LOA_REDIS_URL": settings.redis_url,
            "LOA_LOG_LEVEL": "WARNING",
            "LOA_DELIVERY__BATCH_SIZE": str(settings.delivery.batch_size),
        }
        for code in carriers:
            env[f"LOA_CARRIERS__{code.upper()}__GATEWAY__PORT"] = str(
                settings.carrier(code).gateway.port
            )
        base = [sys.executable, "-c", "from broadcast.cli import main; main()", "worker"]
        roles = [["--control"], ["--imports"]] + [["--carrier", code] for code in carriers]
        self.logs = [settings.instance_path / f"worker-{i}.log" for i in range(len(roles))]
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        self.children = []
        for role, log in zip(roles, self.logs, strict=True):
            with log.open("wb") as out:
                self.children.append(
                    subprocess.Popen([*base, *role], env=env, stdout=out, stderr=out)
                )

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)


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
    # An English-speaking browser (Chromium's Accept-Language en-US): the console must still
    # come up in Vietnamese.
    context = browser.new_context(accept_downloads=True, bypass_csp=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login")
    assert page.text_content("h1") == "Đăng nhập"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#whoami")
    return page


def draft(
    page: Any,
    base: str,
    body: str = BODY,
    title: str = "Bão số 3",
    carriers: tuple[str, ...] = ("viettel",),
) -> str:
    page.goto(f"{base}/alerts/new")
    page.fill("#title", title)
    page.fill("#body", body)
    chosen = [f'input[data-carrier][value="{code}"]' for code in carriers]
    for selector in ['input[data-area][value="436"]', *chosen]:
        page.click(selector)
        page.wait_for_function(f"document.querySelector('{selector}').checked")
    page.fill("#brandname", "UBND HaTinh")
    page.wait_for_function("document.getElementById('pv-encoding').textContent === 'UCS-2'")
    return page


def _numbers(prefix: str, count: int) -> list[str]:
    return [f"0{prefix}{n:07d}" for n in range(1, count + 1)]


def test_upload_draft_fold_approve_send_to_100_percent_and_export(
    server: dict[str, Any], browser: Any
) -> None:
    """The whole path against the simulators, with the workers an operator runs."""
    from subscriber_import import service

    base, settings = server["url"], server["settings"]
    viettel_numbers = _numbers("96", 20)
    vina_numbers = _numbers("91", 15)
    workers = Workers(settings, WALK_CARRIERS)
    try:
        # Viettel uploads its list in the browser; the control worker imports it.
        upload = settings.instance_path / "viettel-list.csv"
        upload.write_text(
            "so_thue_bao,ma_huyen\n" + "".join(f"{n},436\n" for n in viettel_numbers) + "x1,436\n"
        )
        viettel = log_in(browser, base, "viettel")
        viettel.set_input_files("#upload-file", str(upload))
        viettel.click("#upload-submit")
        viettel.wait_for_selector("#import-status", timeout=20_000)
        status = viettel.locator("#import-status")
        assert status.get_attribute("data-status") == "succeeded", workers.output()
        assert status.text_content() == "Thành công"  # the console speaks Vietnamese
        assert viettel.is_visible("#rejects-download")
        vina = settings.instance_path / "vina-list.csv"
        vina.write_text("so_thue_bao,ma_huyen\n" + "".join(f"{n},436\n" for n in vina_numbers))
        service.import_file(
            server["database"], settings, carrier_code="vinaphone", kind="list", path=vina
        )

        page = log_in(browser, base, "drafter")
        draft(page, base, carriers=WALK_CARRIERS)
        parts_ucs2 = int(page.text_content("#pv-parts"))
        assert page.locator("#pv-text mark").count() > 0  # the characters forcing UCS-2
        assert page.is_visible("#pv-folded")
        page.click("#use-folded")
        page.wait_for_function("document.getElementById('pv-encoding').textContent === 'GSM 7-bit'")
        parts_gsm = int(page.text_content("#pv-parts"))
        assert parts_gsm < parts_ucs2
        audience = page.text_content("#pv-audience tbody")
        assert audience.strip().startswith("Viettel") and "20" in audience and "15" in audience
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
        approver.wait_for_selector("#watch")
        # The watch page polls: every carrier's bar, and the total, reach 100%.
        try:
            approver.wait_for_function(
                """() => document.getElementById('w-percent').textContent === '100'
                    && document.querySelector('#alert-status').dataset.status === 'completed'""",
                timeout=40_000,  # 15 s alone; margin for a loaded shared machine
            )
        except sync_api.TimeoutError:
            raise AssertionError(
                f"progress {approver.text_content('#w-percent')}%\n{workers.output()}"
            ) from None
    finally:
        workers.stop()
    bars = approver.locator('#w-carriers [role="progressbar"]')
    assert bars.count() == 2
    assert [bars.nth(i).get_attribute("aria-valuenow") for i in range(2)] == ["100", "100"]
    assert approver.get_attribute("#w-total", "aria-valuenow") == "100"
    for code, count in (("viettel", 20), ("vinaphone", 15)):
        row = approver.locator(f'#w-carriers tr[data-carrier="{code}"]')
        assert row.locator('[data-k="percent"]').text_content() == "100"
        assert row.locator('[data-k="delivered"]').text_content() == str(count)
    assert approver.text_content("#alert-status") == "Hoàn tất"

    expected = {"84" + n[1:]: "viettel" for n in viettel_numbers}
    expected |= {"84" + n[1:]: "vinaphone" for n in vina_numbers}
    with approver.expect_download() as info:
        approver.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert {r["msisdn"]: r["carrier"] for r in rows} == expected
    assert len(rows) == 35 and {r["state"] for r in rows} == {"delivered"}
    with approver.expect_download() as info:
        approver.click("#export-xlsx")
    assert info.value.suggested_filename.endswith("-report.xlsx")
    book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    sheet = list(book.active.iter_rows(values_only=True))
    book.close()
    header = list(sheet[0])
    assert header[:3] == ["msisdn", "carrier", "state"]
    assert {r[0]: r[1] for r in sheet[1:]} == expected
    assert {r[2] for r in sheet[1:]} == {"delivered"}
    # what the carriers' SMSCs received: each number once, as the folded (GSM) text
    for code, numbers in (("viettel", viettel_numbers), ("vinaphone", vina_numbers)):
        received = [r.destination_addr for r in server["sims"][code].submits() if r.error is None]
        assert sorted(set(received)) == sorted("84" + n[1:] for n in numbers)


def test_vietnamese_first_in_an_english_browser(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    page = browser.new_context(locale="en-US").new_page()
    page.goto(f"{base}/login")
    assert page.evaluate("navigator.language") == "en-US"
    assert page.evaluate("document.documentElement.lang") == "vi"
    assert page.text_content("h1") == "Đăng nhập"
    page.click("#locale-switch")  # the person chooses English
    page.wait_for_function("document.querySelector('h1').textContent === 'Log in'")
    from webtools import PASSWORD

    page.fill("#username", "drafter")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#whoami")
    assert "New alert" in page.text_content("nav")
    page.click("#locale-switch")
    page.wait_for_function("document.querySelector('nav').textContent.includes('Soạn cảnh báo')")


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
    assert viettel.get_attribute("#import-status", "data-status") == "succeeded"
    mobifone = log_in(browser, base, "mobifone")
    response = mobifone.goto(f"{base}/carriers/imports/{report.import_id}")
    assert response.status == 404
    assert "0961234501" not in mobifone.content()
