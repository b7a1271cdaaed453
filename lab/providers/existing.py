"""provider = "ssh": an existing Debian 12 host, reached over SSH, made a lab host in place.

Nothing is started or stopped here: the host is someone's server. `up` reaches it (its key pinned
only once the user vouches for the fingerprint), `halt` leaves it running, and `destroy` removes
what this lab directory deployed there (its domains and their files), never the host itself. What
the host must be before anything changes on it is lab/admission.py's job.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from lab import files, ui
from lab.config import LabConfig
from lab.errors import bad_input
from lab.providers import ProviderFacts, VmStatus
from lab.ssh import SshTarget

if TYPE_CHECKING:
    from lab.remote import Remote


class ExistingHost:
    name = "ssh"
    existing = True  # admission checks it; the reboot into Xen needs the user's consent

    def __init__(self, config: LabConfig, state_dir: Path) -> None:
        self.config, self.state_dir = config, state_dir
        self.timings: dict[str, float] = {}

    @property
    def where(self) -> str:
        c = self.config
        return f"{c.ssh_user}@{c.ssh_host}" + (f":{c.ssh_port}" if c.ssh_port != 22 else "")

    @property
    def started_from(self) -> str:
        return f"existing host {self.where}"

    @property
    def key(self) -> Path:
        return Path(self.config.ssh_key).expanduser().resolve()

    def preflight(self) -> None:
        try:
            head = files.read_bytes(self.key)[:100].decode(errors="replace")
        except OSError as exc:
            bad_input(f"ssh_key {self.config.ssh_key}: {exc.strerror or exc}",
                      hint="the private key ssh_user logs in with (ssh-keygen -t ed25519 makes one)")
        if "PRIVATE KEY" not in head:
            bad_input(f"ssh_key {self.config.ssh_key}: not a private key",
                      hint="give the private half (id_ed25519), not the .pub")

    def up(self, recipe: str | None = None) -> SshTarget:
        c = self.config
        return SshTarget(c.ssh_host, c.ssh_port, c.ssh_user, self.key, vouched=True)

    def keep(self, recipe: str, remote: Remote) -> None:
        """A host's disk is its own: nothing of it is cached."""

    def halt(self) -> None:
        ui.info(f"{self.where} is an existing host: xenlab never powers it off; its domains keep "
                "running (`xenlab destroy NAME` stops one)")

    def destroy(self) -> None:
        """Nothing of the host: lab/core/lifecycle.py removes what this lab directory deployed
        on it (its domains, their files, their reservations)."""
        ui.info(f"{self.where} keeps running: Xen, the lab bridge and dnsmasq stay as provisioned")

    def status(self) -> VmStatus:
        try:
            with socket.create_connection((self.config.ssh_host, self.config.ssh_port), timeout=5) as s:
                s.settimeout(5)
                banner = s.recv(64)
        except OSError as exc:
            return VmStatus("unreachable", f"{self.where}: {exc.strerror or exc}")
        if not banner.startswith(b"SSH-"):
            return VmStatus("unreachable", f"{self.where}: no SSH server answers")
        return VmStatus("running", f"existing host {self.where}")

    def facts(self) -> ProviderFacts:
        return ProviderFacts(uplink_interface=self.config.uplink_interface)
