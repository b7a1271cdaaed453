"""`xenlab halt`."""

from __future__ import annotations

from typing import Any

import click

from lab.verbs.options import host_option, hosts, lab_flags, settings


@click.command("halt")
@lab_flags
@host_option
def command(host: str | None, **flags: Any) -> None:
    """Power the lab VM off (ACPI first, then a hard stop after a timeout); never an existing host."""
    from lab.core.lifecycle import halt

    for h in hosts(settings(**flags), host):
        halt(h)
