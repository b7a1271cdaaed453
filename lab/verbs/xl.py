"""`xenlab xl show FILE`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("xl")
def command() -> None:
    """Read .xl domain configuration files the way Xen does."""


@command.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=True, hidden=True)
def show(file: Path, as_json: bool) -> None:
    """Print FILE's settings as one JSON object, each value as Xen reads it."""
    from lab import ui
    from lab.xl.syntax import read

    ui.emit_json(read(file).to_json())
