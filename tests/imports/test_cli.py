"""`loa import` and `loa subscribers` as scripts use them: JSON on stdout, one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from broadcast.cli import cli
from broadcast.db import Database
from broadcast.models import SubscriberList
from broadcast.policy import as_utc
from broadcast.settings import Settings
from tests.imports.files import write_csv


def _env(settings: Settings) -> dict[str, str]:
    return {
        "LOA_DATABASE_URL": settings.database_url,
        "LOA_INSTANCE_PATH": str(settings.instance_path),
    }


def test_import_list_json_and_count(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "list.csv",
        [["msisdn", "area"], ["0912345678", "18073"], ["0912345678", "18073"], ["x", ""]],
    )
    runner = CliRunner()
    result = runner.invoke(
        cli, ["import", "list", "--carrier", "vinaphone", str(path), "--json"], env=_env(settings)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["rows"], report["accepted"], report["duplicates"]) == (3, 1, 1)
    assert (
        report["rejected"] == {"invalid": 1}
        and report["conflicts"] == 0
        and report["converted"] == 0
    )
    count = runner.invoke(
        cli, ["subscribers", "count", "--carrier", "vinaphone", "--area", "42"], env=_env(settings)
    )
    assert count.exit_code == 0 and count.stdout.strip() == "1"


def test_refused_file_exits_non_zero_with_one_line(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "list.xlsx"
    path.write_text("msisdn\n0912345678\n")
    result = CliRunner().invoke(
        cli, ["import", "list", "--carrier", "vinaphone", str(path), "--json"], env=_env(settings)
    )
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "named .xlsx but its content is text" in lines[0]
    count = CliRunner().invoke(cli, ["subscribers", "count"], env=_env(settings))
    assert count.stdout.strip() == "0"


def test_counts_human_output_and_unknown_carrier(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "counts.csv", [["Huyện", "Số lượng"], ["Xã Can Lộc", "1.234"]])
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["import", "counts", "--carrier", "viettel", str(path), "--as-of", "2026-01-31"],
        env=_env(settings),
    )
    assert result.exit_code == 0, result.output
    assert "counts import #1 for viettel: 1 rows, 1 accepted" in result.stdout
    coverage = runner.invoke(
        cli, ["subscribers", "coverage", "--carrier", "viettel", "--json"], env=_env(settings)
    )
    assert json.loads(coverage.stdout)[0]["reported"] == 1234
    bad = runner.invoke(cli, ["import", "list", "--carrier", "acme", str(path)], env=_env(settings))
    assert bad.exit_code != 0 and "unknown carrier 'acme'" in bad.stderr


def test_a_host_in_the_provinces_zone_stores_list_times_in_utc(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    """`loa import` on a host whose clock is set to Ha Tinh's zone (UTC+7, as a server in
    the province may be): the list's activation and the old version's supersession are stored
    as UTC instants, so the purge after `imports.retention_days` is not 7 hours late. A
    process of its own, since the zone is read when a process starts; both imports run in it
    (the second supersedes the first), as `loa import` twice would, without a second start-up
    of the CLI and its imports' fork server."""
    path = write_csv(tmp_path / "list.csv", [["msisdn"], ["0912345678"]])
    twice = (
        "import sys; from broadcast.cli import cli\n"
        "for _ in range(2): cli.main(sys.argv[1:], prog_name='loa', standalone_mode=False)"
    )
    command = [sys.executable, "-c", twice]
    command += ["import", "list", "--carrier", "vinaphone", str(path), "--json"]
    env = {**os.environ, **_env(settings), "TZ": "Asia/Ho_Chi_Minh"}
    before = datetime.now(UTC)
    done = subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    after = datetime.now(UTC)
    assert [json.loads(line)["accepted"] for line in done.stdout.splitlines()] == [1, 1], done
    with seeded_database.session() as session:
        old, new = session.execute(
            select(SubscriberList.activated_at, SubscriberList.superseded_at).order_by(
                SubscriberList.version
            )
        ).all()
    for moment in (old[0], old[1], new[0]):
        assert moment is not None
        assert before <= as_utc(moment) <= after, (moment, before, after)
