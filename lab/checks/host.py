"""Checks of a provisioned lab host, each failing with the likely cause. `remote` is a testinfra
host reached over xenlab's ssh-config (so the pinned host key is enforced)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def xen_dom0(remote: Any, dom0_memory: int) -> None:
    kind = remote.file("/sys/hypervisor/type")
    assert kind.exists and kind.content_string.strip() == "xen", \
        "not running on Xen: the last reboot did not boot the Xen GRUB entry (`xenlab up` reboots)"
    line = [x for x in remote.check_output("xl list").splitlines() if x.startswith("Domain-0")]
    assert line, "xl list shows no Domain-0: the Xen toolstack is not running"
    mb = int(line[0].split()[2])
    assert dom0_memory - 16 <= mb <= dom0_memory, \
        f"dom0 has {mb} MiB, not {dom0_memory}: dom0_mem not applied"


# What today's unikernels need from the CPU, as Linux's /proc/cpuinfo spells it: x86-64-v2
# (SSSE3, SSE4.1/4.2, POPCNT) plus AES-NI and PCLMULQDQ, which mirage-crypto and nocrypto use; a
# MirageOS 3 web server traps at boot without AES-NI (aeskeygenassist: invalid operand).
UNIKERNEL_CPU_FLAGS = ("ssse3", "sse4_1", "sse4_2", "popcnt", "aes", "pclmulqdq")


def unikernel_cpu(remote: Any) -> None:
    flags = remote.check_output("grep -m1 ^flags /proc/cpuinfo").partition(":")[2].split()
    missing = [f for f in UNIKERNEL_CPU_FLAGS if f not in flags]
    assert not missing, (f"the lab's CPU lacks {' '.join(missing)}: unikernels using AES-NI crypto "
                         "trap at boot (QEMU: a CPU model with them; VirtualBox: a host CPU with them)")
    caps = [line.partition(":")[2].split() for line in remote.check_output("xl info").splitlines()
            if line.startswith("virt_caps")]
    assert caps and "hvm" in caps[0], \
        ("Xen offers no hvm in virt_caps: PVH guests (MirageOS 4) cannot start; the lab VM needs "
         "nested hardware virtualisation (VirtualBox --nested-hw-virt on, QEMU +svm or -cpu host)")


def bridge(remote: Any, name: str = "br0", address: str = "192.168.77.2/24", uplink: str = "eth1") -> None:
    assert address in remote.check_output(f"ip -o -4 addr show dev {name}"), \
        f"{name} lacks {address}: the bridge did not come up (ifup {name} on the lab host)"
    assert remote.file(f"/sys/class/net/{name}/brif/{uplink}").exists, \
        f"{uplink} is not a port of {name}: guests cannot reach the host-only network"
    for knob in ("stp_state", "forward_delay", "ageing_time"):
        value = remote.file(f"/sys/class/net/{name}/bridge/{knob}").content_string.strip()
        assert value == "0", f"{name} {knob} is {value}, not 0"


def promiscuous(remote: Any, uplink: str = "eth1") -> None:
    # Not sysfs: a bridge port always shows IFF_PROMISC there. `ip` shows the NIC's own flag.
    flags = remote.check_output(f"ip -o link show dev {uplink}").split("<", 1)[1].split(">", 1)[0]
    assert "PROMISC" in flags.split(","), \
        f"{uplink} is not promiscuous: ARP will work and nothing else will"


def dnsmasq_on_bridge_only(remote: Any, name: str = "br0",
                           dhcp_range: str = "192.168.77.3,192.168.77.200") -> None:
    sockets = [s for s in remote.check_output("ss -H -ulpn").splitlines() if "dnsmasq" in s]
    assert sockets, "dnsmasq is not running: guests get no address (systemctl status dnsmasq)"
    assert all(f"%{name}:67" in s for s in sockets), f"dnsmasq listens beyond {name}: {sockets}"
    assert "dnsmasq" not in remote.check_output("ss -H -tlpn"), "dnsmasq serves DNS too"
    conf = remote.file("/etc/dnsmasq.d/xenlab.conf")
    assert conf.mode == 0o644 and f"dhcp-range={dhcp_range}" in conf.content_string


def forwarding_and_nat(remote: Any, subnet: str = "192.168.77.0/24", outbound: str = "eth0") -> None:
    assert remote.sysctl("net.ipv4.ip_forward") == 1, "IP forwarding is off: guests cannot get out"
    assert remote.file("/etc/sysctl.d/60-xenlab-forwarding.conf").contains("net.ipv4.ip_forward = 1")
    table = remote.check_output("nft list table ip xenlab || true")
    assert f'ip saddr {subnet} oifname "{outbound}" masquerade' in table, "the NAT rule is missing"


def from_user_side(argv: list[str], netns: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run argv on the user's side of the host-only network (this machine, or its netns)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)


def lease_from_user_side(netns: str, interface: str, workdir: Path) -> tuple[str, str]:
    """A real DHCP exchange from the user's side; returns (ip, router) without configuring."""
    script = workdir / "udhcpc.script"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip $router"\nexit 0\n')
    script.chmod(0o755)
    r = from_user_side(["busybox", "udhcpc", "-i", interface, "-n", "-q", "-f", "-t", "10", "-T", "3",
                        "-s", str(script)], netns, timeout=120)
    leases = [line.split() for line in r.stdout.splitlines() if line.startswith("LEASE")]
    assert leases, f"no DHCP answer on {interface}: {r.stdout} {r.stderr}"
    ip, router = leases[0][1], leases[0][2]
    assert ip.startswith("192.168.77.") and 3 <= int(ip.rsplit(".", 1)[1]) <= 200, ip
    return ip, router
