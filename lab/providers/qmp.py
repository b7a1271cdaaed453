"""A small client for QEMU's machine protocol (QMP) on the lab VM's control socket: commands
with arguments, their replies, and the events a block job ends with."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from lab.errors import die


class Qmp:
    def __init__(self, path: Path, timeout: float = 10) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            die(f"cannot reach QEMU's control socket {path}: {exc.strerror or exc}",
                hint="is the lab VM running? `xenlab status`")
        self.stream = self.sock.makefile("rb")
        self.events: list[dict[str, Any]] = []
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def close(self) -> None:
        self.stream.close()
        self.sock.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> dict[str, Any]:
        line = self.stream.readline()
        if not line:
            die("QEMU closed its control socket", hint="is the lab VM still running? `xenlab status`")
        return json.loads(line)  # type: ignore[no-any-return]

    def execute(self, command: str, **arguments: Any) -> Any:
        """The command's return value; its error as a one-line failure. Events that arrive before
        the reply are kept for wait_event()."""
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                die(f"QEMU refused {command}: {reply['error'].get('desc', reply['error'])}")
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name: str, timeout: float, **match: Any) -> dict[str, Any]:
        """The first event called name whose data holds match (one seen already, or the next)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                data = event.get("data", {})
                if event["event"] == name and all(data.get(k) == v for k, v in match.items()):
                    del self.events[i]
                    return data  # type: ignore[no-any-return]
            left = deadline - time.monotonic()
            if left <= 0:
                die(f"QEMU sent no {name} within {timeout:.0f} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except TimeoutError:
                continue
