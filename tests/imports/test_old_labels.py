"""Carriers' pre-2025 labels (config/areas/old_labels/42.csv) and labels Loa cannot place."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from broadcast import audience
from broadcast.db import Database
from broadcast.models import CountReport
from broadcast.settings import Settings
from subscriber_import.service import active_count, import_file
from tests.imports.files import write_csv


def _import(db: Database, settings: Settings, path: Path, kind: str = "list"):  # type: ignore[no-untyped-def]
    return import_file(db, settings, carrier_code="viettel", kind=kind, path=path)


def test_old_labels_go_to_their_new_commune_or_stay_at_province_level(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "old.csv",
        [
            ["so_thue_bao", "ma_xa"],
            ["0961000001", "18094"],  # old Phường Trần Phú (code) → Phường Thành Sen 18073
            ["0961000002", "Xã Thạch Đài"],  # old name → Phường Hà Huy Tập 18652
            ["0961000003", "Phường Trần Phú"],  # today's name wins: Phường Trần Phú 18100
            ["0961000004", "Huyện Can Lộc"],  # an old district: province level
            ["0961000005", "18796"],  # Xã Kỳ Lợi, split in three: province level
            ["0961000006", "Xã Không Có"],  # unknown: kept with no area
            ["0961000007", "thị trấn nghèn"],  # old town, any case → Xã Can Lộc 18406
        ],
    )
    report = _import(seeded_database, settings, path)
    assert (report.rows, report.accepted, report.rejected) == (7, 7, {})
    assert report.mapped == 3
    assert report.warnings == {"old_district": 1, "split_area": 1, "unknown_area": 1}
    assert report.warning_samples == {
        "old_district": ["Huyện Can Lộc"],
        "split_area": ["18796"],
        "unknown_area": ["Xã Không Có"],
    }
    assert report.to_json()["mapped"] == 3
    with seeded_database.session() as session:
        placed = {
            code: active_count(session, area_code=code)
            for code in ("18073", "18652", "18100", "18406", "42")
        }
    assert placed == {"18073": 1, "18652": 1, "18100": 1, "18406": 1, "42": 6}


def test_a_bare_name_in_a_district_column_is_the_old_district(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [["so_thue_bao", "huyen"], ["0961000011", "Can Lộc"], ["0961000012", "Xã Can Lộc"]]
    report = _import(seeded_database, settings, write_csv(tmp_path / "d.csv", rows))
    assert report.warnings == {"old_district": 1}
    with seeded_database.session() as session:
        assert active_count(session, area_code="18406") == 1  # only the commune's own number


def test_a_file_whose_areas_are_all_unknown_keeps_every_number(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [["so_thue_bao", "ma_huyen"]] + [[f"096200000{i}", f"Vùng {i}"] for i in range(8)]
    report = _import(seeded_database, settings, write_csv(tmp_path / "all.csv", rows))
    assert (report.accepted, report.rejected) == (8, {})
    assert report.rows == report.accepted + report.duplicates + sum(report.rejected.values())
    assert report.warnings == {"unknown_area": 8}
    assert report.warning_samples["unknown_area"] == [f"Vùng {i}" for i in range(5)]
    with seeded_database.session() as session:
        province = audience.audience_counts(
            session, area_codes=["42"], carrier_codes=["viettel"], test=False
        )
        commune = audience.audience_counts(
            session, area_codes=["18073"], carrier_codes=["viettel"], test=False
        )
    assert province == {"viettel": 8}  # a province-wide alert reaches them
    assert commune == {"viettel": 0}


def test_counts_of_merged_communes_add_up_and_districts_are_refused(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "counts.csv",
        [
            ["ma_xa", "so_luong", "ngay"],
            ["Xã Thạch Đài", "1000", "2026-01-15"],  # } both now Phường Hà Huy Tập
            ["Xã Tân Lâm Hương", "500", "2026-01-15"],  # }
            ["Xã Thạch Đài", "1000", "2026-01-15"],  # the same old label again
            ["Huyện Can Lộc", "9000", "2026-01-15"],  # a district cannot be one commune
        ],
    )
    report = _import(seeded_database, settings, path, kind="counts")
    assert (report.rows, report.accepted, report.duplicates) == (4, 2, 1)
    assert report.rejected == {"old_area": 1}
    assert report.mapped == 2
    with seeded_database.session() as session:
        rows = session.execute(select(CountReport.count, CountReport.as_of)).all()
        assert session.scalar(select(func.count()).select_from(CountReport)) == 1
    assert [tuple(r) for r in rows] == [(1500, date(2026, 1, 15))]


def test_an_old_label_for_a_commune_given_by_its_code_is_a_duplicate_and_rows_after_count(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    """A commune's count given by its own code, then again by the label of an old commune now
    in it, is given twice: the second is a duplicate (not added), written to the rejects file
    with its line, value, area and reason; the rows after a duplicate still count, and every
    stored count names its import."""
    path = write_csv(
        tmp_path / "counts.csv",
        [
            ["ma_xa", "so_luong", "ngay"],
            ["18652", "2000", "2026-01-15"],  # Phường Hà Huy Tập by its code
            ["Xã Thạch Đài", "1000", "2026-01-15"],  # an old commune now in Phường Hà Huy Tập
            ["18100", "7", "2026-01-15"],  # after the duplicate
        ],
    )
    report = _import(seeded_database, settings, path, kind="counts")
    assert (report.rows, report.accepted, report.duplicates, report.mapped) == (3, 2, 1, 0)
    with seeded_database.session() as session:
        stored = session.execute(
            select(CountReport.count, CountReport.import_id).order_by(CountReport.count)
        ).all()
    assert [tuple(r) for r in stored] == [(7, report.import_id), (2000, report.import_id)]
    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as fh:
        assert list(csv.reader(fh)) == [
            ["line", "value", "area", "reason"],
            ["3", "1000", "Xã Thạch Đài", "duplicate"],
        ]
