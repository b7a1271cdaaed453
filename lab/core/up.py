"""`xenlab up`: the lab host running (a VM xenlab makes, or existing hosts it takes), provisioned
as a Xen lab host, proven. Several existing hosts are reached one by one, then provisioned by one
Ansible run in parallel; a host that is down or fails is reported and never stops the others."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import admission, converged, providers, resources, ui
from lab.errors import LabError, die
from lab.lab import Lab
from lab.playbook import RESUME, Outcome, provision_hosts
from lab.remote import Remote
from lab.ssh import SshFiles, write_files


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


@dataclass
class Options:
    skip_tags: tuple[str, ...] = ()
    force: bool = False  # run Ansible even when converged (the proof that it changes nothing)
    allow_reboot: bool = False  # an existing host may be rebooted into Xen (a VM always may)
    trust: Collection[str] = ()  # fingerprints the user vouches for (existing hosts' keys)


@dataclass
class _Reached:
    """One host after the steps before Ansible: pinned, admitted, its drift known."""

    host: Lab
    provider: providers.Provider
    ssh: SshFiles
    variables: dict[str, object]
    stamp: str
    drift: list[str]
    was_provisioned: bool
    phases: dict[str, float]


def up(lab: Lab, options: Options | None = None) -> UpResult:
    """A directory's one lab host; a failure stops here."""
    options = options or Options()
    reached = _reach(lab, options)
    outcome = Outcome()
    if reached.drift:
        with ui.step("Provisioning (Ansible)", reached.phases, "provision"):
            outcome = _provision([reached], lab.state_dir, options)[reached.host.label]
            if outcome.failures:
                die(outcome.failure(), hint=RESUME)
    return _finish(reached, outcome)


@dataclass
class ManyResult:
    ready: dict[str, UpResult]
    failed: dict[str, str]  # host -> why it is not ready

    def to_json(self) -> dict[str, object]:
        return {"hosts": {**{name: r.to_json() for name, r in self.ready.items()},
                          **{name: {"error": why} for name, why in self.failed.items()}}}


def up_hosts(hosts: list[Lab], run_dir: Path, options: Options) -> ManyResult:
    """Several existing hosts: each reached in turn (a host that is down is reported, and
    skipped), then one Ansible run over those that drifted, one fork and one line each."""
    reached, failed = [], {}
    for host in hosts:
        try:
            with ui.step(f"{host.name}"):
                reached.append(_reach(host, options))
        except LabError as exc:
            failed[host.name] = exc.message
            ui.warn(f"{host.name}: {exc.message}")
    drifted = [r for r in reached if r.drift]
    outcomes: dict[str, Outcome] = {}
    if drifted:
        with ui.step(f"Provisioning {', '.join(r.host.name for r in drifted)} (Ansible, in parallel)"):
            outcomes = _provision(drifted, run_dir, options)
    ready = {}
    for r in reached:
        outcome = outcomes.get(r.host.label, Outcome())
        if outcome.failures:
            failed[r.host.name] = outcome.failure()
            continue
        try:
            ready[r.host.name] = _finish(r, outcome)
        except LabError as exc:
            failed[r.host.name] = exc.message
    return ManyResult(ready, {name: failed[name] for name in (h.name for h in hosts) if name in failed})


def _reach(host: Lab, options: Options) -> _Reached:
    config, state_dir, provider = host.config, host.state_dir, host.provider
    name = provider.name
    phases: dict[str, float] = {}
    with ui.step("Preflight", phases, "preflight"):
        resources.check()
        provider.preflight()
    variables, stamp = converged.provisioning(config, provider.facts(), options.skip_tags)
    with ui.step(f"Lab {'host' if provider.existing else 'VM'} ({name})", phases, "vm"):
        # --provision means Ansible's own run on this lab, never a disk provisioned elsewhere.
        target = provider.up(None if options.force else stamp)
    ssh = SshFiles.in_dir(state_dir)
    write_files(target, ssh, options.trust)
    with host.changing_state() as state:
        state.provider = name
        state.ssh = {"host": target.host, "port": target.port, "user": target.user,
                     "identity": str(target.identity)}
        was_provisioned = state.provisioned
    with Remote.open(host) as remote:
        if provider.existing:
            admission.admit(remote, config, _may_reboot(provider, options),
                            reboot="xen_reboot" not in options.skip_tags)
        drift = ["asked for (--provision)"] if options.force else converged.drift(
            remote, config, stamp, xen="xen_reboot" not in options.skip_tags)
        if drift:
            converged.forget(remote)
            ui.info(f"Ansible runs: {'; '.join(drift)}")
        else:
            ui.info("converged: nothing changed or drifted since the last run, Ansible not needed "
                    "(`xenlab up --provision` runs it anyway)")
    return _Reached(host=host, provider=provider, ssh=ssh, variables=variables, stamp=stamp,
                    drift=drift, was_provisioned=was_provisioned, phases=phases)


def _may_reboot(provider: providers.Provider, options: Options) -> bool:
    return options.allow_reboot or not provider.existing


def _provision(reached: list[_Reached], run_dir: Path, options: Options) -> dict[str, Outcome]:
    # One run, one permission: a VM xenlab made may always reboot; existing hosts need consent.
    return provision_hosts(run_dir, {r.host.label: (r.ssh, r.variables) for r in reached},
                           options.skip_tags, allow_reboot=all(_may_reboot(r.provider, options)
                                                               for r in reached))


def _finish(r: _Reached, outcome: Outcome) -> UpResult:
    """After a successful run (or none needed): record it, keep a new lab's disk, say so."""
    if r.drift:
        with Remote.open(r.host) as remote:  # a fresh connection: the run may have rebooted
            converged.record(remote, r.stamp)
            if not r.was_provisioned:
                r.provider.keep(r.stamp, remote)
    r.phases.update({f"vm.{k}": v for k, v in r.provider.timings.items()})
    reboot = outcome.task_seconds.get("xen_hypervisor : Reboot into Xen")
    if reboot is not None:
        r.phases["provision.reboot_into_xen"] = reboot
    with r.host.changing_state() as state:
        state.provisioned = True
    ssh = SshFiles.in_dir(r.host.state_dir)
    ui.info(f"{r.host.label} ready: {outcome.summary() if r.drift else 'converged'}; "
            f"ssh: {ssh.ssh_line()}")
    return UpResult(r.provider.name, str(ssh.config), outcome, r.drift, r.provider.started_from,
                    r.phases)
