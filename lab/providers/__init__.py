"""Where the lab host is. A provider starts, stops and removes the lab VM (or, for an existing host,
only reaches it) and says how to SSH in; everything after SSH (provisioning, deploys, checks) is
the same for every provider."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lab import ui
from lab.config import LabConfig
from lab.ssh import SshTarget

if TYPE_CHECKING:
    from lab.remote import Remote

STATES = ("running", "stopped", "absent", "crashed", "unreachable")


@dataclass(frozen=True)
class ProviderFacts:
    """What differs between providers and the roles must know: NIC identity, boot arguments."""

    uplink_mac: str = ""
    uplink_interface: str = "eth1"
    xen_cmdline_extra: str = ""
    dom0_cmdline_extra: str = ""
    # This machine's interface on the host-only network where xenlab made it (QEMU's tap), for
    # `topology`'s user side; empty where it is not xenlab's (VirtualBox's, an existing host).
    user_side_interface: str = ""


@dataclass(frozen=True)
class VmStatus:
    state: str  # one of STATES
    detail: str = ""


class Provider(Protocol):
    name: str
    existing: bool  # a host xenlab did not make: checked before it is changed, never powered off
    timings: dict[str, float]  # phases of the last up(), e.g. image build and boot

    @property
    def started_from(self) -> str:
        """What the lab's disk was made from, after up()."""
        ...

    def preflight(self) -> None: ...

    def up(self, recipe: str | None = None) -> SshTarget:
        """recipe: the provisioning fingerprint (lab/converged.py); a provider that caches
        provisioned disks starts a new lab from the one made by the same recipe."""
        ...

    def keep(self, recipe: str, remote: Remote) -> None:
        """After the first complete provisioning of a new lab: keep its disk for the next one."""
        ...

    def halt(self) -> None: ...

    def destroy(self) -> None: ...

    def status(self) -> VmStatus: ...

    def facts(self) -> ProviderFacts: ...


def virtualbox_usable() -> bool:
    return bool(shutil.which("vagrant") and shutil.which("VBoxManage"))


def choose(config: LabConfig, recorded: str = "") -> str:
    """The provider name: as configured, else the one the lab was created with, else auto."""
    if config.provider != "auto":
        return config.provider
    if recorded:
        return recorded
    name = "virtualbox" if virtualbox_usable() else "qemu"
    why = "Vagrant and VirtualBox found" if name == "virtualbox" else "no VirtualBox here"
    ui.info(f"provider: {name} ({why})")
    return name


def get(name: str, config: LabConfig, state_dir: Path) -> Provider:
    if name == "ssh":
        from lab.providers.existing import ExistingHost

        return ExistingHost(config, state_dir)
    if name == "virtualbox":
        from lab.providers.virtualbox import VirtualBox

        return VirtualBox(config, state_dir)
    from lab.providers.qemu import Qemu

    return Qemu(config, state_dir)
