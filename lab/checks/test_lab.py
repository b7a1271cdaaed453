"""`xenlab check`: the lab host and every deployed guest, as testinfra tests.

Run by `xenlab check` with pytest's testinfra plugin (--hosts=ssh://xenlab --ssh-config=...);
the lab's settings and deployed domains arrive as JSON in XENLAB_CHECK.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from lab.checks import host as checks

SETTINGS: dict[str, Any] = json.loads(os.environ.get("XENLAB_CHECK", "{}"))
DOMAINS: dict[str, dict[str, Any]] = SETTINGS.get("domains", {})
BRIDGE = SETTINGS.get("bridge", "br0")


def uplink(host: Any) -> str:
    ports = [p for p in host.check_output(f"ls /sys/class/net/{BRIDGE}/brif").split()
             if not p.startswith("vif")]
    assert ports, f"{BRIDGE} has no host-only NIC as a port"
    return str(ports[0])


def test_xen_dom0(host: Any) -> None:
    checks.xen_dom0(host, int(SETTINGS.get("dom0_memory", 768)))


def test_unikernel_cpu(host: Any) -> None:
    checks.unikernel_cpu(host)


def test_bridge(host: Any) -> None:
    checks.bridge(host, BRIDGE, SETTINGS.get("lab_address", "192.168.77.2/24"), uplink(host))


def test_promiscuous_nic(host: Any) -> None:
    checks.promiscuous(host, uplink(host))


def test_dnsmasq_on_the_bridge_only(host: Any) -> None:
    checks.dnsmasq_on_bridge_only(host, BRIDGE, SETTINGS.get("dhcp_range", "192.168.77.3,192.168.77.200"))


def test_forwarding_and_nat(host: Any) -> None:
    if not SETTINGS.get("nat", True):
        pytest.skip("nat = false in the lab's settings")
    outbound = host.check_output("ip -o route show default").split(" dev ")[1].split()[0]
    checks.forwarding_and_nat(host, SETTINGS.get("subnet", "192.168.77.0/24"), outbound)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_guest_running_and_leased(host: Any, name: str) -> None:
    assert host.run(f"xl domid {name}").rc == 0, f"{name} is not running (xl list): redeploy it"
    if DOMAINS[name].get("address", "dhcp") != "dhcp":
        return  # a static address or no network: no lease to hold
    mac = DOMAINS[name]["mac"]
    leases = host.check_output("cat /var/lib/misc/dnsmasq.leases")
    assert mac in leases, \
        f"{name} ({mac}) holds no lease: is its vif on {BRIDGE}? see `xenlab console --log {name}`"


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_guest_reachable_from_the_users_side(name: str) -> None:
    d = DOMAINS[name]
    if d.get("address") == "none":
        pytest.skip(f"{name} has no network")
    ip, netns = d.get("ip"), SETTINGS.get("netns", "")
    assert ip, f"{name} has no recorded IP: deploy it again"
    ping = checks.from_user_side(["ping", "-c", "2", "-W", "2", ip], netns)
    assert ping.returncode == 0, f"{name} ({ip}) does not answer ping: host-only NIC promiscuous? route?"
    probe = d.get("probe")
    if probe:
        kind, _, rest = probe.partition(":")
        port, _, path = rest.partition("/")
        if kind == "tcp":
            argv = ["bash", "-c", f"exec 3<>/dev/tcp/{ip}/{int(port)}"]
        else:
            argv = ["curl", "-s", "-o", "/dev/null", "-m", "10", f"http://{ip}:{int(port)}/{path}"]
        r = checks.from_user_side(argv, netns)
        assert r.returncode == 0, f"{name} ({ip}) does not answer its probe {probe}"
