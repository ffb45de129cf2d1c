"""Carrier data that cannot be knocked over, through `loa`: a list cannot shrink by accident,
counts with dates pandas cannot hold are rejected per row, never a failed import."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from broadcast.cli import cli
from broadcast.db import Database
from broadcast.models import AuditEntry
from broadcast.settings import Settings
from tests.imports.files import write_csv, write_xlsx


def _loa(settings: Settings, *args: str) -> Result:
    env = {
        "LOA_DATABASE_URL": settings.database_url,
        "LOA_INSTANCE_PATH": str(settings.instance_path),
    }
    return CliRunner().invoke(cli, list(args), env=env)


def _numbers(n: int, start: int = 0) -> list[list[object]]:
    return [["msisdn", "area"]] + [[f"09123{start + i:05d}", "18073"] for i in range(n)]


def _count(settings: Settings) -> str:
    return _loa(settings, "subscribers", "count", "--carrier", "vinaphone").stdout.strip()


def test_a_list_cut_by_more_than_max_shrink_is_refused_until_confirmed(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    full = write_csv(tmp_path / "full.csv", _numbers(100))
    first = _loa(settings, "import", "list", "--carrier", "vinaphone", str(full), "--json")
    assert first.exit_code == 0, first.output
    # 80 of 100 is a cut of exactly 20 %: allowed without asking
    eighty = write_csv(tmp_path / "eighty.csv", _numbers(80))
    ok = _loa(settings, "import", "list", "--carrier", "vinaphone", str(eighty), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["replaced_count"] == 100
    assert _count(settings) == "80"

    three = write_csv(tmp_path / "three.csv", _numbers(3))
    refused = _loa(settings, "import", "list", "--carrier", "vinaphone", str(three), "--json")
    assert refused.exit_code != 0 and refused.stdout == ""
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "from 80 to 3 numbers" in line and "--allow-shrink" in line
    assert _count(settings) == "80"  # nothing changed
    listed = _loa(settings, "subscribers", "coverage", "--carrier", "vinaphone", "--json")
    assert {r["area_code"]: r["accepted"] for r in json.loads(listed.stdout)}["18073"] == 80

    confirmed = _loa(
        settings, "import", "list", "--carrier", "vinaphone", str(three), "--allow-shrink"
    )
    assert confirmed.exit_code == 0, confirmed.output
    assert "replaced version with 80 numbers by 3 (shrink confirmed" in confirmed.stdout
    assert _count(settings) == "3"
    with seeded_database.session() as session:
        last = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.list").order_by(AuditEntry.id)
        ).all()[-1]
        assert last.after["shrink_confirmed"] is True and last.after["replaced_count"] == 80


def test_counts_with_dates_pandas_cannot_hold_are_rejected_rows(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "counts.csv",
        [
            ["ma_xa", "so_luong", "ngay"],
            ["18073", "100", "0001-01-01"],
            ["18100", "200", "01/06/1600"],
            ["18196", "300", "31/12/9999"],
            ["18754", "400", "2026-01-15"],
        ],
    )
    result = _loa(settings, "import", "counts", "--carrier", "viettel", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accepted"] == 1 and report["rejected"] == {"invalid_date": 3}
    with open(settings.instance_path / "imports" / f"{report['import_id']}-rejects.csv") as fh:
        lines = fh.read().splitlines()
    assert [line.split(",")[0].lstrip("\ufeff") for line in lines[1:]] == ["2", "3", "4"]
    assert all(line.endswith("invalid_date") for line in lines[1:])


def test_sheet_dates_out_of_pandas_range_are_rejected_rows(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path / "counts.xlsx",
        {
            "Số liệu": [
                ["Mã xã", "Số lượng", "Ngày"],
                ["18073", 100, datetime(9999, 12, 31)],
                ["18100", 200, datetime(1600, 3, 1)],
                ["18754", 400, datetime(2026, 1, 15)],
            ]
        },
    )
    result = _loa(settings, "import", "counts", "--carrier", "viettel", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accepted"] == 1 and report["rejected"] == {"invalid_date": 2}


def test_purge_deletes_held_uploads_never_confirmed(
    seeded_database: Database, settings: Settings
) -> None:
    """A console upload held for a shrink confirmation is personal data: it goes with the
    retention of superseded lists."""
    folder = settings.instance_path / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    old, recent, pending = folder / "held-7", folder / "held-8", folder / "0123abcd"
    for path in (old, recent, pending):
        path.write_text("msisdn\n0912345678\n")
    long_ago = time.time() - (settings.imports.retention_days + 1) * 86400
    os.utime(old, (long_ago, long_ago))
    os.utime(pending, (long_ago, long_ago))
    result = _loa(settings, "subscribers", "purge")
    assert result.exit_code == 0, result.output
    assert not old.exists() and recent.exists() and pending.exists()
