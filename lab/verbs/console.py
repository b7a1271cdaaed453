"""`xenlab console NAME`."""

from __future__ import annotations

import click

from lab.verbs.options import host_option, hosts, settings


@click.command("console")
@click.argument("name")
@click.option("--log", is_flag=True, help="Print the captured console instead of attaching.")
@host_option
def command(name: str, log: bool, host: str | None) -> None:
    """Attach to domain NAME's console (Ctrl-] leaves), or print its captured log."""
    from lab.core.attach import console
    from lab.placement import holder

    console(holder(hosts(settings(), host), name).state_dir, name, log)
