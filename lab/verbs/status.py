"""`xenlab status`."""

from __future__ import annotations

from typing import Any

import click

from lab.verbs.options import host_option, hosts, json_option, lab_flags, per_host, settings


@click.command("status")
@lab_flags
@json_option
@host_option
def command(as_json: bool, host: str | None, **flags: Any) -> None:
    """Say whether the lab host is running, stopped, crashed, unreachable or absent."""
    from lab import ui
    from lab.core.lifecycle import status

    resolved = settings(**flags)
    data = per_host(resolved, {h.name: status(h) for h in hosts(resolved, host)})
    if as_json:
        ui.emit_json(data)
        return
    for name, one in (data["hosts"] if resolved.hosts else {"": data}).items():
        if name:
            click.echo(f"[{name}]")
        for key, value in one.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            if value is not None:
                click.echo(f"{key}: {value}")
