"""The provisioning playbook, run for real: Ansible over real SSH into a real Debian bookworm host
(namespaces + debootstrap, see labhost.py), then checked with testinfra and a real DHCP client.

Only the Xen reboot is skipped (tag xen_reboot): rebooting needs a VM, and that part is proven
with the QEMU provider.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.config import LabConfig
from lab.errors import LabError
from lab.playbook import Outcome, ProviderFacts, provision
from lab.ssh import SshFiles, SshTarget, connect, write_files

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and chroot need root"),
    pytest.mark.skipif(not shutil.which("debootstrap") or not shutil.which("socat"),
                       reason="needs debootstrap and socat (./install.sh)"),
]

SKIP = ("xen_reboot",)


@dataclass
class Provisioned:
    host: object  # LabHost
    state: Path
    ssh: SshFiles
    target: SshTarget
    first: Outcome
    second: Outcome
    first_s: float
    second_s: float


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    from integration.labhost import UPLINK_MAC, USER, LabHost

    work = tmp_path_factory.mktemp("labhost")
    host = LabHost(work).start()
    try:
        state = work / "state"
        state.mkdir()
        target = SshTarget("127.0.0.1", host.port, USER, host.key, host.host_key)
        ssh = SshFiles.in_dir(state)
        write_files(target, ssh)
        facts = ProviderFacts(uplink_mac=UPLINK_MAC)
        t0 = time.monotonic()
        first = provision(state, ssh, LabConfig(), facts, skip_tags=SKIP)
        t1 = time.monotonic()
        second = provision(state, ssh, LabConfig(), facts, skip_tags=SKIP)
        t2 = time.monotonic()
        timings = {"first_run_s": round(t1 - t0, 1), "second_run_s": round(t2 - t1, 1)}
        print(f"\nprovisioning timings: {json.dumps(timings)}")
        yield Provisioned(host, state, ssh, target, first, second, t1 - t0, t2 - t1)
    finally:
        host.close()


@pytest.fixture(scope="module")
def remote(lab: Provisioned):  # type: ignore[no-untyped-def]
    import testinfra

    # testinfra's ssh backend runs OpenSSH with xenlab's ssh-config: the pinned key is enforced.
    return testinfra.get_host("ssh://xenlab", ssh_config=str(lab.ssh.config), sudo=True)


def test_first_run_converges(lab: Provisioned) -> None:
    assert lab.first.failed == 0 and lab.first.unreachable == 0
    assert lab.first.changed > 0


def test_second_run_changes_nothing(lab: Provisioned) -> None:
    assert lab.second.changed == 0, lab.second.changed_tasks
    assert lab.second.failed == 0


def test_bridge_holds_the_lab_address_over_the_host_only_nic(remote) -> None:  # type: ignore[no-untyped-def]
    assert "192.168.77.2" in remote.interface("br0").addresses
    out = remote.check_output("ip -o -4 addr show dev br0")
    assert "192.168.77.2/24" in out
    assert remote.file("/sys/class/net/br0/brif/eth1").exists
    assert remote.file("/sys/class/net/br0/bridge/stp_state").content_string.strip() == "0"
    assert remote.file("/sys/class/net/br0/bridge/forward_delay").content_string.strip() == "0"
    assert remote.file("/sys/class/net/br0/bridge/ageing_time").content_string.strip() == "0"


def test_host_only_nic_is_promiscuous(remote) -> None:  # type: ignore[no-untyped-def]
    flags = int(remote.file("/sys/class/net/eth1/flags").content_string.strip(), 16)
    assert flags & 0x100, "IFF_PROMISC not set on eth1"
    assert "promisc on" in remote.file("/etc/network/interfaces.d/xenlab-br0").content_string


def test_dnsmasq_serves_dhcp_on_br0_only(remote) -> None:  # type: ignore[no-untyped-def]
    sockets = [line for line in remote.check_output("ss -H -ulpn").splitlines() if "dnsmasq" in line]
    assert sockets, "dnsmasq has no UDP socket"
    assert all("%br0:67" in line for line in sockets), sockets
    assert not remote.check_output("ss -H -tlpn | grep dnsmasq || true").strip()  # no DNS
    conf = remote.file("/etc/dnsmasq.d/xenlab.conf")
    assert conf.mode == 0o644 and "dhcp-range=192.168.77.3,192.168.77.200" in conf.content_string


def test_forwarding_and_nat(remote) -> None:  # type: ignore[no-untyped-def]
    assert remote.sysctl("net.ipv4.ip_forward") == 1
    assert remote.file("/etc/sysctl.d/60-xenlab-forwarding.conf").contains("net.ipv4.ip_forward = 1")
    table = remote.check_output("nft list table ip xenlab")
    assert 'ip saddr 192.168.77.0/24 oifname "eth0" masquerade' in table


def test_xl_is_configured_for_the_lab(remote) -> None:  # type: ignore[no-untyped-def]
    xl = remote.file("/etc/xen/xl.conf").content_string
    assert 'autoballoon="off"' in xl and 'vif.default.bridge="br0"' in xl
    assert remote.package("xen-system-amd64").is_installed


def test_user_side_gets_a_lease_in_the_range(lab: Provisioned) -> None:
    host = lab.host
    script = host.workdir / "udhcpc.script"  # type: ignore[attr-defined]
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip $router"\nexit 0\n')
    script.chmod(0o755)
    r = host.in_user_ns("busybox", "udhcpc", "-i", "vboxnet0", "-n", "-q", "-f", "-t", "5",  # type: ignore[attr-defined]
                        "-T", "2", "-s", str(script), timeout=60)
    leases = [line.split() for line in r.stdout.splitlines() if line.startswith("LEASE")]
    assert leases, r.stdout + r.stderr
    ip, router = leases[0][1], leases[0][2]
    last = int(ip.rsplit(".", 1)[1])
    assert ip.startswith("192.168.77.") and 3 <= last <= 200
    assert router == "192.168.77.2"


def test_guest_traffic_is_forwarded_and_masqueraded(lab: Provisioned) -> None:
    host = lab.host
    # From the user's side, route to the NAT network through the lab host. The wan side has no
    # route back to 192.168.77.0/24, so a reply proves the masquerade, not just forwarding.
    host.in_user_ns("ip", "route", "replace", "10.0.2.0/24", "via", "192.168.77.2")  # type: ignore[attr-defined]
    r = host.in_user_ns("ping", "-c", "2", "-W", "2", "10.0.2.2", check=False)  # type: ignore[attr-defined]
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_different_host_key_is_refused(lab: Provisioned, tmp_path: Path) -> None:
    forged = SshFiles(tmp_path / "ssh_config", tmp_path / "known_hosts")
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    forged.known_hosts.write_text(f"{lab.target.known_hosts_name} {other}\n")
    with pytest.raises(LabError, match="different SSH host key"):
        connect(forged, lab.target)
    # And the pinned one is accepted.
    client = connect(lab.ssh, lab.target)
    try:
        _, out, _ = client.exec_command("cat /etc/hostname")
        assert out.read().decode().strip() == "xenlab-test"
    finally:
        client.close()
