"""`xenlab check`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.verbs.options import host_option, hosts, settings


@click.command("check")
@click.option("--junit-xml", type=click.Path(path_type=Path),
              help="Write a JUnit report (for CI); of several hosts, one per host (FILE-NAME.xml).")
@host_option
def command(junit_xml: Path | None, host: str | None) -> None:
    """testinfra checks of the lab host and of every deployed guest's reachability."""
    from lab import ui
    from lab.core.check import check

    failed = []
    for h in hosts(settings(), host):
        if h.name:
            click.echo(f"[{h.name}]")
        report = junit_xml.with_name(f"{junit_xml.stem}-{h.name}{junit_xml.suffix}") \
            if junit_xml and h.name else junit_xml
        if check(h, report, ui.settings.verbose) != 0:
            failed.append(h.label)
    if failed:
        sys.exit(1)
