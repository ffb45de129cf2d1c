"""`loa init`, areas, accounts: what an operator runs first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import func, select

from broadcast import accounts
from broadcast.areas import load_area_file
from broadcast.cli import cli
from broadcast.db import Database, alembic_config
from broadcast.errors import ValidationFailed
from broadcast.models import Area, AuditEntry, Carrier, Role, User


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"LOA_INSTANCE_PATH": str(tmp_path / "instance"), "LOA_DATABASE_URL": database_url}


def test_init_creates_admin_once_and_is_idempotent(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["init", "--json"], env=_env(tmp_path, database_url))
    assert first.exit_code == 0, first.output
    result = json.loads(first.output)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert result["revision"] == head
    assert result["carriers"] == 7
    assert result["areas_loaded"] == 70  # Hà Tĩnh and its 69 communes and wards
    password = result["admin_password"]
    assert password and len(password) >= 12

    again = runner.invoke(cli, ["init", "--json"], env=_env(tmp_path, database_url))
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["admin_password"] is None  # shown only once

    with database.session() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.role == Role.ADMIN
        assert accounts.verify_password(admin, password)
        assert not admin.password_hash.startswith(password)
        assert session.scalar(select(func.count(Carrier.id))) == 7
        assert session.scalar(select(func.count(Area.id))) == 70


def test_init_takes_password_from_environment_without_prompting(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    env = {**_env(tmp_path, database_url), "LOA_ADMIN_PASSWORD": "very-long-password"}
    out = CliRunner().invoke(cli, ["init"], env=env, input=None)
    assert out.exit_code == 0, out.output
    assert "very-long-password" not in out.output
    with database.session() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        assert accounts.verify_password(admin, "very-long-password")


def test_init_refuses_a_short_admin_password(tmp_path: Path, database_url: str) -> None:
    out = CliRunner().invoke(
        cli, ["init", "--admin-password", "short"], env=_env(tmp_path, database_url)
    )
    assert out.exit_code != 0
    assert "password" in out.output


def test_bad_environment_value_fails_at_start_naming_the_key(tmp_path: Path) -> None:
    env = {**_env(tmp_path, "sqlite://"), "LOA_DELIVERY__MAX_ATTEMPTS": "-3"}
    out = CliRunner().invoke(cli, ["config"], env=env)
    assert out.exit_code == 2
    assert "delivery.max_attempts" in out.output


def test_area_tree_is_the_province_and_its_communes(seeded_database: Database) -> None:
    with seeded_database.session() as session:
        ward = session.scalar(select(Area).where(Area.code == "18073"))
        assert ward is not None and ward.name == "Phường Thành Sen" and ward.level == "ward"
        assert ward.path == "/42/18073/"
        assert ward.parent is not None and ward.parent.code == "42"
        levels = dict(session.execute(select(Area.level, func.count()).group_by(Area.level)).all())
        assert levels == {"province": 1, "commune": 60, "ward": 9}


def test_area_file_with_unknown_parent_changes_nothing(
    seeded_database: Database, tmp_path: Path
) -> None:
    bad = tmp_path / "areas.csv"
    bad.write_text("code,name,parent_code,level\n500,Xã Mới,42,commune\n501,Xã Lạ,999,commune\n")
    with (
        pytest.raises(ValidationFailed, match=r"line 3: parent_code 999"),
        seeded_database.session() as session,
    ):
        load_area_file(session, bad)
    with seeded_database.session() as session:
        assert session.scalar(select(Area).where(Area.code == "500")) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("code,name\n1,x\n", "missing column"),
        ("code,name,parent_code,level\n1,A,,province\n1,B,,province\n", "line 3: code 1 repeats"),
        ("code,name,parent_code,level\n1,,,province\n", "line 2: name is empty"),
    ],
)
def test_area_file_errors_name_the_line(
    seeded_database: Database, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "areas.csv"
    path.write_text(content)
    with pytest.raises(ValidationFailed, match=message), seeded_database.session() as session:
        load_area_file(session, path)


def test_users_and_tokens(seeded_database: Database) -> None:
    with seeded_database.session() as session:
        vt = accounts.create_user(
            session,
            username="vt-staff",
            password="long-enough-pw",
            role=Role.CARRIER,
            carrier_code="viettel",
        )
        _, token = accounts.create_token(session, vt, "uploads", actor=vt)
        assert accounts.user_for_token(session, token) is vt
        assert accounts.user_for_token(session, token + "x") is None
        token_id = session.scalars(
            select(AuditEntry.object_id).where(AuditEntry.action == "token.create")
        ).one()
        accounts.revoke_token(session, int(token_id), actor=vt)
        assert accounts.user_for_token(session, token) is None
        with pytest.raises(ValidationFailed) as info:
            accounts.create_user(
                session,
                username="vt-staff",
                password="short",
                role=Role.CARRIER,
            )
        assert set(info.value.details) == {"username", "password", "carrier"}
        actions = session.scalars(select(AuditEntry.action)).all()
        assert {"user.create", "token.create", "token.revoke"} <= set(actions)
