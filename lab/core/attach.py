"""`xenlab console` and `xenlab ssh`: the user's terminal handed to the lab host, through the
pinned SSH connection (the process is replaced: signals and the terminal are ssh's own)."""

from __future__ import annotations

import shlex
from pathlib import Path

from lab import run
from lab.domain import console_log
from lab.errors import no_lab
from lab.remote import as_root
from lab.ssh import SshFiles


def _files(state_dir: Path) -> SshFiles:
    files = SshFiles.in_dir(state_dir)
    if not files.config.exists():
        no_lab(state_dir)
    return files


def console(state_dir: Path, name: str, log: bool) -> None:
    """Attach to domain name's console (Ctrl-] leaves), or print its captured log."""
    files = _files(state_dir)
    remote = as_root(["cat", console_log(name)] if log else ["xl", "console", name])
    *ssh, host = files.ssh_argv()
    # -t: xl console needs a terminal on the lab host; a log is plain output.
    run.exec_replace([*ssh, *([] if log else ["-t"]), host, shlex.join(remote)])


def ssh(state_dir: Path, command: tuple[str, ...]) -> None:
    run.exec_replace(_files(state_dir).ssh_argv() + (["--", *command] if command else []))
