"""`xenlab deploy FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lab.verbs.guest_options import guest_options, placed


@click.command("deploy")
@click.argument("file", type=click.Path(path_type=Path))
@guest_options
@click.option("--probe", help="Wait until the guest answers: tcp:PORT or http://:PORT/path.")
@click.option("--timeout", default=180.0, show_default=True,
              help="Seconds to wait for the address (and again for the probe).")
@click.option("--ip", help="A fixed DHCP address for the guest (a dnsmasq reservation for its MAC).")
@click.option("--timings", is_flag=True, help="Print each phase's duration.")
def command(file: Path, as_json: bool, timings: bool, host: str | None, **kw: Any) -> None:
    """Put the unikernel FILE.xl (or MirageOS's FILE.xl.in) describes on the lab and print where
    it answers."""
    from lab import ui
    from lab.core.deploy import deploy

    req, h = placed(file, host, **kw)
    result = deploy(req, h)
    if as_json:
        ui.emit_json({**result.to_json(), **({"host": h.name} if h.name else {})})
        return
    click.echo(f"{result.name} {result.mac or '-'} {result.ip or '-'}" + (f" {h.name}" if h.name else ""))
    if timings:
        for phase, seconds in result.phases.items():
            click.echo(f"  {phase:<8} {seconds:6.2f} s", err=True)
