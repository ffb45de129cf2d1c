"""Delivery reports never hand a spreadsheet a live formula (OWASP CSV injection: cells starting
with = + - @ tab or CR), in CSV and in XLSX."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select
from webtools import People

from broadcast.db import Database
from broadcast.models import Carrier, Delivery, DeliveryState

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
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert [r["last_error"] for r in rows] == ["'" + e for e in HOSTILE]
    assert [r["msisdn"] for r in rows] == [f"8498123456{n}" for n in range(len(HOSTILE))]


def test_xlsx_report_holds_text_not_formulas(
    client: FlaskClient, people: People, alert_with_errors: int
) -> None:
    with client.get(
        f"/api/v1/alerts/{alert_with_errors}/report.xlsx", headers=people.auth("auditor")
    ) as response:
        assert response.status_code == 200
        book = load_workbook(io.BytesIO(response.data))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    column = header.index("last_error") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, 2 + len(HOSTILE))]
    assert [c.data_type for c in cells] == ["s"] * len(HOSTILE)
    # XML reads a bare CR back as LF: the cell is still text, prefixed.
    assert [c.value for c in cells] == ["'" + e.replace("\r", "\n") for e in HOSTILE]
