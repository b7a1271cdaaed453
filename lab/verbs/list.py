"""`xenlab list`."""

from __future__ import annotations

import sys

import click

from lab.verbs.options import each_host, host_option, hosts, json_option, settings


@click.command("list")
@json_option
@host_option
def command(as_json: bool, host: str | None) -> None:
    """The domains on the lab, with MAC, address and uptime (the lab host is the truth); of
    several hosts, every host's, each row naming its host (a host that is down is reported)."""
    from lab import ui
    from lab.domain import listing

    listings, down = each_host(hosts(settings(), host), listing)
    rows = [{**({"host": name} if name else {}), **row} for name, rows in listings.items() for row in rows]
    if as_json:
        ui.emit_json(rows)
    else:
        for r in rows:
            up = f"up {r['uptime_s']:.0f} s" if r["uptime_s"] is not None else ""
            where = f"{r['host']:<12} " if "host" in r else ""
            click.echo(f"{where}{r['name']:<20} {r['state']:<8} {r['memory']:>5} MiB  "
                       f"{r['mac'] or '-':<17}  {r['ip'] or '-':<15} {r['address']:<6} {up}")
    if down:  # the listing is incomplete
        sys.exit(1)
