"""The import service on SQLite and PostgreSQL: lists, counts, conflicts, atomic refusals."""

from __future__ import annotations

import csv
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from broadcast.db import Database
from broadcast.models import (
    Carrier,
    CountReport,
    Import,
    ImportStatus,
    ListStatus,
    Role,
    Subscriber,
    SubscriberList,
    User,
)
from broadcast.policy import as_utc
from broadcast.settings import Settings
from subscriber_import.errors import (
    ImportRejected,
    ListChanged,
    ListShrinks,
    MalformedFile,
    NoValidRows,
    TooManyRows,
    UnknownCarrier,
)
from subscriber_import.service import active_count, coverage, import_file, purge_superseded
from tests.conftest import make_settings
from tests.imports.files import write_csv, write_list_csv, write_xlsx


def _import(db: Database, settings: Settings, carrier: str, path: Path, kind: str = "list", **kw):  # type: ignore[no-untyped-def]
    return import_file(db, settings, carrier_code=carrier, kind=kind, path=path, **kw)


def _lists(db: Database, carrier_code: str | None = None) -> list[tuple[int, str, int]]:
    with db.session() as session:
        rows = session.execute(
            select(
                SubscriberList.version, SubscriberList.status, SubscriberList.row_count
            ).order_by(SubscriberList.id)
        ).all()
    return [(v, s.value, n) for v, s, n in rows]


def test_list_import_report_adds_up(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "list.csv",
        [
            ["Số thuê bao", "Huyện"],
            ["0912345678", "Xã Can Lộc"],
            ["+84 91 234 5679", "18073"],
            ["01621234567", ""],  # converted, possible ported (Viettel range)
            ["0912345678", "18073"],  # duplicate
            ["=1+1", "18073"],  # invalid, and a formula
            ["0239 3855 555", "18073"],  # landline
            ["0981234567", "Nowhere"],  # unknown area: the number is kept, with no area
            ["091234", "18073"],
        ],
        delimiter=";",
    )
    progress: list[tuple[int, int | None]] = []
    report = _import(
        seeded_database, settings, "vinaphone", path, progress=lambda d, t: progress.append((d, t))
    )
    assert (report.rows, report.accepted, report.duplicates, report.converted) == (8, 4, 1, 1)
    assert report.rejected == {"invalid": 1, "landline": 1, "too_short": 1}
    assert report.warnings == {"unknown_area": 1}
    assert report.warning_samples == {"unknown_area": ["Nowhere"]}
    assert report.rows == report.accepted + report.duplicates + sum(report.rejected.values())
    assert report.possible_ported_by_carrier == {"viettel": 2}
    assert progress[-1] == (8, None)
    areas = {r["area_code"]: r["accepted"] for r in report.per_area}
    assert areas == {"18073": 1, "18406": 1, None: 2}
    data = report.to_json()
    assert data["rejected"]["invalid"] == 1 and data["list_id"] == report.list_id

    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert {"line": "6", "value": "'=1+1", "area": "18073", "reason": "invalid"} in rejects
    assert {r["reason"] for r in rejects} == {"duplicate", "landline", "invalid", "too_short"}
    with seeded_database.session() as session:
        assert sorted(session.scalars(select(Subscriber.msisdn))) == [
            "84321234567", "84912345678", "84912345679", "84981234567",
        ]  # fmt: skip
        record = session.get(Import, report.import_id)
        assert record.status is ImportStatus.SUCCEEDED and record.report["accepted"] == 4
        assert active_count(session, carrier_code="vinaphone", area_code="42") == 2


