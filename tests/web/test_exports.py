"""Delivery reports: checked row by row in both languages (headers, area of each recipient,
local times with the zone stated, states and reasons in words, a summary sheet), and never a
live formula for a spreadsheet (OWASP CSV injection: cells starting with = + - @ tab or CR)."""

from __future__ import annotations

import csv
import html
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select, update
from webtools import People, assert_error, login

from broadcast import deliveries
from broadcast.db import Database
from broadcast.models import Alert, Carrier, Delivery, DeliveryState, User
from broadcast.settings import Settings
from subscriber_import.service import import_file
from tests.imports.files import write_csv

HOSTILE = ["=1+1", "+1+1", "-1+1", "@SUM(1)", "\t=1+1", "\r=1+1"]
ALERT = {
    "title": "Bão số 3",
    "body": "Bão số 3 đổ bộ vào Hà Tĩnh đêm nay.",
    "category": "warning",
    "areas": ["18073"],
    "carriers": ["viettel"],
    "brandname": "UBND HaTinh",
}


@pytest.fixture
def alert_with_errors(client: FlaskClient, people: People, seeded_database: Database) -> int:
    """An alert whose deliveries failed with error texts a hostile peer could have chosen."""
    created = client.post("/api/v1/alerts", json=ALERT, headers=people.auth("drafter"))
    assert created.status_code == 201, created.get_json()
    aid = created.get_json()["id"]
    with seeded_database.session() as session:
        viettel = session.scalar(select(Carrier.id).where(Carrier.code == "viettel"))
        session.add_all(
            Delivery(
                alert_id=aid,
                carrier_id=viettel,
                msisdn=f"8498123456{n}",
                state=DeliveryState.UNDELIVERABLE,
                last_error=error,
            )
            for n, error in enumerate(HOSTILE)
        )
    return aid


def test_csv_report_defuses_formula_cells(
    client: FlaskClient, people: People, alert_with_errors: int
) -> None:
    response = client.get(
        f"/api/v1/alerts/{alert_with_errors}/report.csv", headers=people.auth("auditor")
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True).removeprefix("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["Lý do không thành công"] for r in rows] == ["'" + e for e in HOSTILE]
    assert [r["Số thuê bao"] for r in rows] == [f"8498123456{n}" for n in range(len(HOSTILE))]


def test_xlsx_report_holds_text_not_formulas(
    client: FlaskClient, people: People, alert_with_errors: int
) -> None:
    with client.get(
        f"/api/v1/alerts/{alert_with_errors}/report.xlsx", headers=people.auth("auditor")
    ) as response:
        assert response.status_code == 200
        book = load_workbook(io.BytesIO(response.data))
    sheet = book.worksheets[-1]  # the recipients, after the summary and the communes
    header = [c.value for c in sheet[1]]
    column = header.index("Lý do không thành công") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, 2 + len(HOSTILE))]
    assert [c.data_type for c in cells] == ["s"] * len(HOSTILE)
    # A CR is stored escaped as _x000D_ (ECMA-376 ST_Xstring), which openpyxl leaves as it is
    # in inline strings: the cell is still text, prefixed.
    assert [c.value.replace("_x000D_", "\r") for c in cells] == ["'" + e for e in HOSTILE]


# --- the report row by row --------------------------------------------------------------------

SENT = datetime(2026, 11, 20, 3, 0, 5, tzinfo=UTC)  # 10:00:05 in Hà Tĩnh
FINAL = datetime(2026, 11, 20, 3, 0, 9, tzinfo=UTC)
OUTCOMES = {  # msisdn: (state, last_error)
    "84960000001": (DeliveryState.DELIVERED, None),
    "84960000002": (DeliveryState.UNDELIVERABLE, "receipt UNDELIV err 001"),
    "84960000003": (DeliveryState.EXPIRED, "expired: validity passed before it was sent"),
    "84910000001": (DeliveryState.UNDELIVERABLE, "receipt UNDELIV err 001"),
}
WORDS = {
    "vi": {
        "headers": [
            "Số thuê bao",
            "Nhà mạng",
            "Mã xã/phường",
            "Xã/phường",
            "Trạng thái",
            "Số phần tin",
            "Số phần đã có báo nhận",
            "Số lần gửi",
            "Lý do không thành công",
            "Thời điểm xếp hàng (Asia/Ho_Chi_Minh, UTC+07:00)",
            "Thời điểm gửi (Asia/Ho_Chi_Minh, UTC+07:00)",
            "Thời điểm có kết quả (Asia/Ho_Chi_Minh, UTC+07:00)",
        ],
        "delivered": "Đã nhận",
        "undeliverable": "Không gửi được",
        "expired": "Hết hiệu lực",
        "queued": "Đã xếp hàng",
        "undeliv": "Nhà mạng không chuyển được tới máy (mã lỗi 001)",
        "validity": "Hết thời hạn hiệu lực của cảnh báo trước khi gửi",
        "summary": "Tổng hợp",
        "communes": "Theo xã, phường",
        "total": "Tổng",
    },
    "en": {
        "headers": [
            "Phone number",
            "Carrier",
            "Commune code",
            "Commune",
            "Status",
            "Message parts",
            "Parts with a final receipt",
            "Attempts",
            "Failure reason",
            "Queued at (Asia/Ho_Chi_Minh, UTC+07:00)",
            "Sent at (Asia/Ho_Chi_Minh, UTC+07:00)",
            "Final at (Asia/Ho_Chi_Minh, UTC+07:00)",
        ],
        "delivered": "Delivered",
        "undeliverable": "Undeliverable",
        "expired": "Expired",
        "queued": "Queued",
        "undeliv": "The carrier could not deliver it to the phone (error code 001)",
        "validity": "The alert's validity ended before it was sent",
        "summary": "Summary",
        "communes": "By commune",
        "total": "Total",
    },
}


