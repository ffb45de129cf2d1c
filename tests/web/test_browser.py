"""The console in a real browser (Debian's chromium, headless, driven by Playwright).

A new user's path: drafter drafts in Vietnamese and sees the parts drop when folding, asks for
approval; approver approves; the report is exported. And the refusals: a drafter approving
their own alert, a carrier reading another carrier's import, a form without its CSRF token, a
script tag in an alert body, an approval from a page the author changed meanwhile.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from browsertools import CHROMIUM, WorkerForks
from openpyxl import load_workbook
from werkzeug.serving import make_server

from broadcast.areas import load_configured_areas
from broadcast.bootstrap import sync_carriers
from broadcast.db import Database
from broadcast.web import create_app
from smpp_gateway.simulator import SimulatorConfig, SmscSimulator
from tests.conftest import REQUIRE_BROWSER, require_or_skip

pytestmark = pytest.mark.browser

BODY = "Bão số 3 đổ bộ vào Hà Tĩnh đêm nay. Người dân ở trong nhà, tránh xa bờ biển. " * 2

try:
    from playwright import sync_api
except ImportError as exc:
    require_or_skip(REQUIRE_BROWSER, "LOA_REQUIRE_BROWSER", f"playwright is not installed: {exc}")
if not CHROMIUM.exists():
    require_or_skip(
        REQUIRE_BROWSER,
        "LOA_REQUIRE_BROWSER",
        f"{CHROMIUM} not installed (apt-get install chromium; CI installs it)",
    )


WALK_CARRIERS = ("viettel", "vinaphone")
CREDENTIALS = {"viettel": ("loa_viettel", "demo-vt"), "vinaphone": ("loa_vina", "demo-vn")}


@pytest.fixture
def server(
    tmp_path: Path, sqlite_template: Path, redis_url: str, worker_forks: WorkerForks
) -> Iterator[dict[str, Any]]:
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
        load_configured_areas(session, settings)
    people = add_people(database)
    client = redis.Redis.from_url(redis_url)
    app = create_app(settings, database=database, redis_client=client)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    workers: list[Workers] = []
    yield {
        "url": f"http://127.0.0.1:{httpd.server_port}",
        "database": database,
        "settings": settings,
        "people": people,
        "sims": sims,
        "forks": worker_forks,
        "workers": workers,
    }
    for started in workers:  # stopped already, or now: before their database and simulators go
        started.stop()
    httpd.shutdown()
    thread.join(10)
    client.close()
    database.dispose()
    for sim in sims.values():
        sim.stop()


class Workers:
    """`loa worker --control`, `--imports` and `--carrier CODE` for each carrier, as separate
    processes on the server's settings (what an operator runs); stopped with SIGTERM.

    `control` and `imports` False leave out a worker the test gives no job to. The processes
    are forked from the test process's fork parent (`worker_forks`), which has the workers'
    modules imported already; each runs the `loa worker` command as it would from a shell."""

    def __init__(
        self,
        server: dict[str, Any],
        carriers: tuple[str, ...],
        *,
        control: bool = True,
        imports: bool = True,
    ) -> None:
        settings = server["settings"]
        self.forks: WorkerForks = server["forks"]
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
        roles = [["--control"]] if control else []
        roles += [["--imports"]] if imports else []
        roles += [["--carrier", code] for code in carriers]
        self.logs = [settings.instance_path / f"worker-{i}.log" for i in range(len(roles))]
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        self.children = [
            self.forks.start(["worker", *role], env, log)
            for role, log in zip(roles, self.logs, strict=True)
        ]
        self.asked_to_stop = False
        server["workers"].append(self)  # its teardown stops them if the test did not

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)

    def request_stop(self) -> None:
        """SIGTERM to each (once: a second one forces the stop); they finish on their own
        while the test reads on (an idle worker takes seconds: RQ's own pub/sub wait),
        and `stop()` or the server's teardown waits for them."""
        if not self.asked_to_stop:
            for child in self.children:
                self.forks.signal(child, signal.SIGTERM)
        self.asked_to_stop = True

    def stop(self) -> None:
        self.request_stop()
        for child in self.children:
            if self.forks.wait(child, 10) is None:
                self.forks.signal(child, signal.SIGKILL)
                self.forks.wait(child, 5)


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The test process's Chromium (`chromium`, launched once); every context a test opens is
    closed after it, so no page polls on and no cookie, storage or cache reaches the next test."""
    for context in chromium.contexts:  # a context an interrupted test left open
        context.close()
    yield chromium
    for context in chromium.contexts:
        context.close()


def log_in(browser: Any, base: str, username: str, width: int | None = None) -> Any:
    """A fresh browser context logged in as `username` (`width`: a phone's viewport)."""
    from webtools import PASSWORD

    # CSP bypassed for the test's own probes (wait_for_function evaluates strings): the
    # script-tag check then proves autoescaping alone keeps a body's script from running.
    # An English-speaking browser (Chromium's Accept-Language en-US): the console must still
    # come up in Vietnamese.
    viewport = {"viewport": {"width": width, "height": 800}} if width else {}
    context = browser.new_context(
        accept_downloads=True, bypass_csp=True, locale="en-US", **viewport
    )
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
    page.fill("input[data-area-search]", "thanh sen")  # the picker's search, no diacritics
    chosen = [f'input[data-carrier][value="{code}"]' for code in carriers]
    for selector in ['input[data-area][value="18073"]', *chosen]:
        page.click(selector)
        page.wait_for_function(f"document.querySelector('{selector}').checked")
    page.fill("#brandname", "UBND HaTinh")
    page.wait_for_function("document.getElementById('pv-encoding').textContent === 'UCS-2'")
    return page


# The watch page's figures, checked by the page itself 20 times a second while it polls: each
# carrier's columns add up to its total (no recipient in no column), 100 % only once the alert
# is completed, and no time left shown after it. What broke a rule is kept in window.__watch.
WATCH_RULES = """() => {
    const seen = window.__watch = {samples: 0, broken: []};
    const count = (tr, k) => parseInt(
        tr.querySelector(`[data-k="${k}"]`).textContent.replace(/\\D/g, "") || "0", 10);
    const check = () => {
        const status = document.querySelector("#alert-status").dataset.status;
        const percent = document.getElementById("w-percent").textContent;
        const eta = document.getElementById("w-eta").textContent;
        document.querySelectorAll("#w-carriers tbody tr").forEach((tr) => {
            const columns = ["waiting", "submitted", "delivered", "failed", "cancelled"]
                .reduce((sum, k) => sum + count(tr, k), 0);
            if (columns !== count(tr, "total")) {
                seen.broken.push(`${tr.dataset.carrier}: ${columns} in the columns, `
                    + `${count(tr, "total")} in all (${status})`);
            }
        });
        if (percent === "100" && status !== "completed" && status !== "cancelled") {
            seen.broken.push(`100 % while ${status}`);
        }
        if ((status === "completed" || status === "cancelled") && eta !== "—") {
            seen.broken.push(`time left ${eta} once ${status}`);
        }
        seen.samples += 1;
    };
    check();
    setInterval(check, 50);
}"""


def watch_rules_kept(page: Any) -> int:
    """The samples the page took; fails naming each broken rule."""
    seen = page.evaluate("window.__watch")
    assert seen["broken"] == [], seen["broken"][:10]
    return int(seen["samples"])


def more_samples(page: Any, count: int) -> None:
    """Wait until the page checked its rules `count` more times (every 50 ms, or less often on
    a loaded machine: polled, never a fixed sleep)."""
    taken = page.evaluate("window.__watch.samples")
    page.wait_for_function("(n) => window.__watch.samples >= n", arg=taken + count)


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
    workers = Workers(server, WALK_CARRIERS)
    try:
        # Viettel uploads its list in the browser; the control worker imports it.
        upload = settings.instance_path / "viettel-list.csv"
        upload.write_text(
            "so_thue_bao,ma_xa\n" + "".join(f"{n},18073\n" for n in viettel_numbers) + "x1,18073\n"
        )
        viettel = log_in(browser, base, "viettel")
        viettel.set_input_files("#upload-file", str(upload))
        viettel.click("#upload-submit")
        viettel.wait_for_selector("#import-status", timeout=20_000)
        assert viettel.get_attribute("#import-status", "data-status") == "succeeded", (
            workers.output()
        )
        assert viettel.is_visible("#rejects-download")
        vina = settings.instance_path / "vina-list.csv"
        vina.write_text("so_thue_bao,ma_xa\n" + "".join(f"{n},18073\n" for n in vina_numbers))
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
        approver.click("#do-approve")  # reads back first: 35 people, two carriers
        assert approver.text_content("#rb-total") == "35"
        approver.click("#do-confirm-approve")
        approver.wait_for_selector("#watch")
        approver.evaluate(WATCH_RULES)
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
        workers.request_stop()  # no more work for them: they end as the page is read
    bars = approver.locator('#w-carriers [role="progressbar"]')
    assert bars.count() == 2
    assert [bars.nth(i).get_attribute("aria-valuenow") for i in range(2)] == ["100", "100"]
    assert approver.get_attribute("#w-total", "aria-valuenow") == "100"
    for code, count in (("viettel", 20), ("vinaphone", 15)):
        row = approver.locator(f'#w-carriers tr[data-carrier="{code}"]')
        assert row.locator('[data-k="percent"]').text_content() == "100"
        assert row.locator('[data-k="delivered"]').text_content() == str(count)
        # The pace the carrier is sent at: its whole limit, its SMSC never asked to slow down.
        assert row.locator('[data-k="rate_limit"]').text_content() == str(
            settings.carrier(code).mps
        )
    assert approver.text_content("#alert-status") == "Hoàn tất"
    more_samples(approver, 5)  # a few samples of the completed page too
    assert watch_rules_kept(approver) > 10
    assert approver.text_content("#w-eta") == "—"

    assert approver.text_content("#w-reached") == "35"  # the totals: reached and failed
    assert approver.text_content("#w-failed") == "0"
    assert approver.is_hidden("#w-reasons-box")  # no failure, no reasons

    expected = {"84" + n[1:]: "Viettel" for n in viettel_numbers}
    expected |= {"84" + n[1:]: "VinaPhone" for n in vina_numbers}
    with approver.expect_download() as info:
        approver.click("#export-csv")
    assert "Đang tạo báo cáo" in approver.text_content("#export-status")  # not a dead click
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["Số thuê bao"]: r["Nhà mạng"] for r in rows} == expected
    assert len(rows) == 35 and {r["Trạng thái"] for r in rows} == {"Đã nhận"}
    assert {r["Mã xã/phường"] for r in rows} <= {"18073", ""}
    with approver.expect_download() as info:
        approver.click("#export-xlsx")
    assert info.value.suggested_filename.endswith("-report.xlsx")
    book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    assert book.sheetnames == ["Tổng hợp", "Theo xã, phường", "Người nhận"]
    communes = list(book.worksheets[1].iter_rows(min_row=2, values_only=True))
    assert all(r[3] == r[2] and r[5] == 100.0 for r in communes)  # everyone was reached
    sheet = list(book.worksheets[2].iter_rows(values_only=True))
    header = list(sheet[0])
    assert header[:3] == ["Số thuê bao", "Nhà mạng", "Mã xã/phường"]
    assert {r[0]: r[1] for r in sheet[1:]} == expected
    assert {r[4] for r in sheet[1:]} == {"Đã nhận"}
    # the summary an official attaches to the report: recipients, delivered, failed,
    # cancelled, not final yet, per carrier and in all
    summary = {
        str(r[0]): list(r[1:6])
        for r in book.worksheets[0].iter_rows(values_only=True)
        if r[0] in ("Viettel", "VinaPhone", "Tổng")
    }
    assert summary == {
        "Viettel": [20, 20, 0, 0, 0],
        "VinaPhone": [15, 15, 0, 0, 0],
        "Tổng": [35, 35, 0, 0, 0],
    }
    book.close()
    # what the carriers' SMSCs received: each number once, as the folded (GSM) text
    for code, numbers in (("viettel", viettel_numbers), ("vinaphone", vina_numbers)):
        received = [r.destination_addr for r in server["sims"][code].submits() if r.error is None]
        assert sorted(set(received)) == sorted("84" + n[1:] for n in numbers)


def test_area_picker_groups_the_communes_and_finds_them_without_diacritics(
    server: dict[str, Any], browser: Any
) -> None:
    page = log_in(browser, server["url"], "drafter")
    page.goto(f"{server['url']}/alerts/new")
    summaries = page.locator("details[data-area-group] > summary").all_text_contents()
    assert [" ".join(s.split()) for s in summaries] == ["Phường (9)", "Xã (60)"]
    assert page.locator("input[data-area]").count() == 70
    assert not page.is_visible('input[data-area][value="18196"]')  # groups start closed

    page.fill("input[data-area-search]", "son kim")
    visible = [
        " ".join(t.split())
        for t in page.locator("li[data-area-item]:visible > label").all_text_contents()
    ]
    assert visible == ["Tỉnh Hà Tĩnh 42", "Xã Sơn Kim 1 18196", "Xã Sơn Kim 2 18199"]
    assert not page.is_visible("details[data-area-group='ward']")
    page.click('input[data-area][value="18196"]')
    page.wait_for_function(
        "document.querySelector(\"details[data-area-group='commune'] [data-picked]\")"
        ".textContent === '✓ 1'"
    )
    page.press("input[data-area-search]", "Enter")  # never submits the draft
    page.fill("input[data-area-search]", "khong co dau")
    assert page.is_visible("[data-area-none]")
    assert page.url.endswith("/alerts/new")


def test_a_preview_lost_on_the_way_is_asked_again(server: dict[str, Any], browser: Any) -> None:
    """The draft's encoding and parts come from /api/v1/preview as the text changes. An
    answer lost on the way (here the first two are 500s: the page's own on loading, then the
    one for the typed text) is asked again a second later, so the page does not keep showing
    what an older text, or no text, would be."""
    page = log_in(browser, server["url"], "drafter")
    lost: list[str] = []

    def busy_twice(route: Any) -> None:
        if len(lost) < 2:
            lost.append(route.request.url)
            route.fulfill(status=500, body="busy")
        else:
            route.continue_()

    page.route("**/api/v1/preview", busy_twice)
    page.goto(f"{server['url']}/alerts/new")
    page.fill("#body", "Bão số 3 đổ bộ vào Hà Tĩnh")
    page.wait_for_function("document.getElementById('pv-encoding').textContent === 'UCS-2'")
    assert len(lost) == 2
    assert page.text_content("#pv-parts") == "1"


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
    csv.write_text("so_thue_bao,ma_xa\n0961234501,18073\n")
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


def test_a_shrinking_list_asks_for_confirmation_without_a_second_upload(
    server: dict[str, Any], browser: Any
) -> None:
    """Refused with both counts, nothing changed; one click imports the held file; a stale
    page cannot confirm twice. Then the drafter is warned of the short list."""
    from sqlalchemy import select

    from broadcast.models import AuditEntry
    from subscriber_import import service

    base, settings, database = server["url"], server["settings"], server["database"]

    def in_list() -> int:
        with database.session() as session:
            return service.active_count(session, carrier_code="viettel")

    workers = Workers(server, ())
    try:
        viettel = log_in(browser, base, "viettel")
        for name, count in (("full.csv", 1200), ("short.csv", 3)):
            path = settings.instance_path / name
            path.write_text(
                "so_thue_bao,ma_xa\n" + "".join(f"{n},18073\n" for n in _numbers("96", count))
            )
            viettel.goto(f"{base}/carriers/viettel")
            viettel.set_input_files("#upload-file", str(path))
            viettel.click("#upload-submit")
            viettel.wait_for_selector("#import-status", timeout=30_000)
        assert viettel.get_attribute("#import-status", "data-status") == "rejected"
        assert viettel.text_content("#shrink-current") == "1.200"
        assert viettel.text_content("#shrink-new") == "3"
        assert "từ 1.200 xuống 3 số" in viettel.text_content("#shrink")
        assert in_list() == 1200  # nothing changed
        refused_page = viettel.url

        viettel.click("#shrink-confirm")
        viettel.wait_for_selector('#import-status[data-status="succeeded"]', timeout=30_000)
        assert viettel.is_visible("#shrink-confirmed"), workers.output()
        assert in_list() == 3
        with database.session() as session:
            entry = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "import.list")
                .order_by(AuditEntry.id.desc())
            ).first()
            assert entry.after["shrink_confirmed"] is True
            assert entry.actor == f"user:{server['people'].ids['viettel']}"
        # The counts below are imported in the test process: the workers have no more jobs and
        # end while the pages are read (`stop()` below waits for them).
        workers.request_stop()
        viettel.goto(refused_page)  # the file was taken: no second confirmation
        assert viettel.locator("#shrink-confirm").count() == 0

        # counts far above the list: the coverage page flags the area, the draft page warns
        counts = settings.instance_path / "counts.csv"
        counts.write_text("ma_xa,so_luong,ngay\n18073,99935,2026-01-15\n")
        service.import_file(database, settings, carrier_code="viettel", kind="counts", path=counts)
        viettel.goto(f"{base}/carriers/viettel")
        row = viettel.locator('#coverage tr[data-area="18073"]')
        assert "short" in row.get_attribute("class") and "99.935" in row.text_content()
        page = log_in(browser, base, "drafter")
        draft(page, base)
        page.wait_for_selector("#pv-warnings li", state="visible")
        warning = page.text_content('#pv-warnings li[data-carrier="viettel"]')
        assert "Viettel" in warning and "99.935" in warning and " 3 " in warning
    finally:
        workers.stop()