def test_new_version_supersedes_and_failure_half_way_changes_nothing(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    small = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000}
    )
    first = write_csv(tmp_path / "v1.csv", [["msisdn"]] + [[f"09120{i:05d}"] for i in range(1200)])
    second = write_csv(tmp_path / "v2.csv", [["msisdn"]] + [[f"09130{i:05d}"] for i in range(500)])
    assert _import(seeded_database, small, "vinaphone", first).version == 1
    report = _import(seeded_database, small, "vinaphone", second, allow_shrink=True)
    assert (report.version, report.replaced_list_id) == (2, 1)
    assert _lists(seeded_database) == [(1, "superseded", 1200), (2, "active", 500)]

    rows: list[list[object]] = [["msisdn"]] + [[f"09140{i:05d}"] for i in range(2500)]
    rows.insert(2001, ["0914000001", "extra", "field"])
    broken = write_csv(tmp_path / "v3.csv", rows)
    with pytest.raises(MalformedFile, match="broken part-way") as info:
        _import(seeded_database, small, "vinaphone", broken)
    assert _lists(seeded_database) == [(1, "superseded", 1200), (2, "active", 500)]
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1700
        record = session.get(Import, info.value.import_id)
        assert record.status is ImportStatus.REJECTED and "broken part-way" in record.error
        assert active_count(session, carrier_code="vinaphone") == 500
    assert not (small.instance_path / "imports" / f"{info.value.import_id}-rejects.csv").exists()


def test_duplicate_across_chunks_is_reported_not_a_crash(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    small = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000}
    )
    rows: list[list[object]] = [["msisdn"]] + [[f"09120{i:05d}"] for i in range(1000)]
    # Rows 1,001 and 1,002 (the second chunk) repeat rows 5 and 999 of the first, written in
    # other forms so only the normalised numbers match.
    rows += [["+84 912 000 005"], ["84912000999"]]
    path = write_csv(tmp_path / "list.csv", rows)
    report = _import(seeded_database, small, "vinaphone", path)
    assert (report.rows, report.accepted, report.duplicates) == (1002, 1000, 2)
    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as fh:
        rejected = list(csv.DictReader(fh))
    assert [(r["line"], r["reason"]) for r in rejected] == [
        ("1002", "duplicate"),
        ("1003", "duplicate"),
    ]
    with seeded_database.session() as session:
        assert active_count(session, carrier_code="vinaphone") == 1000


def test_a_list_over_two_chunks_counts_both_chunks_and_max_rows_holds_at_its_bound(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """A list of 1,002 rows read in chunks of 1,000, each chunk with a duplicate and an old
    11-digit number converted (in Viettel's range: possibly ported to Vinaphone): the report
    counts those of both chunks. imports.max_rows of 1,002 takes the file; 1,001 refuses it,
    naming the file."""
    rows: list[list[object]] = [["msisdn"]] + [[f"09120{i:05d}"] for i in range(998)]
    rows += [["0912000005"], ["01621234567"]]  # chunk 1: a duplicate, a converted number
    rows += [["0912000007"], ["01621234568"]]  # chunk 2: a duplicate, a converted number
    path = write_csv(tmp_path / "list.csv", rows)
    over = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000, "max_rows": 1001}
    )
    with pytest.raises(TooManyRows) as refused:
        _import(seeded_database, over, "vinaphone", path)
    assert refused.value.message == (
        "list.csv has more than 1,001 rows (1,002 read); split the file or raise imports.max_rows"
    )
    exact = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000, "max_rows": 1002}
    )
    report = _import(seeded_database, exact, "vinaphone", path)
    assert (report.rows, report.accepted, report.duplicates, report.converted) == (1002, 1000, 2, 2)
    assert (report.possible_ported, report.possible_ported_by_carrier) == (2, {"viettel": 2})
    with seeded_database.session() as session:
        assert active_count(session, carrier_code="vinaphone") == 1000


