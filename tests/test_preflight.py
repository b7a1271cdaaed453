"""Preflight logic against FIXTURES: recorded-format VBoxManage outputs and networks.conf files
(tests/fixtures/vbox/), because VirtualBox itself cannot run on these machines."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lab.config import LabConfig
from lab.errors import LabError
from lab.providers import virtualbox_preflight as preflight

FIX = Path(__file__).parent / "fixtures" / "vbox"
LAB = ipaddress.IPv4Network("192.168.77.0/24")


def fixture(name: str) -> str:
    return (FIX / name).read_text()


def test_versions_decide_whether_networks_conf_matters() -> None:
    assert preflight.vbox_restricts_networks(preflight.parse_version(fixture("vboxmanage-version-7.0.txt")))
    assert not preflight.vbox_restricts_networks(
        preflight.parse_version(fixture("vboxmanage-version-6.1.26.txt")))


@pytest.mark.parametrize("conf,ok", [
    ("networks-lab.conf", True), ("networks-wide.conf", True), ("networks-other.conf", False),
    (None, False),
])
def test_networks_conf(conf: str | None, ok: bool) -> None:
    text = fixture(conf) if conf else None
    if ok:
        preflight.check_networks_conf(LAB, text)
        return
    with pytest.raises(LabError) as err:
        preflight.check_networks_conf(LAB, text)
    assert err.value.hint and "* 192.168.77.0/24" in err.value.hint


def test_vbox_dhcp_server_on_the_lab_network_is_refused_with_the_command_to_fix_it() -> None:
    servers = preflight.parse_dhcpservers(fixture("dhcpservers-lab-enabled.txt"))
    assert [(s.network, s.enabled) for s in servers] == [
        ("HostInterfaceNetworking-vboxnet0", False), ("HostInterfaceNetworking-vboxnet1", True)]
    with pytest.raises(LabError) as err:
        preflight.check_vbox_dhcp(LAB, servers)
    assert err.value.hint == ("VBoxManage dhcpserver modify --netname "
                              "HostInterfaceNetworking-vboxnet1 --disable")


@pytest.mark.parametrize("name", ["dhcpservers-lab-disabled.txt", "dhcpservers-none.txt"])
def test_disabled_or_absent_dhcp_servers_pass(name: str) -> None:
    preflight.check_vbox_dhcp(LAB, preflight.parse_dhcpservers(fixture(name)))


def test_memory() -> None:
    available = preflight.parse_meminfo_available_mb(fixture("meminfo.txt"))
    assert available == 1800
    with pytest.raises(LabError, match="needs 2048 MiB"):
        preflight.check_memory(LabConfig(), available)
    preflight.check_memory(LabConfig(vm_memory=1024, dom0_memory=512), available)


def test_missing_vboxmanage_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabError) as err:
        preflight.virtualbox(LabConfig())
    assert err.value.hint
