"""`xenlab ssh [COMMAND]`."""

from __future__ import annotations

import click

from lab.verbs.options import host_option, one_host, settings


@click.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@host_option
def command(command: tuple[str, ...], host: str | None) -> None:
    """SSH into the lab host (with the pinned host key), or run COMMAND there."""
    from lab.core.attach import ssh

    ssh(one_host(settings(), host, "ssh").state_dir, command)
