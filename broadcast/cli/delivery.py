"""Subcommands of `loa`; see broadcast/cli/__init__.py."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add this module's subcommands to the `loa` group."""
