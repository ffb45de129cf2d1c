"""`loa preview` and `loa simulator`: thin wrappers over smpp_gateway (parse, call, print)."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading

import click

from smpp_gateway.encoding import preview as preview_text
from smpp_gateway.simulator import SimulatorConfig, SmscSimulator


def _mix(value: str | None) -> dict[str, float]:
    if not value:
        return {"DELIVRD": 1.0}
    out: dict[str, float] = {}
    for item in value.split(","):
        state, _, weight = item.partition("=")
        out[state.strip().upper()] = float(weight or 1)
    return out


def _reply_mix(value: str) -> dict[str, float]:
    """`1:0.8,2:0.15,other:0.05` -> {"1": 0.8, "2": 0.15, "other": 0.05}."""
    out: dict[str, float] = {}
    for item in value.split(","):
        text, sep, weight = item.rpartition(":")
        try:
            out[text.strip()] = float(weight)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not TEXT:WEIGHT") from None
        if not sep or not text.strip():
            raise click.BadParameter(f"{item!r} is not TEXT:WEIGHT")
    return out


@click.command("preview")
@click.option("--fold", "fold_", is_flag=True, help="Remove Vietnamese diacritics first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.argument("text")
def preview_command(fold_: bool, as_json: bool, text: str) -> None:
    """Show the encoding, size and parts of an SMS text."""
    pv = preview_text(text, fold=fold_)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(pv), ensure_ascii=False))
        return
    click.echo(
        f"{pv.encoding}, {pv.units} units, {pv.parts} part{'s' if pv.parts != 1 else ''}, "
        f"{pv.chars_left} left in the last part"
    )
    if pv.ucs2_chars:
        click.echo("UCS-2 because of: " + " ".join(pv.ucs2_chars))
    if fold_:
        click.echo(f"text: {pv.text}")


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=2775, show_default=True, help="0 = any free port.")
@click.option("--system-id", default="loa", show_default=True)
@click.option("--password", default="secret", show_default=True)
@click.option("--tps", type=float, help="submit_sm accepted per second; beyond: 0x58.")
@click.option("--window", type=int, help="Unanswered submit_sm per bind; beyond: 0x14.")
@click.option("--latency", type=float, default=0.0, help="Response delay, seconds.")
@click.option("--receipt-delay", type=float, help="Send delivery receipts after this delay.")
@click.option("--receipt-mix", help="e.g. DELIVRD=0.9,UNDELIV=0.05,EXPIRED=0.05")
@click.option("--receipt-form", type=click.Choice(["tlv", "text", "both"]), default="both")
@click.option("--message-id-format", type=click.Choice(["hex", "dec"]), default="hex")
@click.option("--receipt-id-format", type=click.Choice(["hex", "dec"]), default="hex")
@click.option("--error-rate", type=float, default=0.0, help="Rate of transient errors.")
@click.option("--permanent-error-rate", type=float, default=0.0)
@click.option("--drop-after", type=int, help="Close a connection at its N-th submit_sm.")
@click.option("--seed", type=int)
@click.option(
    "--reply-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of delivered messages answered with a reply (mobile-originated deliver_sm).",
)
@click.option(
    "--reply-mix",
    default="1:0.8,2:0.15,other:0.05",
    show_default=True,
    help="Reply texts and weights; `other` draws a free-text reply.",
)
@click.option("--record", "record", type=click.Path(dir_okay=False), help="JSON lines file.")
@click.option(
    "--kernel-times",
    is_flag=True,
    help="Stamp arrivals with the kernel's receive time (one read per PDU; for pacing runs).",
)
def simulator_command(
    host: str,
    port: int,
    system_id: str,
    password: str,
    tps: float | None,
    window: int | None,
    latency: float,
    receipt_delay: float | None,
    receipt_mix: str | None,
    receipt_form: str,
    message_id_format: str,
    receipt_id_format: str,
    error_rate: float,
    permanent_error_rate: float,
    drop_after: int | None,
    seed: int | None,
    reply_rate: float,
    reply_mix: str,
    record: str | None,
    kernel_times: bool,
) -> None:
    """Run one SMPP 3.4 SMSC simulator until SIGINT or SIGTERM."""
    try:
        config = SimulatorConfig(
            system_id=system_id,
            password=password,
            tps=tps,
            window=window,
            latency=latency,
            transient_error_rate=error_rate,
            permanent_error_rate=permanent_error_rate,
            receipt_delay=receipt_delay,
            receipt_mix=_mix(receipt_mix),
            receipt_form=receipt_form,
            message_id_format=message_id_format,
            receipt_id_format=receipt_id_format,
            drop_after=drop_after,
            seed=seed,
            keep_records=False,  # a long run would grow without bound; --record keeps them
            reply_rate=reply_rate,
            reply_mix=_reply_mix(reply_mix),
            kernel_times=kernel_times,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with SmscSimulator(config, host, port, record_to=record) as sim:
        click.echo(f"simulator listening on {host}:{sim.port}", err=False)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    click.echo("simulator stopped")


def register(group: click.Group) -> None:
    """Add this module's subcommands to the `loa` group."""
    group.add_command(preview_command)
    group.add_command(simulator_command)
