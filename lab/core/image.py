"""`xenlab image fat|tar`: build the image, then say what it holds (or give it as JSON)."""

from __future__ import annotations

import sys

from lab.image import PathLike, build_image, parse_size


def image(kind: str, directory: PathLike, output: PathLike, size: str | None, as_json: bool) -> None:
    result = build_image(kind, directory, output, parse_size(size) if size else None)
    if as_json:
        from lab import ui

        ui.emit_json(result.to_json())
    else:
        sys.stderr.write(result.summary() + "\n")
