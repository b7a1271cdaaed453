"""Checks of a provisioned lab host, shared by the namespace-host tier and the QEMU tier."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def bridge(remote: Any, uplink: str = "eth1") -> None:
    assert "192.168.77.2" in remote.interface("br0").addresses
    assert "192.168.77.2/24" in remote.check_output("ip -o -4 addr show dev br0")
    assert remote.file(f"/sys/class/net/br0/brif/{uplink}").exists
    for knob in ("stp_state", "forward_delay", "ageing_time"):
        assert remote.file(f"/sys/class/net/br0/bridge/{knob}").content_string.strip() == "0", knob


def promiscuous(remote: Any, uplink: str = "eth1") -> None:
    flags = int(remote.file(f"/sys/class/net/{uplink}/flags").content_string.strip(), 16)
    assert flags & 0x100, f"IFF_PROMISC not set on {uplink}"


def dnsmasq_on_br0_only(remote: Any) -> None:
    sockets = [line for line in remote.check_output("ss -H -ulpn").splitlines() if "dnsmasq" in line]
    assert sockets, "dnsmasq has no UDP socket"
    assert all("%br0:67" in line for line in sockets), sockets
    assert "dnsmasq" not in remote.check_output("ss -H -tlpn")  # no DNS
    conf = remote.file("/etc/dnsmasq.d/xenlab.conf")
    assert conf.mode == 0o644 and "dhcp-range=192.168.77.3,192.168.77.200" in conf.content_string


def forwarding_and_nat(remote: Any, outbound: str = "eth0") -> None:
    assert remote.sysctl("net.ipv4.ip_forward") == 1
    assert remote.file("/etc/sysctl.d/60-xenlab-forwarding.conf").contains("net.ipv4.ip_forward = 1")
    table = remote.check_output("nft list table ip xenlab")
    assert f'ip saddr 192.168.77.0/24 oifname "{outbound}" masquerade' in table


def lease_from_user_side(netns: str, interface: str, workdir: Path) -> tuple[str, str]:
    """A real DHCP exchange from the user's side; returns (ip, router) without configuring."""
    script = workdir / "udhcpc.script"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip $router"\nexit 0\n')
    script.chmod(0o755)
    r = subprocess.run(["ip", "netns", "exec", netns, "busybox", "udhcpc", "-i", interface, "-n",
                        "-q", "-f", "-t", "10", "-T", "3", "-s", str(script)],
                       capture_output=True, text=True, timeout=120)
    leases = [line.split() for line in r.stdout.splitlines() if line.startswith("LEASE")]
    assert leases, r.stdout + r.stderr
    ip, router = leases[0][1], leases[0][2]
    assert ip.startswith("192.168.77.") and 3 <= int(ip.rsplit(".", 1)[1]) <= 200, ip
    return ip, router
