"""MirageOS's `NAME.xl.in`: the .xl file with `@NAME@`, `@KERNEL@`, `@MEMORY@`, `@BLOCK:file@` and
`@NETWORK:name@` left for whoever deploys it (MirageOS 3.x/4.x write it beside NAME.xl, meant to be
filled in by sed). xenlab fills them from the lab; the result then goes through every `fix` rule.
"""

from __future__ import annotations

import re
from pathlib import Path

from lab.config import LabConfig
from lab.errors import bad_input

SUFFIX = ".xl.in"
# @MEMORY@ in a MirageOS NAME.xl.in (guest_memory_max where that is set), and the repair of a
# memory that is not a number: ample for a unikernel, a small part of a default lab's memory.
DEFAULT_MEMORY = 128
_PLACEHOLDER = re.compile(r"@([A-Z]+)(?::([^@\n]*))?@")


def is_template(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def stem(path: Path) -> str:
    return path.name[: -len(SUFFIX)]


def fill(text: str, path: Path, config: LabConfig) -> str:
    """The template with every placeholder replaced; an unknown one is an error naming its line.
    Replacements keep line numbers, so later errors still point into the template."""
    name = stem(path)
    values = {"NAME": name, "KERNEL": f"{name}.xen", "MEMORY": str(config.guest_memory_max or DEFAULT_MEMORY)}

    def one(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2)
        if arg is None and kind in values:
            return values[kind]
        if kind == "BLOCK" and arg:
            return Path(arg).name  # found beside the file or built from a recipe, as for .xl
        if kind == "NETWORK" and arg is not None:
            return config.bridge
        line = text.count("\n", 0, m.start()) + 1
        bad_input(f"{path}:{line}: unknown placeholder {m.group(0)}",
                  hint="MirageOS writes @NAME@, @KERNEL@, @MEMORY@, @BLOCK:file@, @NETWORK:name@; "
                       "fill the others in by hand")

    return _PLACEHOLDER.sub(one, text)
