"""`loa init`, `loa config`, `loa areas`, `loa users`, `loa redis`: set-up and administration."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import click

from broadcast.errors import ConfigError, LoaError
from broadcast.settings import Settings, load_settings


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, a non-zero exit: what scripts and people both read."""
    click.echo(f"loa: {message}", err=True)
    sys.exit(code)


def get_settings(ctx: click.Context | None = None) -> Settings:
    """Settings are read once per command run and kept on the click context."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "settings" not in root.obj:
        try:
            root.obj["settings"] = load_settings()
        except ConfigError as exc:
            fail(str(exc))
    return root.obj["settings"]


def get_database(ctx: click.Context | None = None) -> Any:
    from broadcast.db import Database

    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    settings = get_settings(ctx)
    if "database" not in root.obj:
        root.obj["database"] = Database(settings.sqlalchemy_url)
        ctx.call_on_close(root.obj["database"].dispose)
    return root.obj["database"]


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _redact(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {
            k: ("***" if k in {"password", "secret_key"} and v else _redact(v))
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [_redact(v) for v in tree]
    return tree


def register(group: click.Group) -> None:
    group.add_command(init)
    group.add_command(config_cmd)
    group.add_command(areas)
    group.add_command(users)
    group.add_command(redis_cmd)


@click.command()
@click.option(
    "--admin-password",
    help="Password for the admin user (else LOA_ADMIN_PASSWORD, else one is generated).",
)
@click.option("--admin-username", default="admin", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(admin_password: str | None, admin_username: str, as_json: bool) -> None:
    """Create or upgrade the database, sync carriers, load areas and ensure an admin exists.

    Never waits for input: a generated password is printed once.
    """
    from broadcast.bootstrap import init_database

    settings = get_settings()
    password = admin_password or os.environ.get("LOA_ADMIN_PASSWORD") or None
    try:
        result = init_database(
            get_database(), settings, admin_username=admin_username, admin_password=password
        )
    except LoaError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(_jsonable(result)))
        return
    click.echo(f"Database ready at revision {result.revision} ({settings.sqlalchemy_url})")
    click.echo(f"Carriers: {result.carriers}; areas loaded now: {result.areas_loaded}")
    if result.admin_password:
        click.echo(
            f"Admin user '{result.admin_username}' created with password: {result.admin_password}"
        )
        click.echo("It is shown only this once.")
    elif result.admin_created:
        click.echo(f"Admin user '{result.admin_username}' created.")
    elif password:
        click.echo(f"Admin user '{result.admin_username}': password updated.")


@click.command("config")
@click.option("--json", "as_json", is_flag=True)
def config_cmd(as_json: bool) -> None:
    """Check the configuration and print it (secrets masked)."""
    settings = get_settings()
    tree = _redact(_jsonable(settings))
    if as_json:
        click.echo(json.dumps(tree, ensure_ascii=False))
        return
    click.echo(f"mode: {settings.mode}")
    click.echo(f"database: {settings.sqlalchemy_url}")
    click.echo(f"redis: {settings.redis_url or f'embedded under {settings.instance_path}/redis'}")
    for carrier in settings.carriers:
        gw = carrier.gateway
        click.echo(
            f"carrier {carrier.code}: {carrier.mps} msg/s, {carrier.binds} bind(s), "
            f"window {carrier.window}, {gw.host}:{gw.port} ({gw.concatenation})"
        )


@click.group()
def areas() -> None:
    """Administrative areas (any depth)."""


@areas.command("load")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--official", is_flag=True, help="The official list since 1 July 2025 (vietnam-provinces)."
)
@click.option("--province", help="Province code for --official (default: areas.province).")
def areas_load(file: Path | None, official: bool, province: str | None) -> None:
    """Load areas: the official list of a province, or a CSV of code,name,parent_code,level.

    Units the new list no longer holds are retired (kept for history, no longer targetable).
    """
    from broadcast.areas import load_area_file, load_official, official_source

    if official == (file is not None):
        fail("give either FILE or --official")
    if province is not None and not official:
        fail("--province goes with --official")
    try:
        with get_database().session() as session:
            if official:
                code = province or get_settings().areas.province
                result = load_official(session, code, actor="loa areas load")
                source = official_source()
                origin = (
                    f"the official list of province {code} ({source['package']} "
                    f"{source['version']}, data {source['data_version']})"
                )
            else:
                assert file is not None
                result = load_area_file(session, file, actor="loa areas load")
                origin = str(file)
    except LoaError as exc:
        fail(str(exc))
    click.echo(f"{result.loaded} areas loaded from {origin}")
    if result.retired:
        click.echo(f"{len(result.retired)} retired: {', '.join(result.retired)}")


@areas.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include retired areas.")
def areas_list(show_all: bool) -> None:
    """The area tree, parents first; retired areas only with --all."""
    from sqlalchemy import select

    from broadcast.models import Area

    query = select(Area).order_by(Area.path)
    if not show_all:
        query = query.where(Area.retired_at.is_(None))
    with get_database().session() as session:
        for area in session.scalars(query):
            depth = area.path.count("/") - 2
            retired = f"\tretired {area.retired_at:%Y-%m-%d}" if area.retired_at else ""
            click.echo(f"{'  ' * depth}{area.code}\t{area.name}\t({area.level}){retired}")


@click.group()
def users() -> None:
    """Accounts."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["admin", "drafter", "approver", "carrier", "auditor"]),
    required=True,
)
@click.option("--carrier", "carrier_code", help="For carrier users: the carrier code.")
@click.option("--password", help="Else generated and printed once.")
@click.option("--name", "display_name", default="")
def users_add(
    username: str, role: str, carrier_code: str | None, password: str | None, display_name: str
) -> None:
    """Create a user."""
    from broadcast import accounts
    from broadcast.models import Role

    generated = password is None
    password = password or accounts.generate_password()
    try:
        with get_database().session() as session:
            accounts.create_user(
                session,
                username=username,
                password=password,
                role=Role(role),
                carrier_code=carrier_code,
                display_name=display_name,
                actor="loa users add",
            )
    except LoaError as exc:
        fail(str(exc))
    shown = f"; password: {password}" if generated else ""
    click.echo(f"user {username} ({role}) created{shown}")


@click.group("redis")
def redis_cmd() -> None:
    """The embedded Redis server (used when LOA_REDIS_URL is empty)."""


@redis_cmd.command("url")
def redis_url() -> None:
    """Print the Redis URL, starting the embedded server if needed."""
    from broadcast.redis_server import redis_url_for

    settings = get_settings()
    try:
        click.echo(redis_url_for(settings.redis_url, settings.instance_path))
    except ConfigError as exc:
        fail(str(exc))


@redis_cmd.command("stop")
def redis_stop() -> None:
    """Stop the embedded Redis server of this instance folder."""
    from broadcast.redis_server import stop_embedded_redis

    settings = get_settings()
    stopped = stop_embedded_redis(settings.instance_path)
    click.echo("stopped" if stopped else "no embedded Redis server was running")