@pytest.fixture
def sent_alert(
    client: FlaskClient,
    people: People,
    seeded_database: Database,
    settings: Settings,
    tmp_path: Path,
) -> int:
    """Lists imported, an alert's audience snapshotted, some recipients reached or failed."""
    lists = {
        "viettel": [
            ["0960000001", "18073"],
            ["0960000002", "18100"],
            ["0960000003", "18073"],
            ["0960000004", ""],
        ],
        "vinaphone": [["0910000001", "18100"]],
    }
    for code, rows in lists.items():
        path = write_csv(tmp_path / f"{code}.csv", [["msisdn", "area"], *rows])
        import_file(seeded_database, settings, carrier_code=code, kind="list", path=path)
    created = client.post(
        "/api/v1/alerts",
        json={**ALERT, "areas": ["42"], "carriers": ["viettel", "vinaphone"]},
        headers=people.auth("drafter"),
    )
    assert created.status_code == 201, created.get_json()
    aid = created.get_json()["id"]
    with seeded_database.session() as session:
        alert = session.get(Alert, aid)
        assert deliveries.write_audience(session, alert, batch_size=10) == {
            "viettel": 4,
            "vinaphone": 1,
        }
        # the fan-out queued every row; all at the same known moment
        session.execute(update(Delivery).where(Delivery.alert_id == aid).values(queued_at=SENT))
        for msisdn, (state, error) in OUTCOMES.items():
            session.execute(
                update(Delivery)
                .where(Delivery.alert_id == aid, Delivery.msisdn == msisdn)
                .values(
                    state=state,
                    last_error=error,
                    attempts=1,
                    queued_at=SENT,
                    submitted_at=SENT if state != DeliveryState.EXPIRED else None,
                    final_at=FINAL,
                    parts_final=1 if state == DeliveryState.DELIVERED else 0,
                )
            )
    return aid


def _expected(locale: str) -> list[list[str]]:
    w = WORDS[locale]
    at, final = "2026-11-20 10:00:05", "2026-11-20 10:00:09"
    return [
        ["84910000001", "VinaPhone", "18100", "Phường Trần Phú", w["undeliverable"], "1", "0", "1",
         w["undeliv"], at, at, final],
        ["84960000001", "Viettel", "18073", "Phường Thành Sen", w["delivered"], "1", "1", "1",
         "", at, at, final],
        ["84960000002", "Viettel", "18100", "Phường Trần Phú", w["undeliverable"], "1", "0", "1",
         w["undeliv"], at, at, final],
        ["84960000003", "Viettel", "18073", "Phường Thành Sen", w["expired"], "1", "0", "1",
         w["validity"], at, "", final],
        ["84960000004", "Viettel", "", "", w["queued"], "1", "0", "0", "", at, "", ""],
    ]  # fmt: skip


