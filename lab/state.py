"""The lab's state file (.xenlab/state.json): what xenlab created, so every verb knows what
exists. It is a cache of facts; where the lab host can be asked, the host is the truth.

Records are typed and serialised here only; a file from an older or newer xenlab keeps the fields
this one knows and drops the rest, and a corrupt file is a clear error, not a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab import files
from lab.errors import die

FILE = "state.json"
# The file's layout. A file without one is of the first; a newer one is refused (its fields may
# mean what this xenlab does not know); a change that older xenlabs cannot read raises it.
SCHEMA = 1
LOCK = ".state.lock"  # held while a command changes the file (lab/lab.py)


def owned(state_dir: Path) -> list[Path]:
    """What this module keeps about one lab VM in the state directory (destroy removes it)."""
    return [state_dir / FILE, state_dir / LOCK]


@dataclass
class DomainRecord:
    """What deploy decided for a guest: how to find it and what it was given."""

    mac: str | None = None
    ip: str | None = None
    address: str = "dhcp"  # dhcp, static or none
    xl: str = ""  # the user's file
    lab_xl: str = ""  # the lab copy xl created it from
    probe: str | None = None
    boot_args: str = ""
    sha256: dict[str, str] = field(default_factory=dict)  # artifact file name -> hash


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


Shape = Mapping[str, "type | tuple[type, ...]"]
_OPTIONAL_TEXT = (str, type(None))
_SSH: Shape = {"host": str, "port": int, "user": str, "identity": str}


def _shaped(what: str, data: object, shape: Shape, required: bool = False) -> None:
    """A value of another shape than a record's field makes a file this xenlab cannot trust
    (edited by hand, truncated, or not xenlab's): it is refused as a whole."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} is {type(data).__name__}, not an object")
    for key, kind in shape.items():
        if key not in data:
            if required:
                raise ValueError(f"{what} has no {key}")
            continue
        value = data[key]
        # JSON's true is no port number, though Python's bool is an int.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{what}.{key} is {json.dumps(value)[:40]}")


@dataclass
class LabState:
    schema: int = SCHEMA
    provider: str = ""
    ssh: dict[str, Any] = field(default_factory=dict)  # SshTarget fields
    provider_data: dict[str, Any] = field(default_factory=dict)
    provisioned: bool = False
    domains: dict[str, DomainRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> LabState:
        path = state_dir / FILE
        if not path.exists():
            return cls()
        try:
            data = json.loads(files.read_text(path))
            _shaped("the file", data, _SHAPES[cls])
            if data.get("schema", 1) > SCHEMA:
                die(f"{path}: written by a newer xenlab (state schema {data['schema']}; this "
                    f"one reads {SCHEMA})", hint="upgrade xenlab, or move the file aside and "
                    "`xenlab up` again")
            if data.get("ssh"):
                _shaped("ssh", data["ssh"], _SSH, required=True)
            for name, record in (data.get("domains") or {}).items():
                _shaped(f"domains.{name}", record, _SHAPES[DomainRecord])
            state = cls(**_known(cls, data))
            state.domains = {name: DomainRecord(**_known(DomainRecord, record))
                             for name, record in (data.get("domains") or {}).items()}
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSON's errors too
            die(f"{path}: not a state file xenlab can read ({str(exc) or type(exc).__name__})",
                hint=f"move it aside; `xenlab up` writes a new one ({state_dir} keeps the rest)")
        except OSError as exc:
            die(f"{path}: cannot read: {exc.strerror}", hint="it should be a file xenlab wrote: check "
                "its permissions, or move it aside")
        return state

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(state_dir / FILE)


# The fields of each record as the file holds them.
_SHAPES: Mapping[type, Shape] = {
    LabState: {"schema": int, "provider": str, "ssh": dict, "provider_data": dict, "provisioned": bool,
               "domains": dict},
    DomainRecord: {"mac": _OPTIONAL_TEXT, "ip": _OPTIONAL_TEXT, "address": str, "xl": str,
                   "lab_xl": str, "probe": _OPTIONAL_TEXT, "boot_args": str, "sha256": dict},
}
