"""Checks before anything slow starts, each failing with the exact fix.

The parsing functions take the tools' text output, so tests can feed them recorded outputs; the
`gather_*` functions run the real tools.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from lab import run
from lab.config import LabConfig
from lab.errors import die

NETWORKS_CONF = Path("/etc/vbox/networks.conf")
# VirtualBox >= 6.1.28 restricts host-only networks to this range unless networks.conf says more.
VBOX_DEFAULT_ALLOWED = ipaddress.IPv4Network("192.168.56.0/21")
HOST_MEMORY_MARGIN_MB = 512


def parse_version(text: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        return ()
    return tuple(int(x) for x in m.groups())


def vbox_restricts_networks(version: tuple[int, ...]) -> bool:
    return version >= (6, 1, 28)


def allowed_networks(networks_conf: str | None) -> list[ipaddress.IPv4Network]:
    """Networks VirtualBox allows for host-only adapters, from /etc/vbox/networks.conf text."""
    if networks_conf is None:
        return [VBOX_DEFAULT_ALLOWED]
    out = []
    for line in networks_conf.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("*"):
            continue
        for word in line[1:].split():
            try:
                out.append(ipaddress.IPv4Network(word, strict=False))
            except ValueError:
                continue
    return out


def check_networks_conf(subnet: ipaddress.IPv4Network, networks_conf: str | None) -> None:
    if any(subnet.subnet_of(n) for n in allowed_networks(networks_conf)):
        return
    die(f"VirtualBox does not allow the host-only network {subnet} ({NETWORKS_CONF})",
        hint=f"add the line `* {subnet}` to {NETWORKS_CONF} (as root), then run `xenlab up` again")


@dataclass(frozen=True)
class DhcpServer:
    network: str
    ip: str
    lower: str
    upper: str
    enabled: bool


def parse_dhcpservers(text: str) -> list[DhcpServer]:
    """`VBoxManage list dhcpservers` output (blocks of `Key: value`, blank-line separated)."""
    servers = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
        if "networkname" not in fields:
            continue
        servers.append(DhcpServer(
            fields["networkname"],
            fields.get("dhcpd ip", fields.get("ip", "")),
            fields.get("loweripaddress", fields.get("lowerip", "")),
            fields.get("upperipaddress", fields.get("upperip", "")),
            fields.get("enabled", "").lower() in ("yes", "true", "1"),
        ))
    return servers


def check_vbox_dhcp(subnet: ipaddress.IPv4Network, servers: list[DhcpServer]) -> None:
    for s in servers:
        if not s.enabled:
            continue
        try:
            inside = ipaddress.IPv4Address(s.ip) in subnet or ipaddress.IPv4Address(s.lower) in subnet
        except ValueError:
            continue
        if inside:
            die(f"VirtualBox's own DHCP server is on for {s.network} ({s.ip}); it fights the lab's "
                "dnsmasq for the guests",
                hint=f"VBoxManage dhcpserver modify --netname {s.network} --disable")


def parse_meminfo_available_mb(text: str) -> int | None:
    m = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) // 1024 if m else None


def check_memory(config: LabConfig, available_mb: int | None) -> None:
    if available_mb is None:
        return
    need = config.vm_memory + HOST_MEMORY_MARGIN_MB
    if available_mb < need:
        die(f"the lab VM needs {config.vm_memory} MiB and this machine has {available_mb} MiB available",
            hint=f"free memory, or lower vm_memory in xenlab.toml (dom0 takes {config.dom0_memory})")


def gather_available_memory() -> int | None:
    try:
        return parse_meminfo_available_mb(Path("/proc/meminfo").read_text())
    except OSError:
        return None


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        die(f"{name} is not installed", hint=hint)
    return path


def virtualbox(config: LabConfig) -> dict[str, str]:
    """Everything the VirtualBox provider needs, checked; returns the versions found."""
    require_tool("vagrant", "install Vagrant: https://developer.hashicorp.com/vagrant/install "
                            "(Debian: apt-get install vagrant)")
    vboxmanage = require_tool("VBoxManage", "install VirtualBox, or use `--provider qemu`")
    vagrant_version = run.run(["vagrant", "--version"], what="vagrant --version").stdout.strip()
    vbox_version = run.run([vboxmanage, "--version"], what="VBoxManage --version").stdout.strip()
    subnet = config.network()
    if vbox_restricts_networks(parse_version(vbox_version)):
        conf = NETWORKS_CONF.read_text() if NETWORKS_CONF.exists() else None
        check_networks_conf(subnet, conf)
    servers = run.run([vboxmanage, "list", "dhcpservers"], what="VBoxManage list dhcpservers").stdout
    check_vbox_dhcp(subnet, parse_dhcpservers(servers))
    check_memory(config, gather_available_memory())
    return {"vagrant": vagrant_version, "virtualbox": vbox_version}
