"""A file can only fail its own import: `loa import` (a subprocess where its memory is
measured) on hostile workbooks, zip bombs, XML entities and a file too slow for
imports.max_seconds. Each answer is one line on stderr and a non-zero exit; nothing is written;
memory stays bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from broadcast.cli import cli
from broadcast.db import Database
from broadcast.models import Import, Subscriber, SubscriberList
from broadcast.settings import Settings
from tests.imports.files import (
    BILLION_LAUGHS,
    HOSTILE_CELLS,
    write_list_csv,
    write_raw_xlsx,
)

# 1.6 KB; python-calamine alone needs 0.8 GB for the 26,000,000-cell rectangle it spans.
NEAR_CORNER = {"A1": "msisdn", "A2": "0912345678", "Z1000000": "x"}

# Runs the CLI and reports its exit, output and the peak resident memory of any process of its
# tree: the CLI, the imports' fork server and the import it forks (not the CLI's children, so
# RUSAGE_CHILDREN does not see it). Sampled every 10 ms, and the kernel's high-water marks
# (VmHWM) of each process are read, so a peak between two samples counts too. The tree is
# walked through /proc/PID/task/TID/children (Linux): psutil's children(recursive=True) reads
# every process on the machine, a core's worth of CPU at this rate, taken from the CLI measured.
MEASURE = """
import glob, json, subprocess, sys, time

def high_water(pid):
    with open(f"/proc/{pid}/status") as fh:
        return int(fh.read().split("VmHWM:")[1].split()[0]) * 1024

def family(pid):
    found = [pid]
    for parent in found:  # grows as it goes: children, grandchildren, ...
        for children in glob.glob(f"/proc/{parent}/task/*/children"):
            try:
                with open(children) as fh:
                    found += [int(child) for child in fh.read().split()]
            except OSError:  # ended meanwhile
                pass
    return found

p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
peak = 0
while p.poll() is None:
    for pid in family(p.pid):
        try:
            peak = max(peak, high_water(pid))
        except (OSError, IndexError):  # ended meanwhile
            pass
    time.sleep(0.01)
out, err = p.communicate()
print(json.dumps({"code": p.returncode, "out": out.decode(), "err": err.decode(),
                  "peak_mb": peak / 2**20}))
