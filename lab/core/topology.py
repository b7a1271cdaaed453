"""`xenlab topology`: the live lab's network, read in one round trip (lab/topology.py)."""

from __future__ import annotations

from lab import topology
from lab.core.lifecycle import vm_status
from lab.errors import die
from lab.lab import Lab


def read(lab: Lab) -> topology.Topology:
    vm = vm_status(lab)
    if vm.state != "running":
        die(f"the lab host is {vm.state}: there is no live network to draw",
            hint="`xenlab up` starts it")
    return topology.read(lab)
