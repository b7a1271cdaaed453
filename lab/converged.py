"""Whether a lab host is still what the playbook last made it, so `xenlab up` can skip Ansible.

Under TCG every Ansible module costs seconds of Python start-up in dom0; a converged lab proves
itself with one shell command instead. The host is converged when the playbook, the roles and
the lab's variables hash to what was recorded after the last successful run *and* every fact the
playbook makes true (lab/checks/facts.py, the same ones `xenlab check` tests) still holds: a
reboot that lost the bridge, or a hand-made change, is drift.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from lab import lab_host, playbook, resources
from lab.checks import facts
from lab.config import LabConfig
from lab.providers import ProviderFacts
from lab.remote import Remote, ShellScript

# Runs before the facts; "$1" and "$2" (after the facts' parameters) are the fingerprint and the
# marker file. Each line printed is one way the host differs from a converged lab.
_PROLOGUE = r"""
fingerprint=$1 recorded=$(cat "$2" 2>/dev/null)
if [ -z "$recorded" ]; then echo "no record of a complete provisioning run"; exit 0; fi
# sshd answers before the boot has finished (dnsmasq, the Xen daemons): judge the settled host.
timeout 300 systemctl is-system-running --wait >/dev/null 2>&1
[ "$recorded" = "$fingerprint" ] ||
  echo "the playbook, the roles or the lab settings changed since the last provisioning"
"""


def provisioning(config: LabConfig, facts: ProviderFacts,
                 skip_tags: Sequence[str]) -> tuple[dict[str, object], str]:
    """The roles' variables for this lab, and the fingerprint of a playbook run with them: what
    `up` compares with the host's record, and what the provisioned-disk cache is keyed on."""
    variables = playbook.lab_vars(config, facts)
    return variables, fingerprint(variables, skip_tags)


def fingerprint(variables: dict[str, object], skip_tags: Sequence[str]) -> str:
    """What the playbook run depends on: every file of the playbook and roles, and its inputs."""
    h = hashlib.sha256(json.dumps([variables, sorted(skip_tags)], sort_keys=True).encode())
    for top in (resources.playbook().parent, resources.roles()):
        for path in sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(path.relative_to(top.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def drift(remote: Remote, config: LabConfig, stamp: str, xen: bool) -> list[str]:
    """How the host differs from a converged lab with this fingerprint; empty when it does not."""
    wanted = [f for f in facts.FACTS if f.provisioned and (xen or not f.xen)]
    probe = facts.script(wanted, (*facts.values(config), stamp, lab_host.CONVERGED_MARKER), _PROLOGUE,
                         "xenlab-converged")
    r = remote.run(probe, sudo=True, check=False, timeout=400, what="checking the lab host")
    return [line for line in r.out.splitlines() if line.strip()]


def record(remote: Remote, stamp: str) -> None:
    """After a successful run: the next `xenlab up` may trust this host as long as nothing drifts."""
    remote.run(ShellScript('install -d -m 0755 "${1%/*}" && printf "%s\\n" "$2" > "$1"',
                           (lab_host.CONVERGED_MARKER, stamp)), sudo=True,
               what="recording the converged state")


def forget(remote: Remote) -> None:
    """Before a run: a run that fails half-way must not leave an old record behind."""
    remote.run(["rm", "-f", lab_host.CONVERGED_MARKER], sudo=True, what="clearing the converged state")
