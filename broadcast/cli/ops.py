"""`loa serve` (the console behind a production WSGI server) and `loa demo` (everything at once)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from broadcast.cli.core import fail, get_settings
from broadcast.errors import LoaError
from broadcast.settings import Settings


def register(group: click.Group) -> None:
    group.add_command(serve)
    group.add_command(demo)


def _resolved(settings: Settings) -> Settings:
    """Settings with the Redis URL made concrete (starting the embedded server if needed)."""
    from broadcast.redis_server import redis_url_for

    return replace(settings, redis_url=redis_url_for(settings.redis_url, settings.instance_path))


@click.command()
@click.option("--host", help="Address to listen on (default: web.host).")
@click.option("--port", type=int, help="Port (default: web.port).")
@click.option("--threads", type=int, default=8, show_default=True)
def serve(host: str | None, port: int | None, threads: int) -> None:
    """Run the console and API with waitress (a production WSGI server)."""
    from waitress import serve as waitress_serve

    from broadcast.logs import configure_logging
    from broadcast.web import create_app

    settings = _resolved(get_settings())
    configure_logging(settings, process="loa-web")
    app = create_app(settings)
    host = host or settings.web.host
    port = port if port is not None else settings.web.port
    click.echo(f"Loa console on http://{host}:{port}/")
    waitress_serve(app, host=host, port=port, threads=threads, ident="loa")


# --- demo ------------------------------------------------------------------------------------

# Each demo carrier's SMSC behaves a little differently, as real ones do.
DEMO_SMSC: dict[str, dict[str, Any]] = {
    "viettel": {"latency": 0.005, "receipt_delay": 1.0, "transient_error_rate": 0.01},
    "vinaphone": {"latency": 0.01, "receipt_delay": 1.5},
    "mobifone": {"latency": 0.02, "receipt_delay": 2.0, "permanent_error_rate": 0.01},
    "vietnamobile": {"latency": 0.02, "receipt_delay": 2.0, "transient_error_rate": 0.03},
    "gmobile": {"latency": 0.03, "receipt_delay": 2.5},
    "itelecom": {"latency": 0.03, "receipt_delay": 2.5},
    "reddi": {"latency": 0.05, "receipt_delay": 3.0},
}
DEMO_RECEIPT_MIX = {"DELIVRD": 0.95, "UNDELIV": 0.03, "EXPIRED": 0.01, "REJECTD": 0.01}
# Share of delivered alerts the demo's subscribers answer ("1" safe, "2" need help, other).
DEMO_REPLY_RATE = 0.05
SAMPLE_REPLY_WAIT = 2.0  # seconds `--send-sample` waits after completion for the last replies
SAMPLE_AREA = "18073"  # Phường Thành Sen, the provincial capital


def _start_simulators(settings: Settings) -> Any:
    from smpp_gateway.simulator import SimulatorConfig, SmscSimulator

    sims = []
    for carrier in settings.carriers:
        gw = carrier.gateway
        behaviour = {
            "receipt_id_format": "dec" if gw.receipt_id_format == "dec" else "hex",
            **DEMO_SMSC.get(carrier.code, {}),
        }
        config = SimulatorConfig(
            system_id=gw.system_id,
            password=gw.password,
            tps=float(carrier.mps) * 1.5,
            receipt_mix=DEMO_RECEIPT_MIX,
            message_id_format="hex",
            reply_rate=DEMO_REPLY_RATE,
            **behaviour,
        )
        sim = SmscSimulator(config, host="127.0.0.1", port=gw.port)
        sim.start()
        sims.append(sim)
    return sims


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["LOA_REDIS_URL"] = settings.redis_url
    env["LOA_INSTANCE_PATH"] = str(settings.instance_path)
    if settings.database_url:
        env["LOA_DATABASE_URL"] = settings.database_url
    return env


@contextlib.contextmanager
def _children(commands: list[list[str]], env: dict[str, str], log_dir: Path) -> Iterator[list[Any]]:
    """Start child processes; on exit, SIGTERM them and wait (SIGKILL after a grace period)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i, command in enumerate(commands):
            log = (log_dir / f"{command[2] if len(command) > 2 else 'child'}-{i}.log").open("ab")
            procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _load_demo_data(settings: Settings, database: Any, subscribers: int) -> None:
    from broadcast.cli.demo_data import build_files, needs_subscribers
    from subscriber_import.service import import_file

    if not needs_subscribers(database):
        click.echo("Demo subscribers already loaded; reusing them.")
        return
    click.echo(f"Generating about {subscribers:,} demo subscribers for Ha Tinh…")
    files = build_files(settings, database, settings.instance_path / "demo", subscribers)
    for carrier, list_path, counts_path in files:
        report = import_file(
            database, settings, carrier_code=carrier, kind="counts", path=counts_path
        )
        report = import_file(database, settings, carrier_code=carrier, kind="list", path=list_path)
        click.echo(
            f"  {carrier:<13} {report.accepted:>8,} accepted, {report.duplicates} duplicates, "
            f"{sum(report.rejected.values())} rejected, {report.mapped} old area labels mapped"
        )


