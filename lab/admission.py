"""Whether an existing host may become a lab host, decided before anything on it changes.

A VM xenlab made is what the playbook expects by construction; someone's server is not. One
script, run as the login user (so that a missing sudo shows), reports what the host is; every
way it falls short is named at once, with what to do, and `xenlab up` stops before Ansible runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab import releases
from lab.checks.facts import xen_hvm
from lab.config import LabConfig
from lab.errors import die
from lab.remote import Remote, ShellScript

# "$1": the NIC the lab bridge is to take over. One "key value..." line per finding.
_INSPECT = ShellScript(r"""
nic=$1
. /etc/os-release 2>/dev/null; echo "os ${ID:-unknown} ${VERSION_ID:-unknown}"
if sudo -n true 2>/dev/null; then echo "sudo yes"; else echo "sudo no"; fi
echo "hypervisor $(cat /sys/hypervisor/type 2>/dev/null)"
# Under Xen, only Xen says (xl is in /usr/sbin, on sudo's path, not on a login user's).
if [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ]; then
  hvm=$(""" + xen_hvm("sudo -n xl") + r""")
  case $hvm in hvm) echo "virt xen" ;; none) echo "virt none" ;; *) echo "virt unknown" ;; esac
elif grep -qwE 'vmx|svm' /proc/cpuinfo; then echo "virt cpu"; else echo "virt none"; fi
if [ -e "/sys/class/net/$nic" ]; then echo "nic yes"; else echo "nic no"; fi
echo "nics $(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
# The interface this SSH connection came in on: bridging it would cut xenlab off mid-run.
set -- $SSH_CONNECTION
[ -n "$3" ] && echo "via $(ip -o addr show to "$3" 2>/dev/null | awk '{ print $2; exit }')"
exit 0
""", name="xenlab-admission")


@dataclass(frozen=True)
class Host:
    """What the inspection found."""

    os: str
    sudo: bool
    xen: bool  # running as Xen dom0
    virt: bool  # HVM containers possible: what PVH guests need
    nic: bool
    nics: tuple[str, ...]
    via: str  # the interface SSH arrives on

    @classmethod
    def parse(cls, out: str) -> Host:
        found = {}
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            found[key] = value.strip()
        return cls(found.get("os", "unknown"), found.get("sudo") == "yes",
                   found.get("hypervisor") == "xen", found.get("virt", "none") != "none",
                   found.get("nic") == "yes", tuple(found.get("nics", "").split()), found.get("via", ""))


def problems(host: Host, config: LabConfig, allow_reboot: bool, reboot: bool = True) -> list[tuple[str, str]]:
    """(what is wrong, what to do) for each way host cannot become this lab's host.
    reboot: whether this run would reboot into Xen (not with --skip-tags xen_reboot)."""
    found = []
    if releases.by_os(host.os) is None:
        found.append((f"it runs {host.os}, not {releases.supported()}: the roles install the Xen "
                      "those releases maintain", f"use a {releases.supported()} host"))
    if not host.sudo:
        found.append((f"{config.ssh_user} cannot sudo without a password",
                      f"on the host: echo '{config.ssh_user} ALL=(ALL) NOPASSWD: ALL' | "
                      f"sudo tee /etc/sudoers.d/{config.ssh_user}"))
    if config.pvh and not host.virt:
        found.append(("no CPU virtualisation (VT-x/AMD-V) for PVH guests (MirageOS 4)",
                      "enable it in the firmware, or set `pvh = false` for PV guests only"))
    if not host.nic:
        found.append((f"no NIC named {config.uplink_interface} (it has: {', '.join(host.nics)})",
                      "set uplink_interface to the NIC the lab bridge is to take over"))
    elif host.via and host.via == config.uplink_interface:
        found.append((f"SSH reaches the host through {config.uplink_interface}: bridging it would "
                      "cut the connection", "give the lab a NIC of its own as uplink_interface"))
    if reboot and not host.xen and not allow_reboot:
        found.append(("it is not running Xen: becoming a lab host means installing Xen and "
                      "rebooting into it", "rerun with `xenlab up --allow-reboot` when a reboot "
                      "of this host is fine"))
    return found


def admit(remote: Remote, config: LabConfig, allow_reboot: bool, reboot: bool = True) -> Host:
    """The host, if it may become this lab's host; otherwise stop, naming every reason."""
    out = remote.run(_INSPECT(config.uplink_interface), what="inspecting the host").out
    host = Host.parse(out)
    found = problems(host, config, allow_reboot, reboot)
    if found:
        where = f"{config.ssh_host}:{config.ssh_port}"
        reasons = "; ".join(what for what, _ in found)
        die(f"{where} cannot become a lab host (nothing on it was changed): {reasons}",
            hint="; ".join(todo for _, todo in found))
    return host
