"""`loa worker`, `loa reconcile`, `loa send`, `loa progress`: delivery from the command line.

A composition root: it builds the worker runtime from the settings and hands over to
`workers`; nothing here decides what is sent.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import click

from broadcast.cli.core import fail, get_database, get_settings
from broadcast.errors import LoaError

if TYPE_CHECKING:
    from workers.runtime import Runtime


def register(group: click.Group) -> None:
    """Add this module's subcommands to the `loa` group."""
    group.add_command(worker)
    group.add_command(reconcile_cmd)
    group.add_command(send)
    group.add_command(progress)


def _runtime() -> Runtime:
    from workers.runtime import build_runtime, install

    try:
        runtime = build_runtime(get_settings(), get_database())
    except LoaError as exc:
        fail(str(exc))
    install(runtime)
    return runtime


@click.command()
@click.option("--carrier", "carrier_code", help="Send for this carrier (its SMPP binds).")
@click.option("--control", is_flag=True, help="Run fan-out, resume and reconcile jobs instead.")
@click.option("--imports", is_flag=True, help="Run carriers' uploaded imports instead.")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port.")
def worker(
    carrier_code: str | None,
    control: bool,
    imports: bool,
    processes: int,
    burst: bool,
    metrics_port: int | None,
) -> None:
    """A long-lived worker: one carrier's sender (binds kept open across jobs), the control
    worker, or the imports worker. With --processes N, N such processes share the carrier's
    rate limit."""
    if [bool(carrier_code), control, imports].count(True) != 1:
        fail("give either --carrier CODE, --control or --imports")
    settings = get_settings()
    if carrier_code:
        try:
            settings.carrier(carrier_code)
        except LoaError as exc:
            fail(str(exc))
    if processes > 1:
        args = [sys.executable, "-c", "from broadcast.cli import main; main()", "worker"]
        if carrier_code:
            args += ["--carrier", carrier_code]
        else:
            args += ["--control"] if control else ["--imports"]
        args += ["--burst"] if burst else []
        children = []
        for i in range(processes):
            port = [] if metrics_port is None else ["--metrics-port", str(metrics_port + i)]
            children.append(subprocess.Popen([*args, *port]))

        def stop_children(signum: int, frame: object) -> None:
            # A supervisor stops the parent: each child stops as a single worker would.
            for child in children:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, stop_children)
        try:
            codes = [child.wait() for child in children]
        except KeyboardInterrupt:
            for child in children:
                child.send_signal(signal.SIGTERM)
            codes = [child.wait() for child in children]
        sys.exit(max(codes))
    runtime = _runtime()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    from smpp_gateway.errors import GatewayError
    from workers.processes import ControlWorker, ImportWorker, SenderWorker
    from workers.sender import forget, register, sender_for

    if control:
        # with_scheduler: fan-out jobs of scheduled alerts (enqueue_at) start on time.
        ControlWorker(runtime).work(
            burst=burst, logging_level=settings.log_level, with_scheduler=not burst
        )
        return
    if imports:
        ImportWorker(runtime).work(burst=burst, logging_level=settings.log_level)
        return
    assert carrier_code is not None  # exactly one of carrier, control and imports was given
    try:
        sender = sender_for(runtime, carrier_code)
    except GatewayError as exc:
        fail(str(exc))
    register(sender)
    try:
        SenderWorker(sender).work(burst=burst, logging_level=settings.log_level)
    finally:
        sender.close()
        forget(carrier_code)


@click.command("reconcile")
@click.option("--json", "as_json", is_flag=True)
def reconcile_cmd(as_json: bool) -> None:
    """Rebuild queues, counters and control keys from the database; finish what was left."""
    from workers.jobs import reconcile

    _runtime()
    report = reconcile()
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(report.items())) or "nothing to do")


@click.command()
@click.argument("alert_id", type=int)
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for receipts.")
def send(alert_id: int, timeout: float) -> None:
    """Send an approved alert from this process (fan-out, every carrier, receipts): for demos
    and small installations without separate workers."""
    from workers import jobs
    from workers.processes import SenderWorker
    from workers.sender import forget, sender_for

    runtime = _runtime()
    result = jobs.fan_out(alert_id)
    if result.get("result") != "fanned out":
        fail(f"alert {alert_id}: {result['result']}")
    carriers = sorted(result["written"])
    try:
        for code in carriers:
            SenderWorker(sender_for(runtime, code)).work(burst=True, logging_level="WARNING")
        end = time.monotonic() + timeout
        while runtime.store.has_open(alert_id) and time.monotonic() < end:
            for code in carriers:
                sender_for(runtime, code).idle(0.1)
    finally:
        for code in carriers:
            sender_for(runtime, code).close()
            forget(code)
    runtime.store.complete_if_done(alert_id)
    counts = runtime.store.state_counts(alert_id)
    codes = {v: k for k, v in runtime.store.carrier_ids().items()}
    click.echo(json.dumps({codes[c]: n for c, n in counts.items()}))


@click.command()
@click.argument("alert_id", type=int)
def progress(alert_id: int) -> None:
    """Live progress of an alert per carrier, as the console shows it (JSON)."""
    from broadcast import live

    runtime = _runtime()
    with runtime.database.session() as session:
        click.echo(
            json.dumps(
                live.alert_progress(runtime.redis, session, alert_id, runtime.settings.rate_limits)
            )
        )