def _send_sample(
    settings: Settings, database: Any, timeout: float
) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Draft, approve and send a sample alert to one commune; wait until it is final; its
    delivery states per carrier and the replies that came back."""
    from redis import Redis
    from rq import Queue
    from sqlalchemy import select

    from broadcast import alerts, keys, replies
    from broadcast.live import state_counts
    from broadcast.models import (
        Alert,
        AlertCategory,
        AlertStatus,
        User,
    )

    with database.session() as session:
        drafter = session.scalar(select(User).where(User.username == "drafter"))
        approver = session.scalar(select(User).where(User.username == "approver"))
        draft = alerts.AlertDraft(
            title="Diễn tập cảnh báo bão",
            body=(
                "UBND tinh Ha Tinh: dien tap canh bao bao so 3. Nguoi dan vung ven bien "
                "theo doi thong tin tren dai phat thanh."
            ),
            category=AlertCategory.WARNING,
            area_codes=(SAMPLE_AREA,),
            carrier_codes=settings.carrier_codes,
            brandname="UBND HaTinh",
            event="Bão",
            urgency="Expected",
            severity="Moderate",
            certainty="Likely",
            reply_keywords=replies.DEFAULT_KEYWORDS,
        )
        alert = alerts.create_draft(session, draft, user=drafter)
        alerts.submit_for_approval(session, alert.id, user=drafter)
        alerts.approve(
            session,
            alert.id,
            user=approver,
            version=alert.version,
            waive_quiet_hours=True,
            waive_daily_cap=True,
        )
        alert_id = alert.id
    with Redis.from_url(settings.redis_url) as conn:
        Queue(keys.CONTROL_QUEUE, connection=conn).enqueue(
            keys.FAN_OUT_JOB,
            alert_id,
            job_id=keys.fan_out_job_id(alert_id),
            job_timeout=keys.FAN_OUT_JOB_TIMEOUT,
        )
    click.echo(f"Sample alert #{alert_id} approved and queued; waiting for every receipt…")
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        with database.session() as session:
            status = session.scalar(select(Alert.status).where(Alert.id == alert_id))
        if status in (AlertStatus.COMPLETED, AlertStatus.CANCELLED):
            break
        time.sleep(0.5)
    with database.session() as session:
        result = state_counts(session, alert_id)
    if status != AlertStatus.COMPLETED:
        click.echo(json.dumps({"alert": alert_id, "status": str(status), "carriers": result}))
        fail(f"sample alert #{alert_id} did not complete within {timeout:.0f} s (status {status})")
    time.sleep(SAMPLE_REPLY_WAIT)  # the simulated subscribers answer after their receipts
    with database.session() as session:
        answers = replies.summary(session, session.get(Alert, alert_id))
    return result, answers


@click.command()
@click.option("--port", type=int, help="Console port (default: web.port).")
@click.option(
    "--subscribers",
    type=int,
    default=200_000,
    show_default=True,
    help="How many demo subscribers to generate on first run.",
)
@click.option(
    "--send-sample",
    is_flag=True,
    help="Headless: send a sample alert end to end, print the result, exit.",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="With --send-sample: how long to wait for the alert to complete.",
)
def demo(port: int | None, subscribers: int, send_sample: bool, timeout: float) -> None:
    """Run Loa on embedded defaults: database, Redis, one simulated SMSC per carrier, sender
    workers, demo data and the console. Ctrl-C stops everything it started."""
    from broadcast.bootstrap import init_database
    from broadcast.cli.demo_data import demo_passwords, ensure_users
    from broadcast.db import Database
    from broadcast.logs import configure_logging
    from broadcast.redis_server import stop_embedded_redis

    settings = get_settings()
    configure_logging(settings, process="loa-demo")
    started_redis = settings.embedded_redis
    try:
        settings = _resolved(settings)
    except LoaError as exc:
        fail(str(exc))
    instance = settings.instance_path
    database = Database(settings.sqlalchemy_url)
    try:
        click.echo(f"Instance folder: {instance}")
        passwords = demo_passwords(instance)
        init_database(
            database, settings, admin_password=passwords["admin"], reset_admin_password=False
        )
        users = ensure_users(database, passwords)
        _load_demo_data(settings, database, subscribers)
        sims = _start_simulators(settings)
        loa = str(Path(sys.executable).with_name("loa"))
        workers = [[loa, "worker", "--carrier", c.code] for c in settings.carriers]
        workers.append([loa, "worker", "--control"])
        workers.append([loa, "worker", "--imports"])
        with _children(workers, _child_env(settings), instance / "logs"):
            if send_sample:
                result, answers = _send_sample(settings, database, timeout)
                click.echo(json.dumps({"carriers": result, "replies": answers}, ensure_ascii=False))
                return
            _serve_until_interrupted(settings, port, users)
        for sim in sims:
            sim.stop()
    finally:
        database.dispose()
        if started_redis:
            stop_embedded_redis(instance)


def _serve_until_interrupted(settings: Settings, port: int | None, users: list[Any]) -> None:
    from waitress import create_server

    from broadcast.web import create_app

    app = create_app(settings)
    server = create_server(
        app, host=settings.web.host, port=port if port is not None else settings.web.port, threads=8
    )
    url = f"http://{settings.web.host}:{server.effective_port}/"
    click.echo("")
    click.echo(f"Loa is running: {url}")
    click.echo("Demo users (username / password):")
    for user in users:
        click.echo(f"  {user.username:<10} {user.role:<9} {user.password}")
    click.echo("")
    click.echo("Next: log in as 'drafter', draft an alert for an area and submit it;")
    click.echo("log in as 'approver' and approve it; watch it reach every carrier.")
    click.echo("Ctrl-C stops everything.")
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("\nStopping…")
    finally:
        server.close()