def test_a_list_without_an_area_column_and_its_list_row(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """A list with no area column: its numbers are stored with no area and the report's table
    has them in its no-area row. The list row names the file (its first 255 characters, as
    the column holds), the user who uploaded it and when it became active."""
    with seeded_database.session() as session:
        user = User(username="uploader", password_hash="x", role=Role.CARRIER)
        session.add(user)
        session.flush()
        user_id = user.id
    name = "danh-sach-" + "x" * 286 + ".csv"  # 300 characters
    path = write_csv(tmp_path / "list.csv", [["msisdn"], ["0912345678"], ["0912345679"]])
    before = datetime.now(UTC)
    report = _import(seeded_database, settings, "vinaphone", path, filename=name, user_id=user_id)
    after = datetime.now(UTC)
    assert [(r["area_code"], r["accepted"]) for r in report.per_area] == [(None, 2)]
    with seeded_database.session() as session:
        assert session.scalars(select(Subscriber.area_id)).all() == [None, None]
        row = session.execute(
            select(SubscriberList.filename, SubscriberList.created_by, SubscriberList.activated_at)
        ).one()
    assert tuple(row[:2]) == (name[:255], user_id)
    assert row[2] is not None and before <= as_utc(row[2]) <= after


def test_of_numbers_given_twice_in_one_chunk_the_first_row_is_kept(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """Ten numbers in no order, each given again further down with another area: each is kept
    with its first row's area, and the rejects file names the later rows as duplicates."""
    order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4]
    first = [[f"09120000{i:02d}", "18073"] for i in order]
    again = [[f"09120000{i:02d}", "18100"] for i in reversed(order)]
    path = write_csv(tmp_path / "list.csv", [["msisdn", "area"], *first, *again])
    report = _import(seeded_database, settings, "vinaphone", path)
    assert (report.accepted, report.duplicates) == (10, 10)
    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as fh:
        rejected = [(r["line"], r["area"], r["reason"]) for r in csv.DictReader(fh)]
    assert rejected == [(str(line), "18100", "duplicate") for line in range(12, 22)]
    with seeded_database.session() as session:
        assert active_count(session, area_code="18073") == 10


@pytest.mark.parametrize("cell", ["=1+1", "+1+1", "-1+1", "@SUM(1)", "\t=1+1", "\r=1+1"])
def test_rejects_file_defuses_every_formula_start(
    seeded_database: Database, tmp_path: Path, settings: Settings, cell: str
) -> None:
    """OWASP CSV injection: a cell starting with = + - @ tab or CR runs in a spreadsheet."""
    path = write_csv(
        tmp_path / "list.csv", [["msisdn", "area"], ["0912345678", "18073"], [cell, cell]]
    )
    report = _import(seeded_database, settings, "vinaphone", path)
    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["value"], row["area"]) == ("'" + cell, "'" + cell)


def test_limits_unknown_carrier_and_empty_lists_change_nothing(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    path = write_csv(tmp_path / "list.csv", [["msisdn"], ["0912345678"], ["0912345679"]])
    with pytest.raises(UnknownCarrier, match="unknown carrier 'acme'; known: gmobile"):
        _import(seeded_database, settings, "acme", path)
    limited = make_settings(tmp_path, database_url=settings.database_url, imports={"max_rows": 1})
    with pytest.raises(TooManyRows, match="more than 1 rows"):
        _import(seeded_database, limited, "vinaphone", path)
    bad = write_csv(tmp_path / "bad.csv", [["msisdn"], ["hello"], ["0239 3855 555"]])
    with pytest.raises(
        NoValidRows, match=r"no valid number in 2 rows \(invalid: 1, landline: 1\)"
    ) as none:
        _import(seeded_database, settings, "vinaphone", bad)
    assert none.value.details == {"rows": 2, "rejected": {"invalid": 1, "landline": 1}}
    with pytest.raises(ImportRejected, match="kind must be"):
        _import(seeded_database, settings, "vinaphone", path, kind="people")
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).select_from(SubscriberList)) == 0
        statuses = session.scalars(select(Import.status)).all()
    assert statuses == [ImportStatus.REJECTED, ImportStatus.REJECTED]


