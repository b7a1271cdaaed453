"""Commands and files on the lab host over the pinned SSH connection (paramiko).

Every remote command is an argument list joined with shlex quoting: user input (a domain name,
a path) is always one argument, never shell syntax, so a domain named `x; rm -rf /` is harmless.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import ui
from lab.errors import die
from lab.ssh import SshFiles, SshTarget, connect
from lab.state import LabState


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


class Remote:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._sftp: Any = None

    @classmethod
    def open(cls, state_dir: Path) -> Remote:
        state = LabState.load(state_dir)
        if not state.ssh:
            die("no lab here yet", hint="`xenlab up` first")
        target = SshTarget(state.ssh["host"], int(state.ssh["port"]), state.ssh["user"],
                           Path(state.ssh["identity"]))
        return cls(connect(SshFiles.in_dir(state_dir), target))

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()

    def run(self, argv: Sequence[str], *, sudo: bool = False, check: bool = True,
            timeout: float = 120, what: str | None = None) -> Result:
        command = shlex.join(["sudo", "-n", *argv] if sudo else list(argv))
        ui.detail(f"lab$ {command}")
        _, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        rc = stdout.channel.recv_exit_status()
        if check and rc != 0:
            reason = " / ".join(line for line in err.strip().splitlines()[-3:] if line.strip())
            die(f"{what or argv[0]} failed on the lab host: {reason or f'exit {rc}'}")
        return Result(rc, out, err)

    @property
    def sftp(self) -> Any:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def sha256(self, path: str) -> str | None:
        r = self.run(["sha256sum", "--", path], check=False)
        return r.out.split()[0] if r.rc == 0 and r.out else None

    def put(self, local: Path, remote: str, progress: Callable[[int, int], None] | None = None) -> int:
        """Upload to a temporary name, then rename into place: an interrupted upload never leaves
        a truncated file under the real name. Returns the bytes sent (0 when already there)."""
        if self.sha256(remote) == sha256_file(local):
            return 0
        partial = f"{remote}.partial-{os.getpid()}"
        try:
            self.sftp.put(str(local), partial, callback=progress)
            self.sftp.posix_rename(partial, remote)
        except BaseException:
            with contextlib.suppress(OSError):
                self.sftp.remove(partial)
            raise
        return local.stat().st_size

    def write_text(self, remote: str, text: str) -> None:
        partial = f"{remote}.partial-{os.getpid()}"
        with self.sftp.open(partial, "w") as f:
            f.write(text)
        self.sftp.posix_rename(partial, remote)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