def _set_language(client: FlaskClient, people: People, database: Database, locale: str) -> None:
    """The console's language: the header switch for a session, the user's own for a token."""
    with database.session() as session:
        session.execute(update(User).where(User.id == people.ids["auditor"]).values(locale=locale))


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_csv_report_row_by_row(
    client: FlaskClient, people: People, seeded_database: Database, sent_alert: int, locale: str
) -> None:
    _set_language(client, people, seeded_database, locale)
    response = client.get(f"/api/v1/alerts/{sent_alert}/report.csv", headers=people.auth("auditor"))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # spreadsheet programs read it as UTF-8
    header, *rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert header == WORDS[locale]["headers"]
    assert sorted(rows) == _expected(locale)


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_xlsx_report_row_by_row_with_a_summary(
    client: FlaskClient, people: People, seeded_database: Database, sent_alert: int, locale: str
) -> None:
    _set_language(client, people, seeded_database, locale)
    with client.get(
        f"/api/v1/alerts/{sent_alert}/report.xlsx", headers=people.auth("auditor")
    ) as response:
        assert response.status_code == 200
        book = load_workbook(io.BytesIO(response.data))
    w = WORDS[locale]
    summary, communes, recipients = book.worksheets
    assert summary.title == w["summary"] and communes.title == w["communes"]
    header, *rows = [list(r) for r in recipients.iter_rows(values_only=True)]
    assert header == w["headers"]

    def shown(value: object) -> str:
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return "" if value is None else str(value)

    assert sorted([shown(v) for v in row] for row in rows) == _expected(locale)
    # times are real dates for the spreadsheet, not text
    assert isinstance(recipients.cell(row=2, column=10).value, datetime)
    pairs = {
        str(r[0].value): r[1].value for r in summary.iter_rows(min_col=1, max_col=2) if r[0].value
    }
    assert pairs[w["undeliv"]] == 2 and pairs[w["validity"]] == 1
    assert pairs[w["delivered"]] == 1 and pairs[w["queued"]] == 1
    assert pairs["Cảnh báo" if locale == "vi" else "Alert"] == "Bão số 3"
    table = {
        str(r[0]): list(r[1:6])
        for r in summary.iter_rows(values_only=True)
        if r[0] in ("Viettel", "VinaPhone", w["total"])
    }
    # recipients, delivered, failed, cancelled, not final yet
    assert table == {
        "VinaPhone": [1, 0, 1, 0, 0],
        "Viettel": [4, 1, 2, 0, 1],
        w["total"]: [5, 1, 3, 0, 1],
    }
    # the communes ranked by share delivered, lowest first: Trần Phú reached nobody (two
    # undeliverable), Thành Sen one of two (the other expired); a number with no commune is
    # in no row
    ranked = [list(r) for r in communes.iter_rows(min_row=2, values_only=True)]
    assert [r[:2] for r in ranked] == [["18100", "Phường Trần Phú"], ["18073", "Phường Thành Sen"]]
    assert [r[2:] for r in ranked] == [[2, 0, 2, 0.0], [2, 1, 1, 50.0]]


# --- the watch page's figures (same alert) ----------------------------------------------------


def test_progress_totals_reasons_and_history_survive_a_reload(
    client: FlaskClient,
    people: People,
    sent_alert: int,
    redis_client: redis.Redis,
) -> None:
    url = f"/api/v1/alerts/{sent_alert}/progress"
    first = client.get(url + "?history=true", headers=people.auth("auditor")).get_json()
    assert (first["reached"], first["failed"]) == (1, 3)
    assert first["failure_reasons"] == [
        {"reason": WORDS["vi"]["undeliv"], "count": 2},
        {"reason": WORDS["vi"]["validity"], "count": 1},
    ]
    assert "history" not in client.get(url, headers=people.auth("auditor")).get_json()
    refused = client.get(url + "?history=maybe", headers=people.auth("auditor"))
    assert "history" in assert_error(refused, 422)["details"]
    time.sleep(1.1)  # one point a second at most, however many watch
    client.get(url, headers=people.auth("auditor"))
    client.get(url, headers=people.auth("drafter"))
    # a reload: the chart starts from the series the server kept
    again = client.get(url + "?history=true", headers=people.auth("drafter")).get_json()
    assert len(again["history"]) >= 2
    assert [p["done"] for p in again["history"]] == [4] * len(again["history"])
    assert all(p["at"] <= again["at"] for p in again["history"])
    # the reasons are the database's: a Redis that lost its counters still says them
    redis_client.flushdb()
    lost = client.get(url, headers=people.auth("auditor")).get_json()
    assert lost["failure_reasons"] == first["failure_reasons"] and lost["failed"] == 3


def test_watch_page_shows_totals_and_reasons_in_words(
    client: FlaskClient, sent_alert: int, people: People
) -> None:
    login(client, "auditor")
    page = html.unescape(client.get(f"/alerts/{sent_alert}").get_data(as_text=True))
    assert 'id="w-reached">1<' in page and 'id="w-failed">3<' in page
    assert f"<span data-reason>{WORDS['vi']['undeliv']}</span>: <span data-count>2</span>" in page
    assert "receipt UNDELIV" not in page
    assert "tin/giây" in page
