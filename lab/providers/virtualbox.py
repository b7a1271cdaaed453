"""The classic laptop lab: a VirtualBox VM built by Vagrant from the project's Vagrantfile."""

from __future__ import annotations

import json
from pathlib import Path

from lab import resources
from lab.config import LabConfig
from lab.providers import ProviderFacts, VmStatus
from lab.providers import virtualbox_preflight as preflight
from lab.providers.vagrant import Vagrant
from lab.remote import Remote
from lab.ssh import SshTarget

# NIC 2's MAC (VirtualBox's 08:00:27 prefix); the roles find the host-only NIC by it.
NIC2_MAC = "08:00:27:77:00:02"

_STATES = {"running": "running", "poweroff": "stopped", "saved": "stopped", "aborted": "crashed",
           "not_created": "absent", "gurumeditation": "crashed"}


class VirtualBox:
    name = "virtualbox"
    existing = False

    def __init__(self, config: LabConfig, state_dir: Path) -> None:
        self.config, self.state_dir = config, state_dir
        self.timings: dict[str, float] = {}
        self.settings = state_dir / "vagrant.json"
        self.vagrant = Vagrant(resources.root(), state_dir / "vagrant.log", env={
            "VAGRANT_DOTFILE_PATH": str(state_dir / "vagrant"),
            "XENLAB_VAGRANT_SETTINGS": str(self.settings),
        })

    def write_settings(self) -> Path:
        """.xenlab/vagrant.json, which the Vagrantfile reads: xenlab.toml stays the one source."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings
        path.write_text(json.dumps({
            "box": self.config.vagrant_box, "memory": self.config.vm_memory, "cpus": self.config.vm_cpus,
            "lab_ip": self.config.lab_ip, "nic2_mac": NIC2_MAC.replace(":", "").upper(),
            "nested": self.config.pvh,
        }, indent=2) + "\n")
        return path

    started_from = "Vagrant box"

    def preflight(self) -> None:
        preflight.virtualbox(self.config)

    def up(self, recipe: str | None = None) -> SshTarget:
        # No provisioned-disk cache: Vagrant's own answer would be a packaged box.
        self.write_settings()
        self.vagrant.up("virtualbox")
        return SshTarget.from_ssh_config(self.vagrant.ssh_config())

    def halt(self) -> None:
        self.vagrant.halt()

    def destroy(self) -> None:
        self.vagrant.destroy()

    def status(self) -> VmStatus:
        states = self.vagrant.status()
        if not states:
            return VmStatus("absent")
        return VmStatus(_STATES.get(states[0].state, "crashed"), f"vagrant: {states[0].state}")

    def facts(self) -> ProviderFacts:
        return ProviderFacts(uplink_mac=NIC2_MAC)

    def keep(self, recipe: str, remote: Remote) -> None:
        pass
