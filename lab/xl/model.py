"""Typed views of the keys a deploy needs, read with the same conversions xl applies."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.xl.disk import DiskSpec, DiskSpecError, parse_disk
from lab.xl.syntax import XlFile

# `builder` is the pre-4.10 spelling of `type`.
BUILDER_TYPES = {"linux": "pv", "generic": "pv", "hvm": "hvm"}
GUEST_TYPES = ("pv", "pvh", "hvm")
DOMAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class VifSpec:
    """One vif spec: comma-separated key=value pairs, whitespace trimmed (as xl's parser does)."""

    spec: str
    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, spec: str) -> VifSpec:
        pairs = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            key, _, value = part.partition("=")
            pairs.append((key.strip(), value.strip()))
        return cls(spec, tuple(pairs))

    def get(self, key: str) -> str | None:
        for k, v in self.pairs:
            if k == key:
                return v
        return None

    @property
    def mac(self) -> str | None:
        return self.get("mac")

    @property
    def bridge(self) -> str | None:
        return self.get("bridge")

    @property
    def ip(self) -> str | None:
        return self.get("ip")

    @property
    def script(self) -> str | None:
        return self.get("script")

    def with_(self, key: str, value: str) -> VifSpec:
        pairs = [(k, v) for k, v in self.pairs if k != key]
        pairs.append((key, value))
        return VifSpec(_render(pairs), tuple(pairs))


def _render(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" if v or k else k for k, v in pairs)


@dataclass(frozen=True)
class Domain:
    """The deploy-relevant content of an .xl file."""

    doc: XlFile

    @property
    def path(self) -> str:
        return self.doc.path

    @property
    def name(self) -> str | None:
        return self.doc.string("name")

    @property
    def type(self) -> str:
        """pv, pvh or hvm: `type` wins, else `builder`, else xl's default (pv)."""
        t = self.doc.string("type")
        if t:
            return t
        b = self.doc.string("builder")
        if b:
            return BUILDER_TYPES.get(b, b)
        return "pv"

    @property
    def kernel(self) -> str | None:
        return self.doc.string("kernel")

    @property
    def ramdisk(self) -> str | None:
        return self.doc.string("ramdisk")

    @property
    def cmdline(self) -> str | None:
        return self.doc.string("cmdline") or self.doc.string("extra")

    @property
    def memory(self) -> int | None:
        return self.doc.number("memory")

    @property
    def maxmem(self) -> int | None:
        return self.doc.number("maxmem")

    @property
    def vcpus(self) -> int | None:
        return self.doc.number("vcpus")

    def action(self, event: str) -> str | None:
        return self.doc.string(f"on_{event}")

    def disks(self) -> list[DiskSpec]:
        """Every disk spec; a malformed one raises DiskSpecError naming it."""
        out = []
        for n, spec in enumerate(self.doc.strings("disk") or []):
            try:
                out.append(parse_disk(spec))
            except DiskSpecError as exc:
                raise DiskSpecError(f"disk #{n + 1} {spec!r}: {exc}") from None
        return out

    def vifs(self) -> list[VifSpec]:
        return [VifSpec.parse(s) for s in self.doc.strings("vif") or []]
