"""Several existing hosts from an Ansible inventory, the file Ansible users already keep.

Ansible reads it (`ansible-inventory --list`): INI, YAML, groups, group_vars and host_vars all
mean what they mean to Ansible. Each host's connection comes from Ansible's own variables; a
xenlab setting is a host (or group) variable named `xenlab_<setting>`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.errors import bad_input

# Ansible's connection variables, and the setting each one is.
CONNECTION = {"ansible_host": "ssh_host", "ansible_port": "ssh_port", "ansible_user": "ssh_user",
              "ansible_ssh_private_key_file": "ssh_key"}
PREFIX = "xenlab_"


def read(path: Path, named_by: str) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """{host name: (where it was declared, its settings)} for every host of the inventory;
    named_by: where the inventory setting came from (errors name it)."""
    from lab import run

    if not path.is_file():
        bad_input(f"{named_by}: inventory {path}: no such file", hint="the inventory setting names an "
                  "Ansible inventory file (INI or YAML), relative to xenlab.toml's directory")
    tool = Path(sys.executable).with_name("ansible-inventory")
    r = run.run([str(tool) if tool.exists() else "ansible-inventory", "-i", str(path), "--list"],
                check=False, timeout=60, env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
                                  "ANSIBLE_NOCOLOR": "1"})
    if r.returncode != 0:
        bad_input(f"{named_by}: inventory {path}: Ansible cannot read it: {run.tail(r.stderr)}",
                  hint="`ansible-inventory -i FILE --list` shows what Ansible makes of it")
    return hosts_of(json.loads(r.stdout), str(path))


def hosts_of(listing: Mapping[str, Any], origin: str) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """From `ansible-inventory --list` JSON."""
    hostvars: Mapping[str, Mapping[str, Any]] = listing.get("_meta", {}).get("hostvars", {})
    names = sorted({*hostvars, *_members(listing, "all")})
    if not names:
        bad_input(f"inventory {origin}: no hosts in it", hint="one line per host, e.g. "
                  "`alpha ansible_host=10.0.0.5 ansible_user=ops xenlab_uplink_interface=eno2`")
    hosts: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for name in names:
        variables = hostvars.get(name, {})
        settings: dict[str, Any] = {"ssh_host": name}
        for key, value in variables.items():
            if key in CONNECTION:
                settings[CONNECTION[key]] = value
            elif key.startswith(PREFIX):
                settings[key[len(PREFIX):]] = value
        hosts[name] = (f"inventory {origin} host {name}", settings)
    return hosts


def _members(listing: Mapping[str, Any], group: str, seen: frozenset[str] = frozenset()) -> set[str]:
    entry = listing.get(group, {})
    found = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        if child not in seen:
            found |= _members(listing, child, seen | {group})
    return found
