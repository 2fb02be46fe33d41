"""`smmt` sub-commands of the experiment area. Each command sets `handler` (args -> exit code)."""

from __future__ import annotations


def add_commands(subparsers) -> None:
    """Register this area's sub-commands on the `smmt` parser."""
