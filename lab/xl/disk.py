"""xl-disk-configuration(5): one disk spec string into its parts, the way libxlutil's scanner does.

Xen scans a spec with flex: at each position the longest rule wins (trailing context counts towards
the length, which is how `phy:` and `target=` swallow the rest), the earlier rule breaks ties.
Positional parameters fill target, format, vdev, access in order; a deprecated prefix (`phy:`,
`file:`, `raw:`...) means no positional format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

FORMATS = ("unknown", "qcow", "qcow2", "vhd", "raw", "empty", "qed")
BACKENDTYPES = ("unknown", "phy", "tap", "qdisk", "standalone")


class DiskSpecError(ValueError):
    pass


@dataclass(frozen=True)
class DiskSpec:
    """What a disk spec says. `target` is the image path (libxl's pdev_path)."""

    spec: str
    target: str | None = None
    format: str = "raw"
    vdev: str | None = None
    readwrite: bool = True
    cdrom: bool = False
    script: str | None = None
    backend: str | None = None
    backendtype: str = "unknown"
    keyvalue: bool = False  # written in key=value form
    flags: tuple[str, ...] = field(default=())

    def with_target(self, target: str) -> DiskSpec:
        return replace(self, target=target)

    def with_vdev(self, vdev: str) -> DiskSpec:
        return replace(self, vdev=vdev)

    def render(self) -> str:
        """The spec in key=value form with target last, as xl-disk-configuration(5) recommends."""
        parts = [f"format={self.format}", f"vdev={self.vdev}",
                 f"access={'rw' if self.readwrite else 'ro'}"]
        if self.cdrom:
            parts.append("devtype=cdrom")
        if self.backendtype != "unknown":
            parts.append(f"backendtype={self.backendtype}")
        if self.backend:
            parts.append(f"backend={self.backend}")
        if self.script:
            parts.append(f"script={self.script}")
        parts.extend(self.flags)
        if self.target is not None:
            parts.append(f"target={self.target}")
        return ", ".join(parts)


@dataclass
class _State:
    target: str | None = None
    format: str = "unknown"
    vdev: str | None = None
    access_set: bool = False
    readwrite: bool = True
    cdrom: bool = False
    script: str | None = None
    backend: str | None = None
    backendtype: str = "unknown"
    deprecated_prefix: bool = False
    keyvalue: bool = False
    flags: list[str] = field(default_factory=list)


def _save(st: _State, attr: str, what: str, value: str) -> None:
    if getattr(st, attr) is not None:
        raise DiskSpecError(f"{what} respecified")
    setattr(st, attr, value)


def _format(st: _State, value: str) -> None:
    if value == "":
        st.format = "raw"
        return
    if value not in FORMATS:
        raise DiskSpecError(f"unknown value for format: {value!r}")
    st.format = value


def _access(st: _State, value: str) -> None:
    if value in ("rw", "w"):
        st.readwrite = True
    elif value in ("ro", "r"):
        st.readwrite = False
    else:
        raise DiskSpecError(f"unknown value for access: {value!r}")


def _devtype(st: _State, value: str) -> None:
    if value == "cdrom":
        st.cdrom = True
    elif value != "disk":
        raise DiskSpecError(f"unknown value for type: {value!r}")


def _backendtype(st: _State, value: str) -> None:
    if value not in BACKENDTYPES:
        raise DiskSpecError(f"unknown value for backendtype: {value!r}")
    st.backendtype = value


def _vdev_and_devtype(st: _State, text: str) -> bool:
    """`hdc:cdrom` (deprecated): True if text had a devtype suffix and was consumed."""
    if ":" not in text:
        return False
    vdev, _, devtype = text.rpartition(":")
    _save(st, "vdev", "vdev", vdev)
    if devtype == "cdrom":
        st.cdrom = True
    elif devtype != "disk":
        raise DiskSpecError(f"unknown deprecated type: {devtype!r}")
    return True


def _positional(st: _State, text: str) -> None:
    if st.target is None:
        st.target = text
    elif not st.deprecated_prefix and st.format == "unknown":
        if st.target == "" and _vdev_and_devtype(st, text):
            st.format = "empty"
        else:
            _format(st, text)
    elif st.vdev is None:
        if not _vdev_and_devtype(st, text):
            st.vdev = text
    elif not st.access_set:
        st.access_set = True
        _access(st, text)
    else:
        raise DiskSpecError(f"too many positional parameters at {text!r}")


def _kv(setter: Callable[[_State, str], None]) -> Callable[[_State, str], None]:
    def action(st: _State, text: str) -> None:
        st.keyvalue = True
        setter(st, text.split("=", 1)[1].removesuffix(","))

    return action


def _flag(st: _State, text: str) -> None:
    st.flags.append(text.removesuffix(","))


def _prefix(st: _State, text: str) -> None:
    st.deprecated_prefix = True
    kind = text.removesuffix(":")
    if kind in ("raw", "qcow", "qcow2", "vhd"):
        _format(st, kind)
    elif kind in ("iscsi", "nbd", "enbd", "drbd"):
        _save(st, "script", "script", f"block-{kind}")


def _unknown_prefix(st: _State, text: str) -> None:
    raise DiskSpecError(f"unknown deprecated disk prefix {text!r}")


def _unknown_param(st: _State, text: str) -> None:
    raise DiskSpecError(f"unknown parameter {text.split('=')[0]!r}")


def _string_setter(attr: str, what: str) -> Callable[[_State, str], None]:
    return lambda st, v: _save(st, attr, what, v)


def _set_target(st: _State, v: str) -> None:
    _save(st, "target", "target", v)


# (pattern, trailing context or None, action). Order matters only for ties, as in flex.
Rule = tuple[re.Pattern[str], "re.Pattern[str] | None", Callable[[_State, str], None] | None]
_RULES: list[Rule] = [
    (re.compile(r"[ \t\n]+"), re.compile(r"(?:[^ \t\n].*)?"), None),
    (re.compile(r"format=[^,]*,?"), None, _kv(_format)),
    (re.compile(r"backendtype=[^,]*,?"), None, _kv(_backendtype)),
    (re.compile(r"vdev=[^,]*,?"), None, _kv(_string_setter("vdev", "vdev"))),
    (re.compile(r"backend=[^,]*,?"), None, _kv(_string_setter("backend", "backend"))),
    (re.compile(r"script=[^,]*,?"), None, _kv(_string_setter("script", "script"))),
    (re.compile(r"access=[^,]*,?"), None, _kv(_access)),
    (re.compile(r"devtype=[^,]*,?"), None, _kv(_devtype)),
    # The deprecated positional devtype: `/iso,,hdc,cdrom`.
    (re.compile(r"cdrom,?"), None, lambda st, t: setattr(st, "cdrom", True)),
    (re.compile(r"(?:direct-io-safe|discard|no-discard|colo|no-colo|trusted|untrusted),?"),
     None, _flag),
    (re.compile(r"(?:colo-host|colo-port|colo-export|active-disk|hidden-disk)=[^,]*,?"),
     None, _flag),
    # `target=` is magic: it eats the rest of the spec, commas included.
    (re.compile(r"target=.*"), None, _kv(_set_target)),
    (re.compile(r"[a-z][-a-z0-9]*=[^,]*,?"), None, _unknown_param),
    (re.compile(r"(?:raw|qcow2?|vhd):"), re.compile(r".*"), _prefix),
    (re.compile(r"(?:iscsi|e?nbd|drbd):"), re.compile(r".*"), _prefix),
    (re.compile(r"(?:tapdisk|tap2?|aio|ioemu|file|phy):"), re.compile(r".*"), _prefix),
    (re.compile(r"[a-z][a-z0-9]*:"), re.compile(r"(?:[^a-z0-9].*)?"), _unknown_prefix),
    (re.compile(r"[^=,]*,|[^=,]+,?"), None, lambda st, t: _positional(st, t.removesuffix(","))),
]


def parse_disk(spec: str) -> DiskSpec:
    st = _State()
    pos = 0
    while pos < len(spec):
        best: tuple[int, int, Rule] | None = None
        for rule in _RULES:
            rx, trail, _ = rule
            m = rx.match(spec, pos)
            if not m:
                continue
            consumed = m.end()
            length = consumed
            if trail is not None:
                t = trail.match(spec, consumed)
                if t is None:
                    continue
                length = t.end()
            if best is None or length > best[0]:
                best = (length, consumed, rule)
        if best is None or best[1] == pos:
            raise DiskSpecError(f"bad disk syntax near {spec[pos:]!r}")
        _, consumed, (_, _, action) = best
        if action is not None:
            action(st, spec[pos:consumed])
        pos = consumed
    fmt = "raw" if st.format == "unknown" else st.format
    readwrite = st.readwrite
    if st.cdrom:
        readwrite = False
        if not st.target:
            fmt = "empty"
    if st.vdev is None:
        raise DiskSpecError("no vdev specified")
    if st.target is None and not st.cdrom:
        raise DiskSpecError("no target specified (and device not removable)")
    return DiskSpec(
        spec=spec, target=st.target, format=fmt, vdev=st.vdev, readwrite=readwrite,
        cdrom=st.cdrom, script=st.script, backend=st.backend, backendtype=st.backendtype,
        keyvalue=st.keyvalue, flags=tuple(st.flags),
    )
