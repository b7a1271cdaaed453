"""What a unikernel test is expected to do, when that is not a plain exit with status 0.

A test suite has tests that must fail: Solo5's own has unikernels that must abort (a crash on
Xen, "ABORT" on the console). Each says so in a sidecar beside its .xl file, NAME.expect (TOML):

    ended = "crash"       # how the domain must end: poweroff (the default), crash, reboot, timeout
    status = 3            # with poweroff: the exit status its console must report (default 0)
    console = ["ABORT"]   # regular expressions, each matching some line of its console
    timeout = 60          # seconds it may run (default: --timeout)

or `xenlab run`'s --expect-* options say it for every file without a sidecar of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lab.errors import bad_input

ENDS = ("poweroff", "crash", "reboot", "timeout")
SUFFIX = ".expect"
_KEYS: dict[str, type | tuple[type, ...]] = {"ended": str, "status": int, "console": list,
                                             "timeout": (int, float)}
_EXAMPLE = 'ended = "crash"\nconsole = ["ABORT"]'


@dataclass(frozen=True)
class Expectation:
    ended: str = "poweroff"
    status: int = 0
    console: tuple[str, ...] = ()
    timeout: float | None = None
    source: str = ""  # the sidecar, or "options"; "" for the default (exit status 0)

    def problems(self, ended: str, status: int | None, status_hidden: bool,
                 console: Sequence[str]) -> list[str]:
        """How a run that ended so differs from this expectation; empty when it meets it."""
        found = []
        if ended != self.ended:
            found.append(f"expected a {self.ended}")
        elif ended == "poweroff" and not status_hidden and (status or 0) != self.status:
            found.append(f"expected exit status {self.status}")
        found += [f"no console line matches {pattern!r}" for pattern in self.console
                  if not any(re.search(pattern, line) for line in console)]
        return found


def sidecar(xl: Path) -> Path:
    """NAME.expect beside NAME.xl (or MirageOS's NAME.xl.in)."""
    name = xl.name
    for suffix in (".xl.in", ".xl"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return xl.with_name(name + SUFFIX)


def checked(ended: str | None, status: int | None, console: Sequence[str], where: str) -> Expectation:
    """An expectation from values a user gave (options or a sidecar), each one checked."""
    if ended is not None and ended not in ENDS:
        bad_input(f"{where}: ended = {ended!r}: not one of {', '.join(ENDS)}", hint=_EXAMPLE)
    if status is not None and not 0 <= status <= 255:
        bad_input(f"{where}: status = {status}: an exit status is 0 to 255",
                  hint="the N of Solo5's `solo5_exit(N) called`, as the shell sees it")
    if status is not None and ended not in (None, "poweroff"):
        bad_input(f"{where}: status with ended = {ended!r}: only a poweroff has an exit status",
                  hint="leave out status, or expect a poweroff")
    for pattern in console:
        try:
            re.compile(pattern)
        except re.error as exc:
            bad_input(f"{where}: console pattern {pattern!r}: {exc}",
                      hint="a Python regular expression; re.escape the text for a literal match")
    return Expectation(ended=ended or "poweroff", status=status or 0, console=tuple(console),
                       source=where)


def load(xl: Path, default: Expectation) -> Expectation:
    """The expectation for xl: its sidecar's, else default."""
    path = sidecar(xl)
    if not path.exists():
        return default
    import tomllib

    from lab import files

    try:
        data = tomllib.loads(files.read_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        bad_input(f"{path}: {exc}", hint=_EXAMPLE)
    except OSError as exc:
        bad_input(f"{path}: cannot read: {exc.strerror}", hint="a text file of key = value lines")
    for key, value in data.items():
        kind = _KEYS.get(key)
        if kind is None:
            bad_input(f"{path}: unknown key {key!r}", hint=f"keys: {', '.join(_KEYS)}")
        if not isinstance(value, kind) or isinstance(value, bool) or (
                isinstance(value, list) and not all(isinstance(p, str) for p in value)):
            bad_input(f"{path}: {key} = {value!r}: the wrong kind of value", hint=_EXAMPLE)
    timeout = data.get("timeout")
    if timeout is not None and not 0 < timeout < float("inf"):
        bad_input(f"{path}: timeout = {timeout}: not a number of seconds above 0", hint="timeout = 60")
    expectation = checked(data.get("ended"), data.get("status"), data.get("console", []), str(path))
    return replace(expectation, timeout=float(timeout) if timeout is not None else None)
