"""The province since 1 July 2025: `loa areas load`, retirement and moves, on both databases."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from broadcast.cli import cli
from broadcast.db import Database
from broadcast.models import Area
from tests.imports.files import write_csv

# The pre-2025 shape: a district (436) holding a ward (18082, Phường Đại Nài, split since).
OLD_TREE = [
    ["code", "name", "parent_code", "level"],
    ["42", "Tỉnh Hà Tĩnh", "", "province"],
    ["436", "Thành phố Hà Tĩnh", "42", "district"],
    ["18082", "Phường Đại Nài", "436", "ward"],
]


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"LOA_INSTANCE_PATH": str(tmp_path / "instance"), "LOA_DATABASE_URL": database_url}


def _run(tmp_path: Path, database_url: str, *args: str) -> str:
    out = CliRunner().invoke(cli, list(args), env=_env(tmp_path, database_url))
    assert out.exit_code == 0, out.output
    return out.output


def test_official_load_retires_the_abolished_units_and_keeps_them(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    database.upgrade()
    _run(tmp_path, database_url, "areas", "load", str(write_csv(tmp_path / "old.csv", OLD_TREE)))

    out = _run(tmp_path, database_url, "areas", "load", "--official")
    assert "70 areas loaded from the official list of province 42" in out
    assert "vietnam-provinces 2025.10.1, data 2025-10-18" in out
    assert "2 retired: 436, 18082" in out

    with database.session() as session:
        old = {
            a.code: a for a in session.scalars(select(Area).where(Area.code.in_(["436", "18082"])))
        }
        assert old["436"].retired_at is not None and old["18082"].retired_at is not None
        assert old["18082"].path == "/42/436/18082/"  # history keeps its place
        sen = session.scalar(select(Area).where(Area.code == "18073"))
        assert sen is not None and (sen.name, sen.path) == ("Phường Thành Sen", "/42/18073/")

    listed = _run(tmp_path, database_url, "areas", "list")
    assert "Phường Thành Sen" in listed and "Thành phố Hà Tĩnh" not in listed
    everything = _run(tmp_path, database_url, "areas", "list", "--all")
    assert "Thành phố Hà Tĩnh\t(district)\tretired" in everything

    # Loading again retires nothing more and brings nothing back.
    again = _run(tmp_path, database_url, "areas", "load", "--official", "--province", "42")
    assert "retired" not in again


def test_area_load_refuses_bad_arguments(tmp_path: Path, database_url: str) -> None:
    runner = CliRunner()
    env = _env(tmp_path, database_url)
    assert "give either FILE or --official" in runner.invoke(cli, ["areas", "load"], env=env).output
    unknown = runner.invoke(cli, ["areas", "load", "--official", "--province", "99"], env=env)
    assert unknown.exit_code != 0
    assert "no province with code '99'" in unknown.output


def test_moving_an_area_moves_its_whole_subtree(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    database.upgrade()
    _run(tmp_path, database_url, "areas", "load", str(write_csv(tmp_path / "old.csv", OLD_TREE)))
    moved = [
        ["code", "name", "parent_code", "level"],
        ["42", "Tỉnh Hà Tĩnh", "", "province"],
        ["900", "Vùng ven biển", "42", "zone"],
        ["436", "Thành phố Hà Tĩnh", "900", "district"],
    ]  # 18082 is not in this file: it moves with its parent all the same
    _run(tmp_path, database_url, "areas", "load", str(write_csv(tmp_path / "moved.csv", moved)))
    with database.session() as session:
        paths = dict(session.execute(select(Area.code, Area.path)).all())
    assert paths["436"] == "/42/900/436/"
    assert paths["18082"] == "/42/900/436/18082/"  # the descendant follows its parent

    # A parent placed under its own child is refused and changes nothing.
    loop = [["code", "name", "parent_code", "level"], ["900", "Vùng", "18082", "zone"]]
    out = CliRunner().invoke(
        cli,
        ["areas", "load", str(write_csv(tmp_path / "loop.csv", loop))],
        env=_env(tmp_path, database_url),
    )
    assert out.exit_code != 0 and "loops through" in out.output
    with database.session() as session:
        assert session.scalar(select(Area.path).where(Area.code == "900")) == "/42/900/"