def test_conflict_newer_upload_wins_and_both_carriers_see_it(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    vina = write_csv(
        tmp_path / "v.csv", [["msisdn", "area"], ["0912345678", "18073"], ["0912345679", "18073"]]
    )
    viettel = write_csv(
        tmp_path / "t.csv", [["msisdn", "area"], ["0912345678", "18073"], ["0981234567", "18406"]]
    )
    _import(seeded_database, settings, "vinaphone", vina)
    report = _import(seeded_database, settings, "viettel", viettel)
    assert report.conflicts == 1 and report.conflicts_by_carrier == {"vinaphone": 1}
    with seeded_database.session() as session:
        assert active_count(session) == 3
        assert active_count(session, carrier_code="viettel") == 2
        assert active_count(session, carrier_code="vinaphone") == 1
        vina_cov = {r["area_code"]: r for r in coverage(session, "vinaphone")}
        assert vina_cov["18073"]["conflicts"] == 1 and vina_cov["18073"]["accepted"] == 2


def test_counts_appended_and_coverage(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    path = write_xlsx(
        tmp_path / "counts.xlsx",
        {
            "Số liệu": [
                ["Mã huyện", "Số lượng thuê bao", "Ngày báo cáo"],
                [18073, 1000, date(2026, 1, 1)],
                ["Xã Can Lộc", "2.500", "15/01/2026"],
                ["999", 5, None],
                [18073, -3, None],
                [18073, 1000, date(2026, 1, 1)],
                [18100, 7, "not a date"],
            ]
        },
    )
    report = _import(seeded_database, settings, "viettel", path, kind="counts", sheet="Số liệu")
    assert (report.rows, report.accepted, report.duplicates) == (6, 2, 1)
    assert report.rejected == {"unknown_area": 1, "invalid_count": 1, "invalid_date": 1}
    again = write_csv(tmp_path / "c.csv", [["area_code", "count"], ["18073", "1200"]])
    _import(seeded_database, settings, "viettel", again, kind="counts", as_of=date(2026, 2, 1))
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).select_from(CountReport)) == 3
        rows = {r["area_code"]: r for r in coverage(session, "viettel")}
    assert rows["18073"]["reported"] == 1200 and rows["18073"]["as_of"] == date(2026, 2, 1)
    assert rows["18406"]["reported"] == 2500


