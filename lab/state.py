"""The lab's state file (.xenlab/state.json): what xenlab created, so every verb knows what
exists. It is a cache of facts; where the lab host can be asked, the host is the truth."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LabState:
    provider: str = ""
    ssh: dict[str, Any] = field(default_factory=dict)  # SshTarget fields
    provider_data: dict[str, Any] = field(default_factory=dict)
    provisioned: bool = False
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> LabState:
        path = state_dir / "state.json"
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".state.json.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(state_dir / "state.json")
