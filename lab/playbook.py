"""Running the provisioning playbook: inventory and lab variables from the config, Ansible's events
streamed as progress, the outcome as counts, a failure as the failing task's own message."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import resources, run, ui
from lab.config import LabConfig
from lab.errors import die
from lab.providers import ProviderFacts
from lab.ssh import HOST_ALIAS, SshFiles


def lab_vars(config: LabConfig, facts: ProviderFacts) -> dict[str, Any]:
    """The roles' variables, each set from the one config field it derives from."""
    return {
        "lab_network_bridge": config.bridge,
        "lab_network_address": config.lab_ip,
        "lab_network_prefix": config.prefixlen,
        "lab_network_uplink_mac": facts.uplink_mac,
        "lab_network_uplink_interface": facts.uplink_interface,
        "lab_dhcp_interface": config.bridge,
        "lab_dhcp_range_start": config.dhcp_start,
        "lab_dhcp_range_end": config.dhcp_end,
        "lab_dhcp_netmask": config.netmask,
        "lab_dhcp_lease_time": config.lease_time,
        "lab_dhcp_router": config.lab_ip,
        "lab_forwarding_subnet": str(config.network()),
        "lab_forwarding_nat": config.nat,
        "xen_hypervisor_dom0_memory_mb": config.dom0_memory,
        "xen_hypervisor_vif_bridge": config.bridge,
        "xen_hypervisor_cmdline_extra": _join(facts.xen_cmdline_extra, config.xen_cmdline_extra),
        "xen_hypervisor_dom0_cmdline_extra": _join(facts.dom0_cmdline_extra, config.dom0_cmdline_extra),
    }


def _join(provider: str, user: str) -> str:
    """What the provider needs on a command line, then what the user's host needs."""
    return " ".join(part for part in (provider, user) if part)


INVENTORY, VARS = "inventory.ini", "lab-vars.json"
# Ansible's local temp and its SSH control sockets: scratch, not part of a lab.
SCRATCH = ("ansible-tmp", "cp")


def owned(state: Path) -> list[Path]:
    return [state / name for name in (INVENTORY, VARS, *SCRATCH)]


def write_inventory(state: Path, ssh: SshFiles) -> Path:
    inventory = state / INVENTORY
    args = f"-F {ssh.config}"
    inventory.write_text(
        "# Written by xenlab from the provider's ssh-config; rewritten on every `xenlab up`.\n"
        "[xenlab]\n"
        f"lab ansible_host={HOST_ALIAS} ansible_ssh_common_args='{args}' "
        "ansible_python_interpreter=/usr/bin/python3\n"
    )
    return inventory


@dataclass
class Outcome:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    changed_tasks: list[str] = field(default_factory=list)
    task_seconds: dict[str, float] = field(default_factory=dict)  # slowest tasks, for reports
    failures: list[tuple[str, str]] = field(default_factory=list)  # (task, message)

    def summary(self) -> str:
        return (f"ok={self.ok} changed={self.changed} failed={self.failed} "
                f"unreachable={self.unreachable} skipped={self.skipped}")


def provision(state: Path, ssh: SshFiles, config: LabConfig, facts: ProviderFacts,
              skip_tags: tuple[str, ...] = (), check: bool = False,
              allow_reboot: bool = True) -> Outcome:
    """allow_reboot: whether the run may reboot the host into Xen (always for a VM xenlab made)."""
    inventory = write_inventory(state, ssh)
    vars_file = state / VARS
    vars_file.write_text(json.dumps(lab_vars(config, facts), indent=2) + "\n")
    cmd: list[str | os.PathLike[str]] = [
        Path(sys.executable).with_name("ansible-playbook") if _venv_ansible() else "ansible-playbook",
        "-i", inventory, "-e", f"@{vars_file}",
        "-e", json.dumps({"xen_hypervisor_reboot_allowed": allow_reboot}), resources.playbook(),
    ]
    if skip_tags:
        cmd += ["--skip-tags", ",".join(skip_tags)]
    if check:
        cmd += ["--check", "--diff"]
    env = {
        "ANSIBLE_STDOUT_CALLBACK": "xenlab_events",
        "ANSIBLE_CALLBACK_PLUGINS": str(resources.callback_plugins()),
        "ANSIBLE_ROLES_PATH": str(resources.roles()),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(state / SCRATCH[0]),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(state / SCRATCH[1]),
        "ANSIBLE_PIPELINING": "True",
    }
    outcome = Outcome()
    tasks_seen = 0
    current: list[tuple[str, float]] = []

    def close_task() -> None:
        if current:
            name, started = current.pop()
            took = time.monotonic() - started
            outcome.task_seconds[name] = outcome.task_seconds.get(name, 0.0) + took
    status = ui.live_status("Ansible: starting")

    def on_line(line: str) -> None:
        nonlocal tasks_seen
        try:
            ev = json.loads(line)
        except ValueError:
            ui.detail(line)
            return
        kind = ev.get("event")
        if kind in ("task", "stats"):
            close_task()
        if kind == "task":
            current.append((ev["name"], time.monotonic()))
            tasks_seen += 1
            status.update(f"Ansible task {tasks_seen}: {ev['name']}")
            ui.detail(f"task: {ev['name']}")
        elif kind == "result":
            if ev["status"] in ("failed", "unreachable"):
                outcome.failures.append((ev["task"], ev["msg"]))
                ui.warn(f"{ev['task']}: {ev['msg']}")
            elif ev["changed"] and ev["status"] == "ok":
                outcome.changed_tasks.append(ev["task"])
                ui.info(f"[yellow]changed[/yellow] {ev['task']}")
        elif kind == "stats":
            for counts in ev["hosts"].values():
                outcome.ok += counts.get("ok", 0)
                outcome.changed += counts.get("changed", 0)
                outcome.failed += counts.get("failures", 0)
                outcome.unreachable += counts.get("unreachable", 0)
                outcome.skipped += counts.get("skipped", 0)
        elif kind == "warning":
            ui.detail(f"ansible warning: {ev['msg']}")

    with status:
        code, stderr = run.stream(cmd, on_line, env=env, cwd=state)
    if outcome.failures:
        task, msg = outcome.failures[0]
        die(f"provisioning failed at task '{task}': {msg}",
            hint="rerun with -v for every task; the lab keeps what converged, so `xenlab up` resumes")
    if code != 0:
        tail = run.tail(stderr)
        die(f"ansible-playbook failed (exit {code}): {tail}", hint="rerun with -v")
    return outcome


def _venv_ansible() -> bool:
    return Path(sys.executable).with_name("ansible-playbook").exists()
