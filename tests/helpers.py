"""Small helpers shared by tests: running the real xenlab command and real reader tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# xenlab as the tests' own interpreter runs it: never whichever `xenlab` comes first on PATH (a
# pyenv shim or an older install would test other code than this checkout's).
XENLAB = [sys.executable, "-m", "lab"]


def xenlab(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
           input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed CLI as a user runs it: a real process, real exit code, real streams."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*XENLAB, *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, input=input, timeout=timeout)


def run(*cmd: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, check=check,
                          timeout=120, **kw)  # type: ignore[call-overload]
