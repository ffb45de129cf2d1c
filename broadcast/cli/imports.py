"""`loa import list|counts` and `loa subscribers count|coverage|purge`: carriers' data.

Scripts depend on `loa import … --json`: one JSON object on stdout and exit 0, or a one-line
reason on stderr and a non-zero exit with nothing changed.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from broadcast.cli.core import fail, get_database, get_settings
from broadcast.errors import LoaError


def register(group: click.Group) -> None:
    """Add this module's subcommands to the `loa` group."""
    group.add_command(import_cmd)
    group.add_command(subscribers)


@click.group("import")
def import_cmd() -> None:
    """Import a carrier's subscriber list or subscriber counts (CSV or XLSX)."""


def _run_import(kind: str, carrier: str, file: Path, as_json: bool, sheet: str | None,
                as_of: datetime | None, allow_shrink: bool = False) -> None:  # fmt: skip
    from subscriber_import.service import import_file

    settings = get_settings()
    database = get_database()

    def progress(done: int, total: int | None) -> None:
        if not as_json:
            click.echo(f"  {done:,} rows read" + (f" of {total:,}" if total else ""), err=True)

    try:
        report = import_file(
            database,
            settings,
            carrier_code=carrier,
            kind=kind,
            path=file,
            sheet=sheet,
            progress=progress,
            as_of=as_of.date() if as_of else None,
            allow_shrink=allow_shrink,
        )
    except LoaError as exc:
        fail(" ".join(str(exc).split()))
    data = report.to_json()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(
        f"{kind} import #{report.import_id} for {carrier}: {report.rows:,} rows, "
        f"{report.accepted:,} accepted, {report.duplicates:,} duplicates, "
        f"{report.rejected_total:,} rejected"
    )
    if kind == "list":
        click.echo(
            f"list version {report.version} is active; {report.converted:,} converted from "
            f"11-digit numbers; {report.possible_ported:,} possibly ported; "
            f"{report.conflicts:,} also in another carrier's list"
        )
        if report.replaced_count is not None:
            click.echo(
                f"replaced version with {report.replaced_count:,} numbers by {report.accepted:,}"
                + (" (shrink confirmed with --allow-shrink)" if report.shrink_confirmed else "")
            )
    for reason, count in sorted(report.rejected.items()):
        click.echo(f"  rejected {reason}: {count:,}")
    if report.mapped:
        click.echo(f"pre-2025 area labels mapped to their new commune: {report.mapped:,}")
    for kind, count in sorted(report.warnings.items()):
        samples = ", ".join(report.warning_samples.get(kind, []))
        click.echo(f"  warning {kind}: {count:,} (e.g. {samples})")
    if report.rejected_total or report.duplicates:
        click.echo(f"rejected rows: {report.rejects_csv}")


_file = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_carrier = click.option("--carrier", required=True, help="Carrier code, e.g. viettel.")
_json = click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
_sheet = click.option("--sheet", help="Workbook sheet name (default: the first sheet).")


@import_cmd.command("list")
@_carrier
@_file
@_json
@_sheet
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Confirm a list that cuts the active one by more than imports.max_shrink.",
)
def import_list(
    carrier: str, file: Path, as_json: bool, sheet: str | None, allow_shrink: bool
) -> None:
    """Replace the carrier's subscriber list with FILE (a new version)."""
    _run_import("list", carrier, file, as_json, sheet, None, allow_shrink)


@import_cmd.command("counts")
@_carrier
@_file
@_json
@_sheet
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date of the counts when the file has no date column (default: today).",
)
def import_counts(
    carrier: str, file: Path, as_json: bool, sheet: str | None, as_of: datetime | None
) -> None:
    """Append the carrier's subscriber counts per area from FILE."""
    _run_import("counts", carrier, file, as_json, sheet, as_of)


@click.group()
def subscribers() -> None:
    """Subscribers in the carriers' active lists."""


@subscribers.command("count")
@click.option("--carrier", help="Only this carrier's active list.")
@click.option("--area", help="Only this area and everything under it.")
def subscribers_count(carrier: str | None, area: str | None) -> None:
    """Print the number of active subscribers (a number in two lists counts once)."""
    from subscriber_import.service import active_count

    try:
        with get_database().session() as session:
            click.echo(active_count(session, carrier_code=carrier, area_code=area))
    except LoaError as exc:
        fail(str(exc))


@subscribers.command("coverage")
@click.option("--carrier", required=True)
@click.option("--json", "as_json", is_flag=True)
def subscribers_coverage(carrier: str, as_json: bool) -> None:
    """Per area, as a tree: numbers in the active list against the latest reported count."""
    from subscriber_import.service import coverage

    try:
        with get_database().session() as session:
            rows = coverage(session, carrier)
    except LoaError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(rows, default=lambda v: v.isoformat() if isinstance(v, date) else v,
                              ensure_ascii=False))  # fmt: skip
        return
    for row in rows:
        reported = "-" if row["reported"] is None else f"{row['reported']:,}"
        click.echo(
            "  "
            * row["depth"]
            + f"{row['area_code'] or '(none)'}\t{row['area_name']}\t{row['accepted']:,}\t"
            f"{reported}\t{row['as_of'] or ''}\tconflicts {row['conflicts']:,}"
            + ("\tFAR BELOW REPORTED" if row["short_of_reported"] else "")
        )


@subscribers.command("purge")
def subscribers_purge() -> None:
    """Delete the numbers of lists superseded longer ago than imports.retention_days."""
    from subscriber_import.service import purge_superseded

    count = purge_superseded(get_database(), get_settings())
    click.echo(f"{count} superseded list(s) purged")
