"""`xenlab config`."""

from __future__ import annotations

from typing import Any

import click

from lab.verbs.options import json_option, lab_flags, settings


@click.command("config")
@json_option
@click.option("--cache-key", is_flag=True,
              help="Print only the key for a CI cache of ~/.cache/xenlab (changes when a new lab "
                   "with these settings could not use what the cache holds).")
@lab_flags
def command(as_json: bool, cache_key: bool, **flags: Any) -> None:
    """Print the effective lab settings and where each came from."""
    from dataclasses import asdict

    from lab import ui
    from lab.config import FIELDS

    resolved = settings(**flags)
    if cache_key:
        from lab.providers.qemu_cache import key

        click.echo(key(resolved.config))
        return
    values = asdict(resolved.config)
    # Each of several hosts: only the settings it has for itself.
    own = {host: {k: v for k, v in asdict(c).items() if v != values[k]} for host, c in resolved.hosts.items()}
    if as_json:
        data: dict[str, Any] = {k: {"value": v, "source": resolved.sources[k]} for k, v in values.items()}
        ui.emit_json({**data, "hosts": own} if own else data)
        return
    width = max(map(len, values))
    for name, value in values.items():
        help_text = FIELDS[name].metadata["help"]
        click.echo(f"{name:<{width}}  {value!s:<20}  {resolved.sources[name]:<18}  # {help_text}")
    for host, settings_of_host in own.items():
        click.echo(f"[hosts.{host}] " + ", ".join(f"{k} = {v!r}" for k, v in settings_of_host.items()))
