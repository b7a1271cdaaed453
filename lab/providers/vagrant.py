"""A thin adapter over python-vagrant: streams Vagrant's output as progress and, because
python-vagrant drops Vagrant's stderr from its exceptions, keeps it to say why a call failed."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lab import ui
from lab.errors import die


@dataclass(frozen=True)
class VmState:
    name: str
    state: str  # Vagrant's words: running, poweroff, saved, not_created, aborted...
    provider: str


class Vagrant:
    def __init__(self, root: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.root, self.log = root, log
        self._stderr: IO[str] | None = None
        self.env = env

    @contextlib.contextmanager
    def _err_cm(self) -> Iterator[IO[str]]:
        assert self._stderr is not None
        yield self._stderr

    def _client(self) -> Any:
        import os

        import vagrant

        return vagrant.Vagrant(str(self.root), err_cm=self._err_cm, quiet_stdout=False,  # type: ignore[no-untyped-call]
                               env={**os.environ, **(self.env or {})})

    def _call(self, what: str, fn: Callable[[Any], Any], hint: str) -> Any:
        with tempfile.TemporaryFile("w+") as err:
            self._stderr = err
            try:
                return fn(self._client())
            except subprocess.CalledProcessError:
                err.seek(0)
                reason = " / ".join(line.strip() for line in err.read().splitlines() if line.strip())
                die(f"vagrant {what} failed: {reason[-600:] or 'no message on stderr'}", hint=hint)
            except FileNotFoundError:
                die("vagrant is not installed", hint="apt-get install vagrant, or use --provider qemu")
            finally:
                self._stderr = None

    def _stream(self, what: str, lines: Callable[[Any], Iterator[str]], hint: str) -> None:
        def consume(client: Any) -> None:
            with open(self.log, "a") as log, ui.live_status(f"vagrant {what}") as status:
                for line in lines(client):
                    log.write(line if line.endswith("\n") else line + "\n")
                    text = line.strip()
                    if text:
                        status.update(f"vagrant {what}: {text[-100:]}")
                        ui.detail(text)

        self._call(what, consume, hint)

    def up(self, provider: str) -> None:
        self._stream("up", lambda c: c.up(provider=provider, stream_output=True),
                     hint=f"Vagrant's full output is in {self.log}")

    def halt(self) -> None:
        self._stream("halt", lambda c: c.halt(), hint=f"see {self.log}")

    def destroy(self) -> None:
        self._call("destroy", lambda c: c.destroy(), hint="`VBoxManage list vms` shows what is left")

    def status(self) -> list[VmState]:
        return [VmState(s.name, s.state, s.provider or "")
                for s in self._call("status", lambda c: c.status(), hint="is Vagrant working?")]

    def ssh_config(self) -> str:
        return str(self._call("ssh-config", lambda c: c.ssh_config(), hint="is the VM running?"))
