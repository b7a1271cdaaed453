"""The one place xenlab starts processes: argument lists only (never a shell), logged in
--verbose, failures turned into LabError carrying the command's own last words."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lab import ui
from lab.errors import die

Cmd = Sequence[str | os.PathLike[str]]


def _argv(cmd: Cmd) -> list[str]:
    return [os.fspath(c) for c in cmd]


def tail(text: str, lines: int = 3) -> str:
    """A command's last non-empty lines, joined for a one-line error."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:])


def run(cmd: Cmd, *, check: bool = True, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, input: str | None = None, timeout: float | None = None,
        what: str | None = None, hint: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = _argv(cmd)
    ui.detail(f"$ {shlex.join(argv)}")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=_env(env), cwd=cwd,
                              input=input, timeout=timeout)
    except FileNotFoundError:
        die(f"{argv[0]}: command not found", hint=hint or "run ./install.sh")
    except subprocess.TimeoutExpired:
        die(f"{what or argv[0]} did not finish within {timeout:.0f} s", hint=hint)
    if check and proc.returncode != 0:
        reason = tail(proc.stderr) or tail(proc.stdout) or f"exit code {proc.returncode}"
        die(f"{what or shlex.join(argv)} failed: {reason}", hint=hint)
    return proc


def stream(cmd: Cmd, on_line: Callable[[str], None], *, env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> tuple[int, str]:
    """Run cmd, calling on_line for each stdout line as it arrives; return (exit code, stderr)."""
    argv = _argv(cmd)
    ui.detail(f"$ {shlex.join(argv)}")
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(env), cwd=cwd, bufsize=1)
    except FileNotFoundError:
        die(f"{argv[0]}: command not found", hint="run ./install.sh")
    assert proc.stderr is not None and proc.stdout is not None
    errors: list[str] = []
    err_stream = proc.stderr
    # stderr is drained on a thread so a chatty stderr cannot block the stdout we follow.
    reader = threading.Thread(target=lambda: errors.extend(err_stream), daemon=True)
    reader.start()
    try:
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
    finally:
        if proc.poll() is None:
            proc.terminate()
        code = proc.wait()
        reader.join(timeout=5)
    return code, "".join(errors)


def passthrough(cmd: Cmd, *, env: Mapping[str, str] | None = None) -> int:
    """Run cmd on the user's terminal (its output is the result) and return its exit code."""
    argv = _argv(cmd)
    ui.detail(f"$ {shlex.join(argv)}")
    try:
        return subprocess.run(argv, env=_env(env)).returncode
    except FileNotFoundError:
        die(f"{argv[0]}: command not found", hint="run ./install.sh")

def spawn(cmd: Cmd, *, log: Path | None = None, new_session: bool = False) -> subprocess.Popen[str]:
    """Start a long-lived child (QEMU, the accelerator probe) without waiting for it. Its output
    goes to log (appended) when given, else stderr is a pipe the caller reads once it exited."""
    argv = _argv(cmd)
    ui.detail(f"$ {shlex.join(argv)}")
    out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out if log else subprocess.PIPE, text=True,
                                start_new_session=new_session)
    except FileNotFoundError:
        die(f"{argv[0]}: command not found", hint="run ./install.sh")
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def exec_replace(cmd: Cmd) -> None:
    """Become cmd (an interactive ssh session or console): the terminal is its from now on."""
    argv = _argv(cmd)
    ui.detail(f"$ {shlex.join(argv)}")
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        die(f"{argv[0]}: command not found", hint="run ./install.sh")


def _env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    if extra is None:
        return None
    return {**os.environ, **extra}
