"""Running the provisioning playbook: inventory and lab variables from the config, Ansible's events
streamed as progress, the outcome as counts, a failure as the failing task's own message."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import lab_host, resources, run, ui
from lab.config import LabConfig
from lab.errors import die
from lab.providers import ProviderFacts
from lab.ssh import HOST_ALIAS, SshFiles


def lab_vars(config: LabConfig, facts: ProviderFacts) -> dict[str, Any]:
    """The roles' variables: each set from the one config field it derives from, and the lab
    host's layout (lab/lab_host.py)."""
    return {
        **lab_host.role_vars(),
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
        "xen_hypervisor_paging": config.paging,
        "xen_hypervisor_cmdline_extra": _join(facts.xen_cmdline_extra, config.xen_cmdline_extra),
        "xen_hypervisor_dom0_cmdline_extra": _join(facts.dom0_cmdline_extra, config.dom0_cmdline_extra),
    }


def _join(provider: str, user: str) -> str:
    """What the provider needs on a command line, then what the user's host needs."""
    return " ".join(part for part in (provider, user) if part)


INVENTORY = "inventory.json"
RESUME = "rerun with -v for every task; the lab keeps what converged, so `xenlab up` resumes"
# Ansible's local temp and its SSH control sockets: scratch, not part of a lab.
SCRATCH = ("ansible-tmp", "cp")


def owned(state: Path) -> list[Path]:
    return [state / name for name in (INVENTORY, *SCRATCH)]


def write_inventory(state: Path, hosts: Mapping[str, tuple[SshFiles, dict[str, Any]]]) -> Path:
    """Each host reached through its own ssh-config (its pinned key), with its own lab variables
    as host variables: one run provisions every host with what is particular to it."""
    inventory = state / INVENTORY
    # Every host is "xenlab" in its own ssh-config, and Ansible names its SSH control sockets after
    # that alias: without a directory of its own, each host's tasks would run over the first
    # host's connection.
    group = {name: {"ansible_host": HOST_ALIAS, "ansible_ssh_common_args": f"-F {ssh.config}",
                    "ansible_control_path_dir": str(ssh.config.parent / SCRATCH[1]),
                    "ansible_python_interpreter": "/usr/bin/python3", **variables}
             for name, (ssh, variables) in hosts.items()}
    inventory.write_text(json.dumps({"xenlab": {"hosts": group}}, indent=2) + "\n")
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

    def failure(self) -> str:
        """The first failing task and its message; "" when none failed."""
        if not self.failures:
            return ""
        task, msg = self.failures[0]
        return f"provisioning failed at task '{task}': {msg}"

    def summary(self) -> str:
        return (f"ok={self.ok} changed={self.changed} failed={self.failed} "
                f"unreachable={self.unreachable} skipped={self.skipped}")


def provision(state: Path, ssh: SshFiles, config: LabConfig, facts: ProviderFacts,
              skip_tags: tuple[str, ...] = (), check: bool = False,
              allow_reboot: bool = True) -> Outcome:
    """The lab host of one lab; a failure stops here with the failing task's message.
    allow_reboot: whether the run may reboot the host into Xen (always for a VM xenlab made)."""
    outcome = provision_hosts(state, {"lab": (ssh, lab_vars(config, facts))}, skip_tags, check,
                              allow_reboot)["lab"]
    if outcome.failures:
        die(outcome.failure(), hint=RESUME)
    return outcome


def provision_hosts(state: Path, hosts: Mapping[str, tuple[SshFiles, dict[str, Any]]],
                    skip_tags: tuple[str, ...] = (), check: bool = False,
                    allow_reboot: bool = True) -> dict[str, Outcome]:
    """One playbook run over every host, in parallel (one Ansible fork each), one progress line
    per host; each host's outcome, failures included: a host that fails or cannot be reached
    stops only itself."""
    inventory = write_inventory(state, hosts)
    cmd: list[str | os.PathLike[str]] = [
        Path(sys.executable).with_name("ansible-playbook") if _venv_ansible() else "ansible-playbook",
        "-i", inventory, "-e", json.dumps({"xen_hypervisor_reboot_allowed": allow_reboot}),
        resources.playbook(),
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
        "ANSIBLE_FORKS": str(max(5, len(hosts))),
    }
    outcomes = {name: Outcome() for name in hosts}
    task_seconds: dict[str, float] = {}  # the run's, shared by every host's outcome
    for outcome in outcomes.values():
        outcome.task_seconds = task_seconds
    tasks_seen = 0
    current: list[tuple[str, float]] = []

    def label(host: str) -> str:
        return f"{host}: " if len(hosts) > 1 else ""

    def close_task() -> None:
        if current:
            name, started = current.pop()
            took = time.monotonic() - started
            task_seconds[name] = task_seconds.get(name, 0.0) + took
    status = ui.live_lines({name: f"{label(name)}Ansible: starting" for name in hosts})

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
            ui.detail(f"task: {ev['name']}")
            for host, outcome in outcomes.items():
                if not outcome.failures:  # a failed host's line keeps its last task
                    status.update(f"{label(host)}Ansible task {tasks_seen}: {ev['name']}", key=host)
        elif kind == "result" and ev.get("host") in outcomes:
            host, outcome = ev["host"], outcomes[ev["host"]]
            if ev["status"] in ("failed", "unreachable"):
                outcome.failures.append((ev["task"], ev["msg"]))
                ui.warn(f"{label(host)}{ev['task']}: {ev['msg']}")
            elif ev["changed"] and ev["status"] == "ok":
                outcome.changed_tasks.append(ev["task"])
                ui.info(f"{label(host)}[yellow]changed[/yellow] {ev['task']}")
        elif kind == "stats":
            for host, counts in ev["hosts"].items():
                if host not in outcomes:
                    continue
                outcome = outcomes[host]
                outcome.ok += counts.get("ok", 0)
                outcome.changed += counts.get("changed", 0)
                outcome.failed += counts.get("failures", 0)
                outcome.unreachable += counts.get("unreachable", 0)
                outcome.skipped += counts.get("skipped", 0)
        elif kind == "warning":
            ui.detail(f"ansible warning: {ev['msg']}")

    with status:
        code, stderr = run.stream(cmd, on_line, env=env, cwd=state)
    if code != 0 and not any(o.failures for o in outcomes.values()):
        # Not a host's failure (those are reported per host): the run itself did not work.
        die(f"ansible-playbook failed (exit {code}): {run.tail(stderr)}", hint="rerun with -v")
    return outcomes


def _venv_ansible() -> bool:
    return Path(sys.executable).with_name("ansible-playbook").exists()
