"""The lab hosts of one lab directory: its one lab (a VM xenlab made, or one existing host), or
several existing hosts named in `[hosts.NAME]` tables or an Ansible inventory.

Each host is a lab of its own to every module below the verbs: its settings (LabConfig) and its
state directory (.xenlab for the one lab, .xenlab/hosts/NAME for each of several). The verbs ask
here which hosts a command is about; nothing else knows there can be more than one.
"""

from __future__ import annotations

from pathlib import Path

from lab.config import Resolved
from lab.errors import bad_input
from lab.lab import Lab

SUBDIR = "hosts"


def all_of(resolved: Resolved, state_dir: Path) -> list[Lab]:
    if not resolved.hosts:
        return [Lab("", resolved.config, state_dir)]
    return [Lab(name, config, state_dir / SUBDIR / name) for name, config in resolved.hosts.items()]


def chosen(resolved: Resolved, state_dir: Path, name: str | None) -> list[Lab]:
    """The host --host names, else every host."""
    hosts = all_of(resolved, state_dir)
    if name is None:
        return hosts
    found = [h for h in hosts if h.name == name]
    if not found:
        known = ", ".join(h.name for h in hosts if h.name) or "none: this directory has one lab"
        bad_input(f"--host {name}: no such host", hint=f"hosts: {known}")
    return found


def one(resolved: Resolved, state_dir: Path, name: str | None, verb: str) -> Lab:
    """The one host a verb acts on: the lab, or the host --host names."""
    hosts = chosen(resolved, state_dir, name)
    if len(hosts) > 1:
        bad_input(f"{verb}: this directory has {len(hosts)} hosts; say which",
                  hint=f"--host {' | --host '.join(h.name for h in hosts)}")
    return hosts[0]
