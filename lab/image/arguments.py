"""`xenlab image fat|tar DIRECTORY -o FILE [--size SIZE] [--json]`: its arguments, declared once.

lab.cli builds the click command from this table, and lab.entry reads the usual forms of a command
line with it before click is even imported: for an image of a few hundred files, interpreter,
click and CLI start-up were most of the time (bench/bench_image.py). The quick reading accepts
only what it understands completely; anything else (help, a misspelt or repeated option, a missing
-o, `--`) goes to click, which alone says what is wrong with a command line. The tests hold the
quick reading to click's on generated command lines.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KINDS = {
    "fat": "Build a FAT16 image of DIRECTORY, as MirageOS's ocaml-fat reads it.",
    "tar": "Build a ustar image of DIRECTORY, as MirageOS's ocaml-tar reads it.",
}
ARGUMENT = "directory"


class Option:
    __slots__ = ("dest", "help", "names", "path", "required", "value")

    def __init__(self, names: tuple[str, ...], dest: str, help: str | None, *, value: bool = True,
                 required: bool = False, path: bool = False) -> None:
        self.names = names
        self.dest = dest
        self.help = help
        self.value = value  # takes a value; a flag otherwise
        self.required = required
        self.path = path  # the value is a file name


OPTIONS = (
    Option(("-o", "--output"), "output", "The image file to write.", required=True, path=True),
    Option(("--size",), "size", "Image size (e.g. 16M); default: fitted to the data."),
    Option(("--json",), "as_json", None, value=False),  # the --json of every command (lab.cli)
)


def quick(argv: list[str]) -> dict[str, Any] | None:
    """The image command's parameters from `argv` (without the program's name), or None when
    click should read it. Paths come back as strings, as the user wrote them."""
    if len(argv) < 3 or argv[0] != "image" or argv[1] not in KINDS:
        return None
    by_name = {name: option for option in OPTIONS for name in option.names}
    found: dict[str, Any] = {"kind": argv[1]}
    rest = iter(argv[2:])
    for token in rest:
        if not token:
            return None  # click's Path turns "" into "."; let click say what it means
        if not token.startswith("-"):
            if ARGUMENT in found:
                return None
            found[ARGUMENT] = _path(token)
            continue
        name, eq, attached = token.partition("=")
        option = by_name.get(name)
        if option is None or option.dest in found or (eq and not (option.value and name.startswith("--"))):
            return None
        if option.value:
            value = attached if eq else next(rest, None)
            if not value or value.startswith("-"):  # click reads even `--size=-o` its own way
                return None
            found[option.dest] = _path(value) if option.path else value
        else:
            found[option.dest] = True
    if ARGUMENT not in found or any(o.required and o.dest not in found for o in OPTIONS):
        return None
    for option in OPTIONS:
        found.setdefault(option.dest, None if option.value else False)
    return found


def _path(text: str) -> str:
    # What pathlib, and so click's Path type, makes of a trailing slash: `data/` is `data`.
    return text.rstrip("/") or text
