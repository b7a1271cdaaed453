"""`xenlab fix FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.verbs.options import json_option, settings


@click.command("fix")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--diff", "show_diff", is_flag=True, help="Show the repairs as a unified diff.")
@click.option("--write", is_flag=True, help="Apply the repairs to FILE.")
@click.option("--check", is_flag=True, help="Exit 1 when anything is found (for CI).")
@json_option
def command(file: Path, show_diff: bool, write: bool, check: bool, as_json: bool) -> None:
    """Lint FILE and repair what `mirage configure -t xen` gets wrong for a lab."""
    from lab import fix, ui

    report = fix.fix_file(file, settings().config)
    if as_json:
        ui.emit_json(report.to_json())
    else:
        for finding in report.findings:
            click.echo(finding.render(), err=show_diff)
        if not report.findings:
            click.echo(f"{file}: no problems found", err=True)
    if show_diff:
        sys.stdout.write(report.diff())
    if write and report.needs_write:
        fix.write(report)
        if not as_json:
            done = f"{len(report.repaired)} repair(s)"
            click.echo(f"{report.out_path}: written from {file.name}, {done}" if report.out_path != file
                       else f"{file}: {done} written", err=True)
    if check and report.findings:
        sys.exit(1)
