"""`xenlab up`: the lab VM running, provisioned as a Xen lab host, proven."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import admission, converged, providers, resources, ui
from lab.config import LabConfig
from lab.playbook import Outcome, lab_vars, provision
from lab.remote import Remote
from lab.ssh import SshFiles, write_files
from lab.state import LabState


@dataclass
class UpResult:
    provider: str
    ssh_config: str
    outcome: Outcome
    drift: list[str]  # why Ansible ran; empty when the lab was converged and it did not
    disk: str  # what the lab's disk was made from: the base image, or a provisioned one
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        ansible = {k: v for k, v in asdict(self.outcome).items() if k != "failures"}
        return {"provider": self.provider, "ssh_config": self.ssh_config,
                "ansible": {"ran": bool(self.drift), **ansible}, "drift": self.drift, "disk": self.disk,
                "phases_s": {k: round(v, 1) for k, v in self.phases.items()}}


def up(config: LabConfig, state_dir: Path, skip_tags: tuple[str, ...] = (),
       force: bool = False, allow_reboot: bool = False, trust_host_key: str = "") -> UpResult:
    """force: run Ansible even on a lab that is converged (the proof that it changes nothing).
    allow_reboot: an existing host may be rebooted into Xen (a VM xenlab made always may).
    trust_host_key: the fingerprint the user vouches for, to pin an existing host's key."""
    state = LabState.load(state_dir)
    name = providers.choose(config, state.provider)
    provider = providers.get(name, config, state_dir)
    phases: dict[str, float] = {}
    with ui.step("Preflight", phases, "preflight"):
        resources.check()
        provider.preflight()
    facts = provider.facts()
    stamp = converged.fingerprint(lab_vars(config, facts), skip_tags)
    with ui.step(f"Lab {'host' if provider.existing else 'VM'} ({name})", phases, "vm"):
        # --provision means Ansible's own run on this lab, never a disk provisioned elsewhere.
        target = provider.up(None if force else stamp)
    ssh = SshFiles.in_dir(state_dir)
    write_files(target, ssh, trust_host_key)
    may_reboot = allow_reboot or not provider.existing
    state.provider = name
    state.ssh = {"host": target.host, "port": target.port, "user": target.user,
                 "identity": str(target.identity)}
    was_provisioned = state.provisioned
    state.save(state_dir)
    outcome = Outcome()
    with ui.step("Provisioning (Ansible)", phases, "provision"):
        with Remote.open(state_dir) as remote:
            if provider.existing:
                admission.admit(remote, config, may_reboot, reboot="xen_reboot" not in skip_tags)
            drift = ["asked for (--provision)"] if force else converged.drift(
                remote, config, stamp, xen="xen_reboot" not in skip_tags)
            if drift:
                converged.forget(remote)
        if drift:
            ui.info(f"Ansible runs: {'; '.join(drift)}")
            outcome = provision(state_dir, ssh, config, facts, skip_tags=skip_tags,
                                allow_reboot=may_reboot)
            with Remote.open(state_dir) as remote:  # a fresh connection: the run may have rebooted
                converged.record(remote, stamp)
                if not was_provisioned:
                    provider.keep(stamp, remote)
        else:
            ui.info("converged: nothing changed or drifted since the last run, Ansible not needed "
                    "(`xenlab up --provision` runs it anyway)")
    phases.update({f"vm.{k}": v for k, v in provider.timings.items()})
    reboot = outcome.task_seconds.get("xen_hypervisor : Reboot into Xen")
    if reboot is not None:
        phases["provision.reboot_into_xen"] = reboot
    state.provisioned = True
    state.save(state_dir)
    ui.info(f"lab ready: {outcome.summary() if drift else 'converged'}; "
            f"ssh: ssh -F {ssh.config} xenlab")
    return UpResult(name, str(ssh.config), outcome, drift, provider.started_from, phases)

