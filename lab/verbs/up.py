"""`xenlab up`: the lab VM running, provisioned as a Xen lab host, proven."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import providers, ui
from lab.config import LabConfig
from lab.playbook import Outcome, provision
from lab.ssh import SshFiles, write_files
from lab.state import LabState


@dataclass
class UpResult:
    provider: str
    ssh_config: str
    outcome: Outcome
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"provider": self.provider, "ssh_config": self.ssh_config,
                "ansible": {k: v for k, v in asdict(self.outcome).items() if k != "failures"},
                "phases_s": {k: round(v, 1) for k, v in self.phases.items()}}


def up(config: LabConfig, state_dir: Path, skip_tags: tuple[str, ...] = ()) -> UpResult:
    state = LabState.load(state_dir)
    name = providers.choose(config, state.provider)
    provider = providers.get(name, config, state_dir)
    phases: dict[str, float] = {}
    with ui.step("Preflight", phases, "preflight"):
        provider.preflight()
    with ui.step(f"Lab VM ({name})", phases, "vm"):
        target = provider.up()
    ssh = SshFiles.in_dir(state_dir)
    write_files(target, ssh)
    state.provider = name
    state.ssh = {"host": target.host, "port": target.port, "user": target.user,
                 "identity": str(target.identity)}
    state.save(state_dir)
    with ui.step("Provisioning (Ansible)", phases, "provision"):
        outcome = provision(state_dir, ssh, config, provider.facts(), skip_tags=skip_tags)
    phases.update({f"vm.{k}": v for k, v in provider.timings.items()})
    reboot = outcome.task_seconds.get("xen_hypervisor : Reboot into Xen")
    if reboot is not None:
        phases["provision.reboot_into_xen"] = reboot
    state.provisioned = True
    state.save(state_dir)
    ui.info(f"lab ready: {outcome.summary()}; ssh: ssh -F {ssh.config} xenlab")
    return UpResult(name, str(ssh.config), outcome, phases)