def test_xlsx_list_with_excel_float_damage(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    path = write_xlsx(
        tmp_path / "list.xlsx",
        {
            "Danh sách": [
                ["Phone", "District"],
                [912345678, 18073],
                [84981234567, "Xa Can Loc"],
                ["9.12345677E+8", 18406.0],
            ]
        },
    )
    progress: list[tuple[int, int | None]] = []
    report = _import(
        seeded_database, settings, "vinaphone", path, sheet="Danh sách",
        progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert (report.accepted, report.rejected) == (3, {})
    assert progress[-1] == (3, 3)  # a workbook knows its rows: the bar shows both
    with seeded_database.session() as session:
        assert active_count(session, area_code="18406") == 2


def test_purge_superseded_after_retention(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    for n in range(2):
        path = write_csv(tmp_path / f"l{n}.csv", [["msisdn"], [f"091234567{n}"]])
        _import(seeded_database, settings, "vinaphone", path)
    assert purge_superseded(seeded_database, settings) == 0
    later = datetime.now(UTC) + timedelta(days=settings.imports.retention_days + 1)
    assert purge_superseded(seeded_database, settings, now=later) == 1
    assert [s for _, s, _ in _lists(seeded_database)] == [ListStatus.DELETED.value, "active"]
    with seeded_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1
    # the next upload supersedes the active list only: the purged one stays deleted
    _import(seeded_database, settings, "vinaphone", tmp_path / "l0.csv")
    assert [s for _, s, _ in _lists(seeded_database)] == ["deleted", "superseded", "active"]


@pytest.mark.parametrize(
    ("uploaded", "day"),
    [
        (datetime(2026, 12, 1, 16, 59, 59, tzinfo=UTC), date(2026, 12, 1)),  # 23:59:59 there
        (datetime(2026, 12, 1, 17, 0, tzinfo=UTC), date(2026, 12, 2)),  # midnight there
        (datetime(2026, 12, 1, 23, 30, tzinfo=UTC), date(2026, 12, 2)),  # 06:30 there
    ],
    ids=["before-local-midnight", "local-midnight", "morning-local-still-yesterday-in-utc"],
)
def test_counts_without_a_date_are_of_the_provinces_day_at_the_upload(
    seeded_database: Database, tmp_path: Path, settings: Settings, uploaded: datetime, day: date
) -> None:
    """A counts file with no date column uploaded in Ha Tinh's morning (before 07:00, still
    the day before in UTC) is of Ha Tinh's day (settings.timezone, Asia/Ho_Chi_Minh): the
    report and the coverage a carrier reads name that date, not UTC's."""
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    path = write_csv(tmp_path / "counts.csv", [["area_code", "count"], ["18073", "1200"]])
    report = _import(seeded_database, settings, "viettel", path, kind="counts", now=uploaded)
    assert report.as_of == day
    with seeded_database.session() as session:
        assert session.scalars(select(CountReport.as_of)).all() == [day]
        rows = {r["area_code"]: r for r in coverage(session, "viettel")}
    assert (rows["18073"]["reported"], rows["18073"]["as_of"]) == (1200, day)


def test_counts_report_progress_per_chunk_and_a_file_with_none_valid_says_why(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """Counts read in chunks report their progress after each (rows read, rows in the file);
    a counts file with no valid row is refused with the rows read and each reason counted."""
    rows: list[list[object]] = [["area_code", "count"], ["18100", "2"]] + [["18073", "1"]] * 1000
    path = write_xlsx(tmp_path / "counts.xlsx", {"Số liệu": rows})
    chunked = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000}
    )
    progress: list[tuple[int, int | None]] = []
    report = _import(
        seeded_database, chunked, "viettel", path, kind="counts",
        progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert (report.rows, report.accepted, report.duplicates) == (1001, 2, 999)
    assert progress[-2:] == [(1000, 1001), (1001, 1001)]
    bad = write_csv(tmp_path / "bad.csv", [["area_code", "count"], ["999", "5"], ["18073", "-3"]])
    with pytest.raises(NoValidRows) as refused:
        _import(seeded_database, settings, "viettel", bad, kind="counts")
    assert refused.value.message == (
        "bad.csv: no valid count in 2 rows (invalid_count: 1, unknown_area: 1); "
        "nothing was recorded"
    )
    assert refused.value.details == {
        "rows": 2,
        "rejected": {"invalid_count": 1, "unknown_area": 1},
    }


def test_a_counts_report_compares_each_reported_commune_with_the_carriers_own_list(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """The counts report's table (`per_area`): one row per commune the file reported, beside
    the numbers the importing carrier's own active list holds there and its latest count;
    another carrier's list and counts, and communes the file did not name, are not in it."""
    numbers = [["so_thue_bao", "ma_xa"], ["0961000001", "18073"], ["0961000002", "18073"]]
    _import(seeded_database, settings, "viettel", write_csv(tmp_path / "v.csv", numbers))
    other = [["so_thue_bao", "ma_xa"], ["0911000001", "18073"], ["0911000002", "18100"]]
    _import(seeded_database, settings, "vinaphone", write_csv(tmp_path / "o.csv", other))
    theirs = [["area_code", "count", "as_of"], ["18073", "900", "2026-03-01"]]
    _import(
        seeded_database, settings, "vinaphone", write_csv(tmp_path / "oc.csv", theirs),
        kind="counts",
    )  # fmt: skip
    counts = [["area_code", "count", "as_of"], ["18073", "5", "2026-02-01"]]
    path = write_csv(tmp_path / "c.csv", counts)
    report = _import(seeded_database, settings, "viettel", path, kind="counts")
    assert report.per_area == [
        {
            "area_code": "18073",
            "area_name": "Phường Thành Sen",
            "accepted": 2,
            "reported": 5,
            "as_of": date(2026, 2, 1),
        }
    ]


def test_counts_over_two_chunks_count_every_row_and_date_blank_cells(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """A counts file of 1,001 rows read in chunks of 1,000: rows are counted across chunks, a
    blank date takes the import's date, a blank area is refused, and imports.max_rows holds at
    its exact bound."""
    rows: list[list[object]] = [["area_code", "count", "as_of"]] + [["18073", "100", ""]] * 1000
    rows[2] = ["", "5", ""]  # no area: refused, never stored
    rows.append(["18100", "7", "2026-01-15"])  # the second chunk
    path = write_csv(tmp_path / "counts.csv", rows)
    as_of = date(2026, 3, 1)
    over = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000, "max_rows": 1000}
    )
    with pytest.raises(TooManyRows) as refused:
        _import(seeded_database, over, "viettel", path, kind="counts", as_of=as_of)
    assert refused.value.message == (
        "counts.csv has more than 1,000 rows (1,001 read); split the file or raise imports.max_rows"
    )
    assert refused.value.details == {"rows": 1001, "limit": 1000}
    exact = make_settings(
        tmp_path, database_url=settings.database_url, imports={"chunk_rows": 1000, "max_rows": 1001}
    )
    report = _import(seeded_database, exact, "viettel", path, kind="counts", as_of=as_of)
    assert (report.rows, report.accepted, report.duplicates) == (1001, 2, 998)
    assert report.rejected == {"unknown_area": 1}
    assert report.as_of is None  # two dates: per_area names each
    with seeded_database.session() as session:
        stored = session.execute(
            select(CountReport.count, CountReport.as_of).order_by(CountReport.count)
        ).all()
    assert [tuple(r) for r in stored] == [(7, date(2026, 1, 15)), (100, as_of)]


def test_coverage_counts_conflicts_per_area_with_active_lists_only(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """A carrier's coverage counts, per area, its numbers another carrier's active list also
    holds: once each, however many others hold it; superseded lists on either side count for
    nothing; numbers with no area are their own row."""
    a, b, c, d, e = (f"091200000{n}" for n in range(1, 6))

    def upload(carrier: str, name: str, rows: list[list[object]]) -> None:
        path = write_csv(tmp_path / name, [["msisdn", "area"], *rows])
        _import(seeded_database, settings, carrier, path, allow_shrink=True)

    upload("vinaphone", "v1.csv", [[e, "18100"], [a, "18073"]])  # superseded below
    upload("vinaphone", "v2.csv", [[a, "18073"], [b, ""], [c, "18100"], [d, "18073"]])
    upload("viettel", "t1.csv", [[c, "18100"]])  # superseded below
    upload("viettel", "t2.csv", [[a, "18073"], [b, "18073"], [d, "18100"], [e, "18100"]])
    upload("mobifone", "m.csv", [[a, "18073"]])
    with seeded_database.session() as session:
        rows = coverage(session, "vinaphone")
    # a (held by two others, counted once) and d in 18073; c is only in viettel's superseded
    # list and e only in vinaphone's; b has no area; the province adds up no conflicts
    assert [(r["area_code"], r["accepted"], r["conflicts"], r["depth"]) for r in rows] == [
        ("42", 3, 0, 0),
        ("18073", 2, 2, 1),
        ("18100", 1, 0, 1),
        (None, 1, 1, 0),
    ]


def test_coverage_says_which_areas_are_short_of_their_report_and_no_conflict_is_zero(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """The coverage page's columns: `short_of_reported` where the list holds less than half
    the carrier's latest count (the province compares its subtree with its communes' counts),
    never where nothing was reported; numbers with no area, none of them in another carrier's
    list, show 0 conflicts. A list's own report shows the same counts beside its numbers."""
    counts = [["area_code", "count"], ["18073", "1000"], ["18100", "1"]]
    path = write_csv(tmp_path / "c.csv", counts)
    _import(seeded_database, settings, "vinaphone", path, kind="counts", as_of=date(2026, 1, 1))
    rows = [["msisdn", "area"], ["0912345678", "18073"], ["0912345679", "18100"]]
    rows.append(["0912345670", ""])
    report = _import(seeded_database, settings, "vinaphone", write_csv(tmp_path / "l.csv", rows))
    assert [(r["area_code"], r["accepted"], r["reported"]) for r in report.per_area] == [
        ("18073", 1, 1000),
        ("18100", 1, 1),
        (None, 1, None),
    ]
    with seeded_database.session() as session:
        got = coverage(session, "vinaphone")
    assert [
        (r["area_code"], r["accepted"], r["reported"], r["conflicts"], r["short_of_reported"])
        for r in got
    ] == [
        ("42", 2, 1001, 0, True),
        ("18073", 1, 1000, 0, True),
        ("18100", 1, 1, 0, False),
        (None, 1, None, 0, False),
    ]


def test_conflicts_are_with_other_carriers_active_lists_only(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """An import's conflicts count the numbers another carrier's active list holds: not those
    only in that carrier's superseded list, nor those of the importer's own list it replaces."""
    x, y = "0912345678", "0912345679"

    def upload(carrier: str, name: str, *numbers: str):  # type: ignore[no-untyped-def]
        path = write_csv(tmp_path / name, [["msisdn"], *([n] for n in numbers)])
        return _import(seeded_database, settings, carrier, path, allow_shrink=True)

    upload("viettel", "t1.csv", x, y)
    upload("viettel", "t2.csv", y)  # x is left only in viettel's superseded list
    first = upload("vinaphone", "v1.csv", x, y)
    again = upload("vinaphone", "v2.csv", x, y)  # the same numbers as the list it replaces
    for report in (first, again):
        assert (report.conflicts, report.conflicts_by_carrier) == (1, {"viettel": 1})


def test_a_shrinking_list_and_a_stale_confirmation_are_refused_naming_the_carrier(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """A workbook that would cut the list by more than imports.max_shrink is refused, naming
    the carrier and, for the confirmation that reads it again, its sheet; a confirmation that
    names a list another import has replaced since is refused: nothing changes."""
    full = write_csv(tmp_path / "full.csv", [["msisdn"]] + [[f"09120{i:05d}"] for i in range(10)])
    first = _import(seeded_database, settings, "vinaphone", full)
    short = write_xlsx(tmp_path / "short.xlsx", {"DS": [["msisdn"], ["0912000000"]]})
    with pytest.raises(ListShrinks) as shrinks:
        _import(seeded_database, settings, "vinaphone", short, sheet="DS")
    assert shrinks.value.message.startswith(
        "short.xlsx would cut vinaphone's list from 10 to 1 numbers (90% fewer"
    )
    assert shrinks.value.details["sheet"] == "DS"
    with pytest.raises(ListChanged) as changed:
        _import(
            seeded_database, settings, "vinaphone", short, sheet="DS", allow_shrink=True,
            replacing=first.list_id + 1,
        )  # fmt: skip
    assert changed.value.details == {
        "confirmed_list_id": first.list_id + 1,
        "current_list_id": first.list_id,
    }
    assert _lists(seeded_database) == [(1, "active", 10)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks
def test_a_list_import_waits_while_another_holds_its_carrier(
    seeded_database: Database, tmp_path: Path, settings: Settings
) -> None:
    """Two list imports of one carrier at once (PostgreSQL; SQLite has one writer): the second
    waits for the first's lock on the carrier row, then becomes the next version, the only
    active one. The first is played by the test's own transaction holding the row."""
    path = write_csv(tmp_path / "l.csv", [["msisdn"], ["0912345678"]])
    _import(seeded_database, settings, "vinaphone", path)
    done: list[int] = []
    with seeded_database.engine.connect() as connection, connection.begin():
        # FOR NO KEY UPDATE: the import's own rows (their foreign keys) may still be written
        connection.execute(
            select(Carrier.id).where(Carrier.code == "vinaphone").with_for_update(key_share=True)
        )
        thread = threading.Thread(
            target=lambda: done.append(
                _import(seeded_database, settings, "vinaphone", path).version
            )
        )
        thread.start()
        thread.join(1.5)
        assert thread.is_alive() and done == []
        assert _lists(seeded_database) == [(1, "active", 1)]
    thread.join(30)
    assert done == [2]
    assert _lists(seeded_database) == [(1, "superseded", 1), (2, "active", 1)]


def test_imports_are_not_disturbed_by_another_thread_using_the_database(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    """The console and a worker share a process with imports (the web tests' workers, a worker
    serving metrics): an import's child must not inherit a lock or a connection another thread
    holds at that moment. A forked child did: on SQLite it waited for a lock nobody in it could
    release (database is locked after the busy timeout), or hung until the time limit."""
    settings = replace(settings, imports=replace(settings.imports, max_seconds=15))
    stop = threading.Event()
    writes = 0

    def busy() -> None:  # a console's requests: short transactions, back to back
        nonlocal writes
        while not stop.is_set():
            with seeded_database.session() as session:
                session.execute(update(Carrier).values(name=Carrier.name))
                session.scalar(select(func.count()).select_from(Carrier))
            writes += 1

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    try:
        for size in range(2_000, 2_008):
            path = write_list_csv(tmp_path / "l.csv", size)
            report = _import(seeded_database, settings, "vinaphone", path)
            assert report.accepted == size
    finally:
        stop.set()
        thread.join(10)
    assert writes > 0  # the other thread was busy meanwhile