def _api(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    import json
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (the test's own local server)
        f"{base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.load(answer)


def test_a_stale_page_does_not_approve(server: dict[str, Any], browser: Any) -> None:
    base, token = server["url"], server["people"].tokens["drafter"]
    alert = {
        "title": "Lũ quét",
        "body": "Lũ quét tại Hương Khê trong 2 giờ tới.",
        "category": "emergency",
        "areas": ["18073"],
        "carriers": ["viettel"],
        "brandname": "UBND HaTinh",
    }
    aid = _api(base, token, "POST", "/api/v1/alerts", alert)["id"]
    _api(base, token, "POST", f"/api/v1/alerts/{aid}/submit")
    approver = log_in(browser, base, "approver")
    approver.goto(f"{base}/alerts/{aid}")
    approver.wait_for_selector("#do-approve")
    # while the approver reads, the author withdraws, rewrites and resubmits
    _api(base, token, "POST", f"/api/v1/alerts/{aid}/withdraw")
    _api(base, token, "PUT", f"/api/v1/alerts/{aid}", {**alert, "body": "Không có lũ."})
    _api(base, token, "POST", f"/api/v1/alerts/{aid}/submit")
    approver.click("#do-approve")  # the read-back step checks the version read
    approver.wait_for_selector(".flash.error")
    message = approver.text_content(".flash.error")
    assert "đã đọc phiên bản 1, nay là phiên bản 2" in message and "Chưa phê duyệt" in message
    assert approver.get_attribute("#alert-status", "data-status") == "pending_approval"
    assert "Không có lũ." in approver.text_content("#alert-body")
    approver.click("#do-approve")  # the page now shows version 2
    approver.wait_for_selector("#rb-text")
    assert approver.text_content("#rb-text") == "Không có lũ."
    _api(base, token, "POST", f"/api/v1/alerts/{aid}/withdraw")  # and again, after the read-back
    _api(base, token, "PUT", f"/api/v1/alerts/{aid}", {**alert, "body": "Có lũ."})
    _api(base, token, "POST", f"/api/v1/alerts/{aid}/submit")
    approver.click("#do-confirm-approve")
    approver.wait_for_selector(".flash.error")
    assert "đã đọc phiên bản 2, nay là phiên bản 3" in approver.text_content(".flash.error")
    assert approver.get_attribute("#alert-status", "data-status") == "pending_approval"
    approver.click("#do-approve")
    approver.click("#do-confirm-approve")
    approver.wait_for_selector(".flash.success")
    assert approver.get_attribute("#alert-status", "data-status") != "pending_approval"


# What the walk below reads, in each language of the console.
WALK_WORDS = {
    "vi": {
        "blank": "Còn ô của mẫu chưa điền: [[địa bàn]]",
        "lead": "Cảnh báo THẬT: 30 người sẽ nhận.",
        "category": "Khẩn cấp · thật",
        "confirm": "Xác nhận: gửi tới 30 người",
        "sending": "Đang gửi",
        "paused": "Tạm dừng",
        "cancelled": "Đã xong: Đã hủy.",
    },
    "en": {
        "blank": "Some fields of the template are still empty: [[địa bàn]]",
        "lead": "LIVE alert: 30 people will receive it.",
        "category": "Emergency · live",
        "confirm": "Confirm: send to 30 people",
        "sending": "Sending",
        "paused": "Paused",
        "cancelled": "Done: Cancelled.",
    },
}


def choose_language(page: Any, locale: str) -> None:
    """The header's language switch, as a person uses it (a form posted with its token).
    Waits for the navigation the post starts: a goto before it ends would abort one of them."""
    with page.expect_navigation():
        page.evaluate(
            """(locale) => { const f = document.createElement('form'); f.method = 'post';
        f.action = '/locale/' + locale;
        const t = document.createElement('input'); t.name = 'csrf_token';
        t.value = document.querySelector('meta[name=csrf-token]').content; f.appendChild(t);
        document.body.appendChild(f); f.submit(); }""",
            locale,
        )
    page.wait_for_load_state()


@pytest.mark.parametrize(
    ("locale", "width"), [("vi", 375), ("en", None)], ids=["vi-phone", "en-desktop"]
)
def test_on_a_phone_template_blanks_read_back_pause_resume_and_cancel(
    server: dict[str, Any], browser: Any, locale: str, width: int | None
) -> None:
    """At 375 px wide in Vietnamese, and on a desktop in English: the evacuation template's
    blanks are marked and refused until filled; the approver reads back the totals, confirms,
    pauses, resumes and cancels (asked twice). No sender runs, so the alert stays sending
    while the approver acts."""
    from subscriber_import import service

    base, settings = server["url"], server["settings"]
    numbers = _numbers("96", 30)
    path = settings.instance_path / "viettel.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("so_thue_bao,ma_xa\n" + "".join(f"{n},18073\n" for n in numbers))
    service.import_file(
        server["database"], settings, carrier_code="viettel", kind="list", path=path
    )

    words = WALK_WORDS[locale]
    page = log_in(browser, base, "drafter", width=width)
    if locale != "vi":
        choose_language(page, locale)
    page.goto(f"{base}/alerts/new?template=evacuate")
    assert page.input_value("#category") == "emergency"
    page.wait_for_selector("#pv-text .placeholder")
    blanks = page.locator("#pv-text .placeholder").all_text_contents()
    assert blanks == ["[[đơn vị gửi]]", "[[địa bàn]]", "[[nơi đến]]"]
    assert page.is_visible("#pv-placeholders")
    assert "[[địa bàn]]" in page.text_content("#pv-placeholder-list")
    assert [r.get_attribute("data-rule") for r in page.locator("#pv-rules li").all()] == ["exempt"]

    def choose() -> None:
        page.fill("input[data-area-search]", "thanh sen")
        for selector in ('input[data-area][value="18073"]', 'input[data-carrier][value="viettel"]'):
            page.click(selector)
        page.fill("#brandname", "UBND HaTinh")

    choose()
    page.click("#save-draft")
    page.wait_for_selector("p.flash.error")
    assert page.text_content("p.flash.error").startswith(words["blank"])
    assert page.locator("p.flash.error").count() == 1  # said once
    assert "/alerts/new" in page.url and page.locator("#do-submit").count() == 0  # not saved

    page.goto(f"{base}/alerts/new?template=evacuate")
    page.fill("#tf-sender", "UBND HaTinh")
    page.fill("#tf-area", "Phường Thành Sen")
    page.fill("#tf-place", "Trường THCS Trần Phú")
    # The fill is a GET of the form page: wait for it to load, scripts and all. A check on the
    # text alone can pass while the new page is still parsing, before draft.js has hooked the
    # area search, which then opens no group: the likely cause of a commune "not visible"
    # for 15 s, seen once in CI and not reproduced.
    with page.expect_navigation(wait_until="load"):
        page.click("#template-fill")
    page.wait_for_function("!document.getElementById('body').value.includes('[[')")
    assert "Sơ tán ngay khỏi Phường Thành Sen" in page.input_value("#body")
    choose()
    page.wait_for_function("document.getElementById('pv-total').textContent === '30'")
    assert page.is_hidden("#pv-placeholders")
    page.click("#save-draft")
    page.wait_for_selector("#do-submit")
    assert page.text_content("#audience-total") == "30"
    alert_url = page.url
    page.click("#do-submit")
    page.wait_for_selector('#alert-status[data-status="pending_approval"]')

    # fan-out and control; no sender, and no upload for an imports worker to take
    workers = Workers(server, (), imports=False)
    try:
        approver = log_in(browser, base, "approver", width=width)
        if locale != "vi":
            choose_language(approver, locale)
        approver.goto(alert_url)
        buttons = approver.locator("button[id^=do-], a[id^=do-]")
        ids = [buttons.nth(i).get_attribute("id") for i in range(buttons.count())]
        assert ids[0] == "do-approve" and ids[-1] == "do-cancel"
        approver.click("#do-approve")
        approver.wait_for_selector("#readback")
        assert approver.text_content("#rb-lead") == words["lead"]
        parts = int(approver.text_content("#rb-parts"))
        assert approver.text_content("#rb-messages") == str(30 * parts)
        assert approver.text_content("#rb-category") == words["category"]
        assert "Sơ tán ngay khỏi Phường Thành Sen" in approver.text_content("#rb-text")
        confirm = approver.locator("#do-confirm-approve")
        assert confirm.text_content() == words["confirm"]
        if width:
            box = confirm.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width  # reachable on a phone
            assert approver.evaluate("document.documentElement.scrollWidth") <= width
        approver.keyboard.press("Tab")  # a keyboard user sees where focus is
        ring = approver.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert ring == "solid"
        confirm.click()
        approver.wait_for_selector("#watch")
        approver.evaluate(WATCH_RULES)
        # the page was approved a moment ago; pause appears once the alert is sending
        approver.wait_for_selector("#do-pause", state="visible", timeout=30_000)
        assert approver.is_hidden("#do-resume")
        announced = approver.text_content("#w-announce")
        assert announced.startswith(words["sending"]), announced
        assert watch_rules_kept(approver) > 0  # sending
        approver.click("#do-pause")
        approver.wait_for_selector('#alert-status[data-status="paused"]')
        approver.evaluate(WATCH_RULES)
        approver.wait_for_function(
            "(word) => document.getElementById('w-announce').textContent.startsWith(word)",
            arg=words["paused"],
        )
        assert watch_rules_kept(approver) > 0  # paused
        approver.click("#do-resume")
        approver.wait_for_selector('#alert-status[data-status="sending"]')
        approver.evaluate(WATCH_RULES)
        more_samples(approver, 4)
        assert watch_rules_kept(approver) > 0  # resumed
        approver.click("#do-cancel")
        approver.wait_for_selector("#cancel-confirm")
        assert approver.get_attribute("#alert-status", "data-status") == "sending"
        approver.click("#do-confirm-cancel")
        approver.wait_for_selector('#alert-status[data-status="cancelled"]')
        assert approver.text_content(".flash.success") == words["cancelled"]
        # nobody was sent to: the 30 are still counted, each in one column (waiting until
        # the rows are moved to cancelled by a sender or the maintenance pass, no sender
        # runs here), and no time left is shown
        approver.evaluate(WATCH_RULES)
        row = '#w-carriers tr[data-carrier="viettel"]'
        assert approver.text_content(f'{row} [data-k="total"]') == "30"
        assert approver.text_content(f'{row} [data-k="delivered"]') == "0"
        more_samples(approver, 4)
        assert watch_rules_kept(approver) > 0
        assert approver.text_content("#w-eta") == "—"
    finally:
        workers.stop()


def test_a_drill_is_bannered_on_the_form_list_alert_read_back_and_watch(
    server: dict[str, Any], browser: Any
) -> None:
    base, token = server["url"], server["people"].tokens["drafter"]
    drafter = log_in(browser, base, "drafter")
    drafter.goto(f"{base}/alerts/new")
    assert drafter.is_hidden("#drill-banner")
    drafter.select_option("#category", "exercise")
    drafter.wait_for_selector("#drill-banner", state="visible")
    assert "DIỄN TẬP / DRILL" in drafter.text_content("#drill-banner")

    alert = {
        "title": "Diễn tập sơ tán lũ",
        "body": "Diễn tập: tập trung tại nhà văn hoá xã lúc 8 giờ.",
        "category": "exercise",
        "areas": ["18073"],
        "carriers": ["viettel"],
        "brandname": "UBND HaTinh",
    }
    aid = _api(base, token, "POST", "/api/v1/alerts", alert)["id"]
    _api(base, token, "POST", f"/api/v1/alerts/{aid}/submit")
    approver = log_in(browser, base, "approver")
    approver.goto(f"{base}/alerts/")
    row = approver.locator("#alerts tbody tr", has_text="Diễn tập sơ tán lũ")
    assert row.locator(".badge.drill").is_visible()
    approver.goto(f"{base}/alerts/{aid}")
    assert approver.is_visible("#drill-banner") and approver.is_visible("#watch-drill")
    approver.click("#do-approve")
    approver.wait_for_selector("#rb-text")
    assert approver.is_visible("#drill-banner")
    assert "DIỄN TẬP" in approver.text_content("#rb-lead")
    assert approver.text_content("#rb-text").startswith("[DIỄN TẬP] ")
    approver.click("#do-confirm-approve")
    approver.wait_for_selector(".flash.success")
    assert approver.is_visible("#drill-banner") and approver.is_visible("#watch-drill")


def test_watch_page_ranks_communes_live_and_shows_a_commune_down(
    server: dict[str, Any], browser: Any
) -> None:
    """The official watching an alert sees the communes not getting it at the top, and the
    carrier's own report of its network down there, both as they change."""
    from sqlalchemy import insert, select

    from broadcast import alerts, deliveries
    from broadcast.models import (
        Alert,
        Area,
        Carrier,
        Delivery,
        DeliveryState,
        ListStatus,
        Subscriber,
        SubscriberList,
    )

    base, people, database = server["url"], server["people"], server["database"]
    numbers = {"0981000001": "18073", "0981000002": "18073", "0981000003": "18073",
               "0981000004": "18100", "0981000005": "18100", "0981000006": "18100"}  # fmt: skip
    with database.session() as s:
        areas = dict(s.execute(select(Area.code, Area.id)).all())
        viettel = s.scalar(select(Carrier.id).where(Carrier.code == "viettel"))
        row = SubscriberList(carrier_id=viettel, version=1, status=ListStatus.ACTIVE)
        s.add(row)
        s.flush()
        s.execute(
            insert(Subscriber),
            [{"list_id": row.id, "msisdn": "84" + m[1:], "area_id": areas[a]}
             for m, a in numbers.items()],
        )  # fmt: skip
    alert = {
        "title": "Lũ quét",
        "body": "Lũ quét tại Thành Sen và Trần Phú. Di chuyển lên cao ngay.",
        "category": "emergency",
        "areas": ["18073", "18100"],
        "carriers": ["viettel"],
        "brandname": "UBND HaTinh",
    }
    drafter, approver = people.tokens["drafter"], people.tokens["approver"]
    aid = _api(base, drafter, "POST", "/api/v1/alerts", alert)["id"]
    _api(base, drafter, "POST", f"/api/v1/alerts/{aid}/submit")
    _api(base, approver, "POST", f"/api/v1/alerts/{aid}/approve", {"version": 1})
    with database.session() as s:  # what the fan-out job does (no worker runs here)
        deliveries.write_audience(s, s.get(Alert, aid), batch_size=10)
        alerts.mark_sending(s, aid)

    page = log_in(browser, base, "approver")
    page.goto(f"{base}/alerts/{aid}")
    page.wait_for_selector('#w-areas tbody tr[data-area="18100"]')
    assert "Mức tiếp cận theo xã, phường" in page.text_content("#watch")
    # receipts come in: all of Thành Sen delivered, one of three in Trần Phú
    with database.session() as s:
        for d in s.scalars(select(Delivery).where(Delivery.alert_id == aid)):
            in_tran_phu = d.area_id == areas["18100"]
            d.state = (
                DeliveryState.UNDELIVERABLE
                if in_tran_phu and d.msisdn != "84981000004"
                else DeliveryState.DELIVERED
            )
    page.wait_for_function(
        "(() => { const r = document.querySelectorAll('#w-areas tbody tr');"
        " return r.length === 2 && r[0].dataset.area === '18100'"
        " && r[0].querySelector('[data-k=failed]').textContent === '2'; })()"
    )
    first = page.query_selector("#w-areas tbody tr")
    assert "Trần Phú" in first.text_content()
    assert first.query_selector('[data-k="share"]').text_content() == "33.3"
    assert page.query_selector_all("#w-areas tbody tr")[1].get_attribute("data-area") == "18073"
    assert page.is_hidden("#w-network")
    # Viettel reports its network down in Trần Phú: the watch page says so, in Vietnamese
    _api(base, people.tokens["viettel"], "PUT", "/api/v1/carriers/viettel/status",
         {"areas": [{"code": "18100", "state": "down", "note": "Trạm BTS mất điện"}]})  # fmt: skip
    page.wait_for_selector('#w-network li[data-carrier="viettel"][data-area="18100"]')
    shown = page.text_content('#w-network li[data-area="18100"]')
    assert "Trần Phú" in shown and "Mất sóng" in shown and "Trạm BTS mất điện" in shown
    assert page.is_visible("#w-network")


def test_audit_log_shows_vietnamese_as_text(server: dict[str, Any], browser: Any) -> None:
    from broadcast import audit

    with server["database"].session() as session:
        audit.record(
            session,
            actor="drafter",
            action="alert.create",
            object_type="alert",
            object_id=1,
            after={"title": "Cảnh báo lũ quét ở Hương Khê", "recipients": 12345},
        )
    page = log_in(browser, server["url"], "admin")
    page.goto(f"{server['url']}/admin/audit?action=alert.create")
    table = page.inner_text("#audit")
    assert "Cảnh báo lũ quét ở Hương Khê" in table
    assert "\\u" not in table and "Soạn cảnh báo" in table and "12.345" in table
    page.fill("#f-from", "2026-11-21")
    page.fill("#f-to", "2026-11-20")
    page.click("#f-apply")
    assert "Ngày bắt đầu sau ngày kết thúc" in page.inner_text("#audit-error")
