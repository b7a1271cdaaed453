"""One lab host as a command sees it: its name among several, its settings, its state directory,
its state file and its provider. A command makes one per host where it starts (lab/hosts.py) and
hands it down to the library; nothing below reads the state file or builds the provider again.

Reading is once per command; changing is not: another xenlab (a second terminal, the other guests
of a suite) may have written the file since, so a change reads it again under a lock, changes
that, and writes it (`changing_state`).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lab import providers
from lab.config import LabConfig
from lab.state import LOCK, LabState


@dataclass(frozen=True)
class Lab:
    name: str  # "" for a directory's one lab
    config: LabConfig
    state_dir: Path

    @property
    def label(self) -> str:
        return self.name or "lab"

    @cached_property
    def state(self) -> LabState:
        return LabState.load(self.state_dir)

    @cached_property
    def provider(self) -> providers.Provider:
        """The provider the lab was made with, else the one the settings choose."""
        return providers.get(providers.choose(self.config, self.state.provider), self.config,
                             self.state_dir)

    @contextlib.contextmanager
    def changing_state(self) -> Iterator[LabState]:
        """The state file as it is now, to change; written back when the block ends without an
        error, and then what `state` gives."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = LabState.load(self.state_dir)
            yield state
            state.save(self.state_dir)
        self.__dict__["state"] = state
