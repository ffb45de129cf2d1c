"""The watch page shows people's replies live, in a real browser: a drafter sets the reply
keywords, the approver sends through the workers an operator runs, the simulators answer every
delivered message, and the page counts the replies by keyword and by commune as they arrive;
the numbers that asked for help download as CSV (approver only)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_browser import (  # noqa: F401 - the fixtures `server` and `browser`
    WALK_CARRIERS,
    Workers,
    browser,
    draft,
    log_in,
    server,
    sync_api,
)

from broadcast.models import Area

pytestmark = pytest.mark.browser

MIX = {"1": 1.0, "2": 1.0, "Cứu": 1.0, "other": 1.0}
COMMUNES = ("18073", "18196")


def test_watch_page_shows_replies_by_keyword_and_commune_live(
    server: dict[str, Any],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    from subscriber_import import service

    base, settings = server["url"], server["settings"]
    prefixes = {"viettel": "96", "vinaphone": "91"}
    numbers = {code: [f"0{p}{n:07d}" for n in range(1, 13)] for code, p in prefixes.items()}
    commune = {}
    for code, listed in numbers.items():
        path = settings.instance_path / f"{code}.csv"
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        rows = [(n, COMMUNES[i % 2]) for i, n in enumerate(listed)]
        commune |= {"84" + n[1:]: c for n, c in rows}
        path.write_text("so_thue_bao,ma_xa\n" + "".join(f"{n},{c}\n" for n, c in rows))
        service.import_file(server["database"], settings, carrier_code=code, kind="list", path=path)
    for sim in server["sims"].values():
        sim.set_config(reply_rate=1.0, reply_delay=0.05, reply_mix=MIX)

    page = log_in(browser, base, "drafter")
    draft(page, base, carriers=WALK_CARRIERS)
    page.fill("input[data-area-search]", "son kim 1")
    page.click('input[data-area][value="18196"]')
    # The template default is there; the drafter adds a third keyword that asks for help.
    assert page.input_value("#reply-word-0") == "1" and page.input_value("#reply-word-1") == "2"
    assert page.is_checked("#reply-help-1") and not page.is_checked("#reply-help-0")
    page.fill("#reply-word-2", "Cứu")
    page.fill("#reply-label-2", "Cứu nạn / Rescue")
    page.check("#reply-help-2")
    page.click("#save-draft")
    page.wait_for_selector("#do-submit")
    alert_url = page.url
    page.click("#do-submit")
    page.wait_for_selector('#alert-status[data-status="pending_approval"]')
    # What the approver reads back: the keywords people will answer with.
    assert page.text_content("#alert-reply-keywords") == (
        "1 An toàn / Safe; 2 Cần giúp / Need help (cần giúp); Cứu Cứu nạn / Rescue (cần giúp)"
    )

    workers = Workers(server, WALK_CARRIERS, imports=False)  # no upload here
    try:
        approver = log_in(browser, base, "approver")
        approver.goto(alert_url)
        approver.check('input[name="waive_quiet_hours"]')
        approver.click("#do-approve")
        assert approver.text_content("#rb-total") == "24"
        approver.click("#do-confirm-approve")
        approver.wait_for_selector("#replies")
        try:
            approver.wait_for_function(
                "() => document.getElementById('replies').dataset.total === '24'",
                timeout=40_000,
            )
        except sync_api.TimeoutError:
            raise AssertionError(
                f"replies {approver.text_content('#r-total')}\n{workers.output()}"
            ) from None
    finally:
        workers.request_stop()  # no more work for them: they end as the page is read

    sent = Counter(r.text for sim in server["sims"].values() for r in sim.replies())
    assert sum(sent.values()) == 24
    expected = {"1": sent["1"], "2": sent["2"], "Cứu": sent["Cứu"]}
    expected["other"] = 24 - sum(expected.values())
    shown = {
        word: approver.locator(
            f'#r-keywords tr[data-keyword="{word}"] [data-k="count"]'
        ).text_content()
        for word in expected
    }
    assert shown == {w: str(n) for w, n in expected.items()}
    assert approver.text_content("#r-total") == "24"
    with server["database"].session() as s:
        names = dict(s.execute(select(Area.code, Area.name)).all())
    by_commune = Counter(
        (commune[r.source_addr], r.text if r.text in expected else "other")
        for sim in server["sims"].values()
        for r in sim.replies()
    )
    for code in COMMUNES:
        row = approver.locator(f'#r-areas tr[data-area="{code}"]')
        assert row.locator("td").first.text_content() == names[code]
        for word in expected:
            assert row.locator(f'[data-k="{word}"]').text_content() == str(by_commune[(code, word)])
    assert "Tin trả lời" in approver.text_content("#replies h2")  # Vietnamese first

    # The numbers that asked for help ("2" and "Cứu"), for rescue teams.
    with approver.expect_download() as info:
        approver.click("#export-help")
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(), newline="")))
    assert rows[0][:2] == ["Số thuê bao", "Nhà mạng"]
    helped = sorted(
        (r.source_addr, r.text)
        for sim in server["sims"].values()
        for r in sim.replies()
        if r.text in ("2", "Cứu")
    )
    assert sorted((r[0], r[4]) for r in rows[1:]) == helped
    assert {r[3] for r in rows[1:]} <= {names[c] for c in COMMUNES}

    page.goto(alert_url)  # the drafter sees the replies but gets no phone numbers
    page.wait_for_selector("#replies")
    assert page.locator("#export-help").count() == 0
