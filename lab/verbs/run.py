"""`xenlab run FILE`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lab.verbs.guest_options import guest_options, placed


@click.command("run")
@guest_options
@click.option("--timeout", default=300.0, show_default=True,
              help="Seconds the guest may run before it is stopped (exit 124).")
@click.option("--junit-xml", type=click.Path(path_type=Path), help="Write a JUnit report (for CI).")
def command(file: Path, as_json: bool, junit_xml: Path | None, host: str | None, **kw: Any) -> None:
    """Run FILE.xl's unikernel as a test: its console on stdout until it ends, then removed.
    Exit with the status its console reports (Solo5's `solo5_exit(N) called`; 0 for a plain
    poweroff), 1 for a crash or reboot, 124 at the timeout."""
    from lab import ui
    from lab.core.run import run, write_junit

    req, h = placed(file, host, **kw)
    outcome = run(req, h, echo=not as_json)
    if junit_xml:
        write_junit(outcome, junit_xml)
    if outcome.status_hidden and outcome.ended == "poweroff":
        ui.warn("the command line hides Solo5's exit line (--solo5:quiet, error or warn): only a "
                "poweroff and a crash can be told apart, not the exit status")
    if as_json:
        ui.emit_json(outcome.to_json())
    elif outcome.passed:
        ui.info(outcome.verdict())
    else:
        ui.error(outcome.verdict(), outcome.hint())
    sys.exit(outcome.exit_code)
