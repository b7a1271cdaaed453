"""`xenlab topology`: the live lab's network, read in one round trip (lab/topology.py)."""

from __future__ import annotations

from pathlib import Path

from lab import topology
from lab.config import LabConfig
from lab.core.lifecycle import vm_status
from lab.errors import die


def read(config: LabConfig, state_dir: Path) -> topology.Topology:
    vm = vm_status(config, state_dir)
    if vm.state != "running":
        die(f"the lab host is {vm.state}: there is no live network to draw",
            hint="`xenlab up` starts it")
    return topology.read(config, state_dir)