"""


def _env(settings: Settings, **imports: object) -> dict[str, str]:
    env = {
        "LOA_DATABASE_URL": settings.database_url,
        "LOA_INSTANCE_PATH": str(settings.instance_path),
    }
    env.update({f"LOA_IMPORTS__{k.upper()}": str(v) for k, v in imports.items()})
    return env


def loa_import(settings: Settings, path: Path, **imports: object) -> dict[str, Any]:
    """`loa import list --carrier vinaphone PATH` as a separate process, measured."""
    command = [sys.executable, "-c", "from broadcast.cli import main; main()"]
    command += ["import", "list", "--carrier", "vinaphone", str(path)]
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        env={**os.environ, **_env(settings, **imports)},
        capture_output=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)


def loa_import_here(settings: Settings, path: Path, **imports: object) -> dict[str, Any]:
    """The same command in this process (its import still in a child of a fork server, under
    the same limits), for a file whose answer matters and not the memory: a process of its own
    costs seconds of start-up, and only a separate process can be measured."""
    result = CliRunner().invoke(
        cli,
        ["import", "list", "--carrier", "vinaphone", str(path)],
        env=_env(settings, **imports),
    )
    return {"code": result.exit_code, "out": result.stdout, "err": result.stderr}


def _one_line(run: dict[str, Any]) -> str:
    assert run["code"] != 0, run
    assert run["out"] == "", run
    lines = run["err"].strip().splitlines()
    assert len(lines) == 1, run["err"]
    return lines[0]


def _nothing_written(database: Database) -> list[tuple[str, str | None]]:
    """No list and no numbers; returns (status, error) of each Import row."""
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
        assert session.scalar(select(func.count()).select_from(SubscriberList)) == 0
        rows = session.execute(select(Import.status, Import.error).order_by(Import.id)).all()
    return [(status.value, error) for status, error in rows]


def test_a_sheet_spanning_too_many_cells_is_refused_before_it_is_read(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    hostile = write_raw_xlsx(tmp_path / "list.xlsx", HOSTILE_CELLS, dimension="A1:A2")
    line = _one_line(loa_import_here(settings, hostile))
    assert "cells from A1 to XFD1048576" in line and "17,179,869,184 cells" in line, line
    near = write_raw_xlsx(tmp_path / "near.xlsx", NEAR_CORNER)  # no <dimension> at all
    run = loa_import(settings, near)
    line = _one_line(run)
    assert "cells from A1 to Z1000000" in line and "limit is 20,000,000" in line, line
    # Refused from the references alone: the CLI never grew toward the 0.8 GB rectangle.
    assert run["peak_mb"] < 450, run
    assert [s for s, _ in _nothing_written(seeded_database)] == ["rejected", "rejected"]
    assert not list((settings.instance_path / "imports").glob("*"))  # no rejects file left


def test_cells_are_measured_whatever_the_order_of_their_attributes(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    hostile = write_raw_xlsx(tmp_path / "list.xlsx", HOSTILE_CELLS, type_first=True)
    result = CliRunner().invoke(
        cli, ["import", "list", "--carrier", "vinaphone", str(hostile)], env=_env(settings)
    )
    assert result.exit_code != 0 and "cells from A1 to XFD1048576" in result.stderr, result.output
    # A sheet whose `<dimension>` says A1:XFD1048576 but whose cells stay near A1 is read:
    # the reader's cost follows the cells, and so does the check.
    declared = write_raw_xlsx(
        tmp_path / "declared.xlsx",
        {"A1": "msisdn", "A2": "0912345678"},
        dimension="A1:XFD1048576",
    )
    result = CliRunner().invoke(
        cli, ["import", "list", "--carrier", "vinaphone", str(declared)], env=_env(settings)
    )
    assert result.exit_code == 0 and "1 accepted" in result.stdout, result.output


def test_the_memory_ceiling_stops_what_the_checks_let_through(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    near = write_raw_xlsx(tmp_path / "near.xlsx", NEAR_CORNER)
    run = loa_import(settings, near, max_cells=10**12, max_memory_mb=256)
    line = _one_line(run)
    assert "needed more than 256 MB of memory" in line, line
    assert run["peak_mb"] < 600, run
    # The same for the 17-billion-cell file: the reader aborts, the CLI answers.
    hostile = write_raw_xlsx(tmp_path / "list.xlsx", HOSTILE_CELLS)
    assert "needed more than" in _one_line(loa_import_here(settings, hostile, max_cells=10**12))
    statuses = _nothing_written(seeded_database)
    assert [s for s, _ in statuses] == ["failed", "failed"]
    assert "imports.max_memory_mb" in (statuses[0][1] or "")


def test_zip_bombs_and_xml_entities_are_refused(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    runner = CliRunner()

    def refused(path: Path, **imports: object) -> str:
        result = runner.invoke(
            cli,
            ["import", "list", "--carrier", "vinaphone", str(path)],
            env=_env(settings, **imports),
        )
        assert result.exit_code != 0 and result.stdout == "", result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        return lines[0]

    cells = {"A1": "msisdn", "A2": "0912345678"}
    # 40 MB of blanks in a 60 KB file: refused at 100:1 while unpacking, not after.
    bomb = write_raw_xlsx(tmp_path / "bomb.xlsx", cells, padding=40 << 20)
    assert bomb.stat().st_size < 100_000
    assert "unpacks at more than 100:1" in refused(bomb)
    # The whole workbook unpacks past imports.max_unzipped_mb (declared sizes, then counted).
    assert "unpacks to more than 1 MB" in refused(bomb, max_unzipped_mb=1)
    laughs = write_raw_xlsx(tmp_path / "laughs.xlsx", cells, prolog=BILLION_LAUGHS)
    assert "declares XML entities" in refused(laughs)
    assert [s for s, _ in _nothing_written(seeded_database)] == ["rejected"] * 3


def test_an_import_past_the_time_limit_is_stopped_and_leaves_nothing(
    seeded_database: Database, settings: Settings, tmp_path: Path
) -> None:
    # 100,000 rows take about 2 s to import here: far past 0.1 s, however fast the machine.
    slow = write_list_csv(tmp_path / "list.csv", 100_000)
    result = CliRunner().invoke(
        cli,
        ["import", "list", "--carrier", "vinaphone", str(slow), "--json"],
        env=_env(settings, max_seconds=0.1),
    )
    assert result.exit_code != 0 and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "took longer than 0.1 s" in lines[0], result.stderr
    assert _nothing_written(seeded_database)[0][0] == "failed"
    assert not list((settings.instance_path / "imports").glob("*"))
    # The same file within the limit imports (the limit, not the file, stopped it).
    done = CliRunner().invoke(
        cli,
        ["import", "list", "--carrier", "vinaphone", str(slow), "--json"],
        env=_env(settings),
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["accepted"] == 100_000
