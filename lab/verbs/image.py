"""`xenlab image fat|tar DIR -o IMG`: its usual forms never reach click (lab/entry.py reads them
with lab.image.arguments, for start-up time); this is the same command for every other form
(--help, a mistake to explain), built from the same declared options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lab.verbs.options import json_option


@click.group("image")
def command() -> None:
    """Build the block images a unikernel reads (FAT16 or tar)."""


def _kind(kind: str, summary: str) -> None:
    from lab.image.arguments import ARGUMENT, OPTIONS

    def build(**params: Any) -> None:
        from lab.core.image import image

        image(kind, **params)

    for option in reversed(OPTIONS):
        if option.help is None:
            build = json_option(build)
        else:
            build = click.option(*option.names, option.dest, required=option.required,
                                 type=click.Path(path_type=Path) if option.path else None,
                                 is_flag=not option.value, help=option.help)(build)
    build = click.argument(ARGUMENT, type=click.Path(path_type=Path))(build)
    command.command(kind, help=summary)(build)


def _kinds() -> None:
    from lab.image.arguments import KINDS

    for kind, summary in KINDS.items():
        _kind(kind, summary)


_kinds()
