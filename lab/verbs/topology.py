"""`xenlab topology`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lab.verbs.options import (
    each_host,
    host_option,
    hosts,
    json_option,
    lab_flags,
    one_host,
    per_host,
    settings,
)


@click.command("topology")
@click.option("--svg", type=click.Path(path_type=Path), help="Also draw it into FILE as SVG (Graphviz).")
@click.option("--png", type=click.Path(path_type=Path), help="Also draw it into FILE as PNG (Graphviz).")
@json_option
@lab_flags
@host_option
def command(svg: Path | None, png: Path | None, as_json: bool, host: str | None, **flags: Any) -> None:
    """The live lab's network: your side, the lab NIC, the bridge, each guest's vif and address,
    dnsmasq, forwarding; problems marked where they are. Exit 1 when there is one."""
    from lab import ui
    from lab.core.topology import read
    from lab.topology_render import tree, write_image

    resolved = settings(**flags)
    if (svg or png) and resolved.hosts:
        one_host(resolved, host, "a drawing")  # one picture per host
    topos, down = each_host(hosts(resolved, host), read)
    for path, fmt in ((svg, "svg"), (png, "png")):
        if path is not None and topos:
            write_image(next(iter(topos.values())), path, fmt)
            ui.info(f"drawn into {path}")
    if as_json:
        ui.emit_json(per_host(resolved, {name: t.to_json() for name, t in topos.items()}))
    else:
        for name, topo in topos.items():
            if name:
                click.echo(f"[{name}]")
            ui.print_out(tree(topo))
            click.echo(topo.summary())
    if down or any(t.problems() for t in topos.values()):
        sys.exit(1)
