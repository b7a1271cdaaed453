"""Whether a lab host is still what the playbook last made it, so `xenlab up` can skip Ansible.

Under TCG every Ansible module costs seconds of Python start-up in dom0; a converged lab proves
itself with one shell command instead. The host is converged when the playbook, the roles and
the lab's variables hash to what was recorded after the last successful run *and* the live state
the roles create is there (a reboot that lost the bridge, or a hand-made change, is drift).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from lab import resources
from lab.config import LabConfig
from lab.remote import Remote

MARKER = "/var/lib/xenlab/converged"

# Fixed text; everything from the config arrives as a positional argument, never as shell syntax.
# Each line it prints is one way the host differs from a converged lab.
_PROBE = r"""
fingerprint=$1 bridge=$2 address=$3 nat=$4 xen=$5 recorded=$(cat "$6" 2>/dev/null)
if [ -z "$recorded" ]; then echo "no record of a complete provisioning run"; exit 0; fi
# sshd answers before the boot has finished (dnsmasq, the Xen daemons): judge the settled host.
timeout 300 systemctl is-system-running --wait >/dev/null 2>&1
[ "$recorded" = "$fingerprint" ] ||
  echo "the playbook, the roles or the lab settings changed since the last provisioning"
if [ "$xen" = 1 ]; then
  [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ] || echo "this host is not running as Xen dom0"
  xl info >/dev/null 2>&1 || echo "the Xen toolstack does not answer (xl info)"
fi
ip -o -4 addr show dev "$bridge" 2>/dev/null | grep -q " inet $address/" ||
  echo "$bridge does not hold $address"
ports=0
for port in /sys/class/net/"$bridge"/brif/*; do
  [ -e "$port" ] || continue
  nic=${port##*/}
  case $nic in vif*) continue ;; esac
  ports=$((ports + 1))
  # The NIC's own flag, read as lab/checks/host.py's promiscuous() reads it.
  ip -o link show dev "$nic" | grep -q '[<,]PROMISC[,>]' || echo "$nic is not promiscuous"
done
[ "$ports" -gt 0 ] || echo "$bridge has no port on the host-only network"
ss -H -ulpn 'sport = :67' 2>/dev/null | grep -q dnsmasq || echo "dnsmasq is not serving DHCP"
[ "$(sysctl -n net.ipv4.ip_forward 2>/dev/null)" = 1 ] || echo "IP forwarding is off"
[ "$nat" = 0 ] || nft list table ip xenlab >/dev/null 2>&1 || echo "the NAT table is not loaded"
"""


def fingerprint(variables: dict[str, object], skip_tags: Sequence[str]) -> str:
    """What the playbook run depends on: every file of the playbook and roles, and its inputs."""
    h = hashlib.sha256(json.dumps([variables, sorted(skip_tags)], sort_keys=True).encode())
    for top in (resources.playbook().parent, resources.roles()):
        for path in sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(path.relative_to(top.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def drift(remote: Remote, config: LabConfig, stamp: str, xen: bool) -> list[str]:
    """How the host differs from a converged lab with this fingerprint; empty when it does not."""
    r = remote.run(["sh", "-c", _PROBE, "sh", stamp, config.bridge, config.lab_ip,
                    "1" if config.nat else "0", "1" if xen else "0", MARKER],
                   sudo=True, check=False, timeout=400, what="checking the lab host")
    return [line for line in r.out.splitlines() if line.strip()]


def record(remote: Remote, stamp: str) -> None:
    """After a successful run: the next `xenlab up` may trust this host as long as nothing drifts."""
    remote.run(["sh", "-c", 'install -d -m 0755 "${1%/*}" && printf "%s\\n" "$2" > "$1"', "sh",
                MARKER, stamp], sudo=True, what="recording the converged state")


def forget(remote: Remote) -> None:
    """Before a run: a run that fails half-way must not leave an old record behind."""
    remote.run(["rm", "-f", MARKER], sudo=True, what="clearing the converged state")
