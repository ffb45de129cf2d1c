"""The `loa` command: a composition root that parses input, calls a service, prints the answer.

Each feature area registers its subcommands from its own module so that importing the
command group stays cheap and the areas stay apart.
"""

from __future__ import annotations

import click

from broadcast.cli import core, delivery, gateway, imports, ops


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loa")
def cli() -> None:
    """Loa: mass SMS public alerts over every carrier's SMPP gateway."""


for _module in (core, gateway, imports, delivery, ops):
    _module.register(cli)


def main() -> None:
    cli(prog_name="loa")
