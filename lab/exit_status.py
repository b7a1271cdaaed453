"""What a unikernel's console says about how it ended.

Xen sees only poweroff, reboot and crash. Solo5 (MirageOS 4) turns every status but its abort
(255, a crash) into a poweroff, and says the status on its console at its INFO level:
`Solo5: solo5_exit(N) called`. So `run` reads the status there; when the command line lowers
Solo5's log level below INFO (`--solo5:quiet|error|warn`), the console cannot tell, and only
poweroff against crash is left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SOLO5_EXIT = re.compile(r"Solo5: solo5_exit\((-?\d+)\) called")
# Solo5's levels below INFO: its exit line is not printed at them.
QUIET = ("--solo5:quiet", "--solo5:error", "--solo5:warn")
# MirageOS 4's own statuses (mirage-runtime): what a user should look at.
MIRAGE = {
    63: "MirageOS printed its help or version (a --help or --version boot argument) and stopped",
    64: "MirageOS refused a boot argument",
}


def status(console: Iterable[str]) -> int | None:
    """The last exit status the console reports, None when it reports none."""
    found = None
    for line in console:
        m = _SOLO5_EXIT.search(line)
        if m:
            found = int(m.group(1)) & 0xFF  # as a process's status: 8 bits
    return found


def hidden(cmdline: str) -> bool:
    """Whether the guest's command line hides Solo5's exit line."""
    return any(word in QUIET for word in cmdline.split())


def hint(code: int, console: list[str]) -> str | None:
    """What a known MirageOS status means, with the console line that says why when there is one."""
    meaning = MIRAGE.get(code)
    if meaning is None:
        return None
    if code == 64:
        said = [line.strip() for line in console
                if re.search(r"\b(option|argument)s?\b", line, re.I) and "Solo5:" not in line]
        if said:
            return f"{meaning}: {said[-1]}"
    return meaning
