"""A unikernel's boot arguments: the only way to configure a binary unikernel at deploy time.

xl hands the guest one command line: `cmdline` when the file has it (xl then ignores `extra` and
`root`), else `extra`. MirageOS reads its keys from there, in one of two dialects:
  mirage4  `--ipv4=A/N --ipv4-gateway=G` (MirageOS 4, cmdliner)
  mirage3  `ipv4=A/N ipv4-gateway=G`     (MirageOS 3, mirage-bootvar: key=value, no dashes)
Both split the line on spaces and neither unquotes, so one argument is one word of plain text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import bad_input

if TYPE_CHECKING:
    from lab.xl.syntax import XlFile

DIALECTS = ("mirage4", "mirage3")
SOLO5_CMDLINE_MAX = 8192  # Solo5 truncates a longer command line (its buffer, NUL included)
# Printable ASCII without space, quotes, backslash or shell/xl metacharacters: what a unikernel's
# splitter reads back unchanged and what no layer (xl's quoting, a shell, a log) reinterprets.
_ARG = re.compile(r"[A-Za-z0-9_.,:/=+@%^~\-\[\]{}]+")
# Mini-OS's banner: only a MirageOS <= 3.8 PV kernel (mirage-xen on Mini-OS) carries it, and those
# read boot arguments with mirage-bootvar (key=value).
_MINIOS = b"Xen Minimal OS"
_ADDR = re.compile(r"^(?:--)?ipv4=(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?$")


def check_arg(arg: str) -> str:
    if not _ARG.fullmatch(arg):
        bad = sorted({c for c in arg if not _ARG.fullmatch(c)}) or ["(empty)"]
        shown = " ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
        bad_input(f"--arg {arg!r}: a boot argument cannot hold {shown}",
                  hint="one --arg per word of plain text, e.g. --arg --ipv4=192.168.77.201/24; "
                       "unikernels split the command line on spaces and do not unquote")
    return arg


def key(doc: XlFile) -> str:
    """The .xl key the guest's command line lives in: xl ignores `extra` once `cmdline` is set."""
    return "cmdline" if doc.get("cmdline") is not None else "extra"


def join(existing: str, args: list[str]) -> str:
    return " ".join(p for p in [existing.strip(), *args] if p)


def address_in(cmdline: str) -> ipaddress.IPv4Interface | None:
    """A static address the boot arguments already give (either dialect), used as is."""
    for word in cmdline.split():
        m = _ADDR.match(word)
        if m:
            try:
                return ipaddress.IPv4Interface(f"{m.group(1)}/{m.group(2) or 24}")
            except ValueError:
                return None
    return None


def detect_dialect(kernel: Path) -> str | None:
    """mirage3 for a Mini-OS based MirageOS kernel; None when the binary does not tell."""
    try:
        with open(kernel, "rb") as f:
            tail = b""
            while chunk := f.read(1 << 20):
                if _MINIOS in tail + chunk:
                    return "mirage3"
                tail = chunk[-len(_MINIOS):]
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class StaticAddress:
    interface: ipaddress.IPv4Interface
    gateway: str

    def args(self, dialect: str) -> list[str]:
        dash = "--" if dialect == "mirage4" else ""
        return [f"{dash}ipv4={self.interface.with_prefixlen}", f"{dash}ipv4-gateway={self.gateway}"]
