"""Whether a guest answers on a port: one small Python script, run by deploy on the lab host and
by `xenlab check` wherever the guest's users are (this machine's side of the lab network, or the
lab host itself for an existing host), so that every verb means the same by "it answers"."""

from __future__ import annotations

from dataclasses import dataclass

from lab.errors import bad_input

# argv: kind (tcp or http), ip, port, path. Exit 0 when it answers (any HTTP status counts).
SCRIPT = """
import socket, sys, urllib.request
kind, ip, port, path = sys.argv[1:5]
try:
    if kind == "tcp":
        socket.create_connection((ip, int(port)), timeout=3).close()
        print("open")
    else:
        try:
            r = urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=3)
            print(r.status)
        except urllib.error.HTTPError as e:
            print(e.code)
except OSError as e:
    print("down", e)
    sys.exit(1)
"""


@dataclass(frozen=True)
class Probe:
    kind: str  # tcp or http
    port: int
    path: str = "/"

    @classmethod
    def parse(cls, text: str) -> Probe:
        """From the user's --probe: tcp:PORT or http://:PORT/path."""
        kind, port, path = "", "", ""
        if text.startswith("tcp:"):
            kind, port = "tcp", text[4:]
        elif text.startswith("http://:"):
            kind = "http"
            port, _, path = text[len("http://:"):].partition("/")
        # ASCII digits only: int() takes what isdigit() calls a digit, but not all of it ('²').
        if kind and port.isascii() and port.isdigit() and 0 < int(port) < 65536:
            return cls(kind, int(port), "/" + path)
        bad_input(f"--probe {text!r}: expected tcp:PORT or http://:PORT/path, PORT from 1 to 65535",
                  hint="e.g. --probe tcp:8080 or --probe http://:80/health")

    @classmethod
    def recorded(cls, text: str) -> Probe:
        """From the state file (str(probe))."""
        kind, _, rest = text.partition(":")
        port, _, path = rest.partition("/")
        return cls(kind, int(port), "/" + path)

    def argv(self, python: str, ip: str) -> list[str]:
        return [python, "-c", SCRIPT, self.kind, ip, str(self.port), self.path]

    def __str__(self) -> str:
        return f"{self.kind}:{self.port}{self.path}"
