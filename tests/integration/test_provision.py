"""The provisioning playbook, run for real: Ansible over real SSH into a real Debian bookworm host
(namespaces + debootstrap, see labhost.py), then checked with testinfra and a real DHCP client.

Only the Xen reboot is skipped (tag xen_reboot): rebooting needs a VM, and that part is proven
with the QEMU provider.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import XENLAB, xenlab

from lab import lab_host
from lab.checks import host as hostchecks
from lab.config import LabConfig
from lab.errors import LabError
from lab.playbook import Outcome, provision
from lab.providers import ProviderFacts
from lab.releases import RELEASES
from lab.remote import Remote
from lab.ssh import SshFiles, SshTarget, connect, write_files
from lab.state import LabState

if TYPE_CHECKING:
    from integration.labhost import LabHost

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and chroot need root"),
    pytest.mark.skipif(not shutil.which("debootstrap") or not shutil.which("socat"),
                       reason="needs debootstrap and socat (./install.sh)"),
]

SKIP = ("xen_reboot",)


@dataclass
class Provisioned:
    host: LabHost
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
        # The state a deploy finds there: each deploy test also runs alone (-k).
        LabState(ssh={"host": target.host, "port": target.port, "user": target.user,
                      "identity": str(target.identity)}).save(state)
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
    hostchecks.holds(remote, "bridge")


def test_host_only_nic_is_promiscuous(remote) -> None:  # type: ignore[no-untyped-def]
    hostchecks.holds(remote, "promiscuous")
    assert "promisc on" in remote.file("/etc/network/interfaces.d/xenlab-br0").content_string


def test_dnsmasq_serves_dhcp_on_br0_only(remote) -> None:  # type: ignore[no-untyped-def]
    hostchecks.holds(remote, "dnsmasq")


def test_forwarding_and_nat(remote) -> None:  # type: ignore[no-untyped-def]
    hostchecks.holds(remote, "forwarding")
    hostchecks.holds(remote, "nat")


def test_xl_is_configured_for_the_lab(remote) -> None:  # type: ignore[no-untyped-def]
    xl = remote.file("/etc/xen/xl.conf").content_string
    assert 'autoballoon="off"' in xl and 'vif.default.bridge="br0"' in xl
    assert remote.package("xen-system-amd64").is_installed
    # HAP, Xen's default: no hap=0 on the command line the role keeps for the converged probe.
    assert remote.file(lab_host.XEN_CMDLINE_FILE).content_string.strip() == "dom0_mem=768M,max:768M"


def test_user_side_gets_a_lease_in_the_range(lab: Provisioned) -> None:
    host = lab.host
    _, router = hostchecks.lease_from_user_side(host.ns_user, "vboxnet0", host.workdir)  # type: ignore[attr-defined]
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


def _cut_connection_after(remote: object, seconds: float) -> threading.Timer:
    transport = remote.client.get_transport()  # type: ignore[attr-defined]
    timer = threading.Timer(seconds, lambda: transport.sock.shutdown(socket.SHUT_RDWR))
    timer.start()
    return timer


def test_a_safe_command_runs_again_when_the_connection_dies_under_it(lab: Provisioned) -> None:

    remote = Remote(lab.ssh, lab.target)
    try:
        _cut_connection_after(remote, 1.0)
        r = remote.run(["sh", "-c", "sleep 2; echo done"])
        assert (r.rc, r.out) == (0, "done\n")
    finally:
        remote.close()


def test_an_unsafe_command_is_not_repeated_when_the_connection_dies(lab: Provisioned, tmp_path: Path) -> None:

    count = f"/tmp/xenlab-count-{tmp_path.name}"
    remote = Remote(lab.ssh, lab.target)
    try:
        _cut_connection_after(remote, 1.0)
        with pytest.raises(LabError, match="lost the SSH connection to the lab host while running sh"):
            remote.run(["sh", "-c", f"echo ran >> {count}; sleep 2"], idempotent=False)
        # and the next command gets a fresh connection
        assert remote.run(["cat", count]).out == "ran\n"
    finally:
        remote.close()


def test_an_upload_cut_by_a_dying_connection_is_sent_again_whole(lab: Provisioned, tmp_path: Path) -> None:
    from lab.remote import sha256_file

    big = tmp_path / "big.img"
    big.write_bytes(os.urandom(4 << 20))
    target = f"/tmp/xenlab-upload-{tmp_path.name}"
    remote = Remote(lab.ssh, lab.target)
    cut: list[int] = []

    def progress(done: int, total: int) -> None:
        if not cut:  # the first chunk is on its way: the connection dies under the transfer
            cut.append(done)
            remote.client.get_transport().sock.shutdown(socket.SHUT_RDWR)

    try:
        assert remote.put(big, target, progress) == big.stat().st_size
        assert cut and cut[0] < big.stat().st_size
        assert remote.sha256(target) == sha256_file(big)
        assert remote.run(["sh", "-c", f"ls {target}.partial-* 2>/dev/null | wc -l"]).out.strip() == "0"
    finally:
        remote.close()


def test_a_deploy_interrupted_mid_upload_leaves_no_file_a_rerun_trusts(lab: Provisioned,
                                                                       tmp_path: Path) -> None:
    """`xenlab deploy` over real SSH, Ctrl-C while the kernel is on its way, then the same deploy
    again. This host has no Xen, so the rerun ends at `xl create`: after the whole upload."""
    from lab.remote import sha256_file

    work = tmp_path / "work"
    work.mkdir()
    (work / ".xenlab").symlink_to(lab.state)
    name = f"big{tmp_path.name[-6:].replace('_', '')}".lower()
    kernel = work / "big.xen"
    kernel.write_bytes(os.urandom(256 << 20))
    (work / "big.xl").write_text(f"name = '{name}'\ntype = 'pv'\nkernel = 'big.xen'\nmemory = 64\n"
                                 "vif = [ 'bridge=br0' ]\n")
    uploaded = f"{lab_host.DOMAINS_DIR}/{name}/big.xen"
    env = {**os.environ, "NO_COLOR": "1"}
    remote = Remote(lab.ssh, lab.target)
    try:
        proc = subprocess.Popen([*XENLAB, "deploy", "big.xl"], cwd=work, env=env,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            if "upload" in line:
                break
        deadline = time.monotonic() + 60
        partial = ""
        while time.monotonic() < deadline and not partial:  # wait until bytes are arriving
            partial = remote.run(["sh", "-c", f"find {uploaded}.partial-* -size +1M 2>/dev/null"],
                                 check=False).out.strip()
        assert partial, "the upload never started"
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=90)  # a hang here was a real bug: no wait without end
        assert proc.returncode == 130 and "Traceback" not in rest, rest
        assert remote.run(["test", "-e", uploaded], check=False).rc == 1  # nothing under the real name
        assert not remote.run(["find", str(Path(uploaded).parent), "-name", "*.partial-*"]).out

        again = subprocess.run([*XENLAB, "deploy", "big.xl"], cwd=work, env=env, capture_output=True,
                               text=True, timeout=600)
        assert again.returncode == 1 and f"xl create {name} failed" in again.stderr, again.stderr
        assert remote.sha256(uploaded) == sha256_file(kernel)
    finally:
        remote.close()


def test_uploads_show_a_progress_bar_on_a_terminal(lab: Provisioned, tmp_path: Path) -> None:
    """On a terminal the upload is a live bar with bytes and speed (NO_COLOR takes the colour, not
    the bar); the log line follows it."""
    import pty

    (tmp_path / ".xenlab").symlink_to(lab.state)
    (tmp_path / "bar.xen").write_bytes(os.urandom(64 << 20))
    (tmp_path / "bar.xl").write_text("name = 'bar'\ntype = 'pv'\nkernel = 'bar.xen'\nmemory = 64\n")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*XENLAB, "deploy", "bar.xl"], cwd=tmp_path, stdin=follower,
                            stdout=follower, stderr=follower,
                            # A terminal that can draw (rich draws nothing live on TERM=dumb,
                            # or when TERM is unset, as under `env -i`).
                            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "xterm"})
    os.close(follower)
    screen = b""
    with contextlib.suppress(OSError):  # EIO once the last writer is gone
        while chunk := os.read(leader, 65536):
            screen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 1  # no Xen on this host: it ends at `xl create`
    text = screen.decode(errors="replace")
    assert "MB/s" in text and "/67.1 MB" in text, text  # rich's DownloadColumn: done/total
    assert "bar.xen: sent 67108864 bytes in" in text, text


def test_guest_consoles_are_logged(remote) -> None:  # type: ignore[no-untyped-def]
    # Debian's /etc/init.d/xen reads /etc/default/xen; xencommons is not read on Debian.
    assert 'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"' in \
        remote.file("/etc/default/xen").content_string
    assert remote.file("/var/log/xen/console").is_directory


def test_drift_is_named_and_the_playbook_repairs_it(lab: Provisioned, remote) -> None:  # type: ignore[no-untyped-def]
    """What lets `xenlab up` skip Ansible on a converged lab: the recorded fingerprint plus the live
    state. A NIC made non-promiscuous by hand (ARP still works, nothing else does) and forwarding
    switched off are each named, and the playbook puts them back."""
    from dataclasses import replace

    from integration.labhost import UPLINK_MAC
    from lab import converged
    from lab.playbook import lab_vars

    config, facts = LabConfig(), ProviderFacts(uplink_mac=UPLINK_MAC)
    stamp = converged.fingerprint(lab_vars(config, facts), SKIP)
    changed = "the playbook, the roles or the lab settings changed since the last provisioning"
    host = Remote(lab.ssh, lab.target)
    try:
        converged.forget(host)
        assert converged.drift(host, config, stamp, xen=False) == \
            ["no record of a complete provisioning run"]
        converged.record(host, stamp)
        assert converged.drift(host, config, stamp, xen=False) == []
        assert converged.drift(host, config, stamp, xen=True)[0] == "this host is not running as Xen dom0"
        other = converged.fingerprint(lab_vars(replace(config, lease_time="2h"), facts), SKIP)
        assert converged.drift(host, config, other, xen=False) == [changed]

        host.run(["ip", "link", "set", "dev", "eth1", "promisc", "off"], sudo=True)
        host.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], sudo=True)
        assert converged.drift(host, config, stamp, xen=False) == \
            ["eth1 is not promiscuous", "IP forwarding is off"]
        with pytest.raises(AssertionError, match="eth1 is not promiscuous"):
            hostchecks.holds(remote, "promiscuous")

        outcome = provision(lab.state, lab.ssh, config, facts, skip_tags=SKIP)
        assert {"lab_network : Make the host-only NIC promiscuous",
                "lab_forwarding : Turn IP forwarding on"} <= set(outcome.changed_tasks), outcome
        assert converged.drift(host, config, stamp, xen=False) == []
        hostchecks.holds(remote, "promiscuous")
    finally:
        with contextlib.suppress(LabError):
            host.run(["ip", "link", "set", "dev", "eth1", "promisc", "on"], sudo=True)
            host.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], sudo=True)
        host.close()


# -- provider = "ssh": the same host, taken as an existing one by a second lab directory ---------
@pytest.fixture(scope="module")
def existing(lab: Provisioned, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab directory whose lab host is this one, as an existing host: reached through the same
    forwarder, the host-only NIC named (eth1), PV only (this machine's CPU has no VT-x to nest)."""
    from integration.labhost import USER

    d = tmp_path_factory.mktemp("existing")
    (d / "xenlab.toml").write_text(
        f'provider = "ssh"\nssh_host = "127.0.0.1"\nssh_port = {lab.host.port}\n'
        f'ssh_user = "{USER}"\nssh_key = "{lab.host.key}"\nuplink_interface = "eth1"\n'
        "pvh = false\n")
    return d


def _sentinel(lab: Provisioned, value: str | None = None) -> str:
    """The converged record on the host: a refused `up` must not even clear it."""
    MARKER = lab_host.CONVERGED_MARKER

    with Remote(lab.ssh, lab.target) as host:
        if value is not None:
            host.run(["sh", "-c", 'mkdir -p "${1%/*}" && echo "$2" > "$1"', "-", MARKER, value],
                     sudo=True)
        return host.run(["cat", MARKER], sudo=True, check=False).out.strip()


def test_existing_host_is_pinned_only_once_vouched_for(lab: Provisioned, existing: Path) -> None:
    from lab.ssh import fingerprint

    seen = fingerprint(lab.host.host_key)
    r = xenlab("up", "--skip-tags", "xen_reboot", cwd=existing)
    assert r.returncode == 1 and seen in r.stderr and f"--trust-host-key {seen}" in r.stderr, r.stderr
    r = xenlab("up", "--skip-tags", "xen_reboot", "--trust-host-key", "SHA256:" + "x" * 43, cwd=existing)
    assert r.returncode == 1 and "as you vouched: nothing pinned" in r.stderr, r.stderr
    assert not (existing / ".xenlab" / "known_hosts").exists()


@pytest.mark.parametrize("case", ["not-debian-12", "pvh-without-virtualisation", "reboot-not-allowed"])
def test_existing_host_that_cannot_be_a_lab_host_is_left_untouched(lab: Provisioned, existing: Path,
                                                                   case: str) -> None:
    from lab.ssh import fingerprint

    os_release = lab.host.root / "usr" / "lib" / "os-release"
    original = os_release.read_text()
    args = ["up", "--trust-host-key", fingerprint(lab.host.host_key)]
    env = {}
    if case == "not-debian-12":
        os_release.write_text(original.replace('VERSION_ID="12"', 'VERSION_ID="11"'))
        args += ["--skip-tags", "xen_reboot"]
        expected = "it runs debian 11, not Debian 12 (bookworm) and Debian 13 (trixie)"
    elif case == "pvh-without-virtualisation":
        env = {"XENLAB_PVH": "yes"}
        args += ["--skip-tags", "xen_reboot"]
        expected = "no CPU virtualisation (VT-x/AMD-V) for PVH guests"
    else:
        expected = "it is not running Xen"
    _sentinel(lab, "sentinel")
    try:
        r = xenlab(*args, cwd=existing, env=env)
    finally:
        os_release.write_text(original)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot become a lab host (nothing on it was changed)" in r.stderr and expected in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("error:")]) == 1
    assert _sentinel(lab) == "sentinel", "a refused `up` touched the host"


def test_existing_host_up_converges_it_and_destroy_leaves_it_running(lab: Provisioned,
                                                                     existing: Path) -> None:
    from lab.ssh import fingerprint

    seen = fingerprint(lab.host.host_key)
    r = xenlab("up", "--json", "--skip-tags", "xen_reboot", "--trust-host-key", seen, cwd=existing,
               timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    first = json.loads(r.stdout)
    assert first["provider"] == "ssh" and first["disk"].startswith("existing host xenlab@127.0.0.1")
    # Another lab directory's settings (the NIC by name, not by MAC): Ansible runs, and the host,
    # already what the playbook makes, needs nothing.
    assert first["ansible"]["ran"] is True and first["ansible"]["changed"] == 0, first
    assert (existing / ".xenlab" / "known_hosts").read_text().split()[1:] == lab.host.host_key.split()
    second = json.loads(xenlab("up", "--json", "--skip-tags", "xen_reboot", cwd=existing,
                               timeout=600).stdout)
    assert second["ansible"]["ran"] is False, second
    status = json.loads(xenlab("status", "--json", cwd=existing).stdout)
    assert status["state"] == "running" and status["provider"] == "ssh", status

    assert xenlab("halt", cwd=existing).returncode == 0
    r = xenlab("destroy", cwd=existing)
    assert r.returncode == 0 and "keeps running" in r.stderr, r.stderr
    with socket.create_connection(("127.0.0.1", lab.host.port), timeout=10) as s:
        assert s.recv(4).startswith(b"SSH-"), "the existing host went down"
    with Remote(lab.ssh, lab.target) as host:
        assert host.run(["test", "-d", lab_host.CONFIG_DIR]).rc == 0  # its provisioning stays
    assert not (existing / ".xenlab" / "known_hosts").exists()  # the next `up` vouches again



def test_two_existing_hosts_at_once_and_one_of_them_down(lab: Provisioned,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """Several hosts: one `up`, one Ansible run over both (each with its own DHCP range); then,
    with the second host's sshd stopped, the first still completes and the second is named. The
    second host runs Debian 13 (the first Debian 12): each release admitted and provisioned."""
    from integration.labhost import USER, LabHost
    from lab.ssh import fingerprint

    other = LabHost(tmp_path_factory.mktemp("second"), suite="trixie").start()
    try:
        d = tmp_path_factory.mktemp("several")
        (d / "xenlab.toml").write_text(
            f'provider = "ssh"\nssh_host = "127.0.0.1"\nssh_user = "{USER}"\nuplink_interface = "eth1"\n'
            "pvh = false\n"
            f'[hosts.one]\nssh_port = {lab.host.port}\nssh_key = "{lab.host.key}"\n'
            'dhcp_start = "192.168.77.3"\ndhcp_end = "192.168.77.100"\n'
            'static_start = "192.168.77.201"\nstatic_end = "192.168.77.225"\n'
            f'[hosts.two]\nssh_port = {other.port}\nssh_key = "{other.key}"\n'
            'dhcp_start = "192.168.77.101"\ndhcp_end = "192.168.77.200"\n'
            'static_start = "192.168.77.226"\nstatic_end = "192.168.77.254"\n')
        trust = ["--trust-host-key", fingerprint(lab.host.host_key),
                 "--trust-host-key", fingerprint(other.host_key)]
        r = xenlab("up", "--json", "--skip-tags", "xen_reboot", *trust, cwd=d, timeout=1500)
        assert r.returncode == 0, r.stderr[-3000:]
        result = json.loads(r.stdout)["hosts"]
        assert result["one"]["ansible"]["ran"] and result["two"]["ansible"]["ran"], result
        assert result["two"]["ansible"]["changed"] > 0 and result["two"]["ansible"]["failed"] == 0
        # One run: one inventory, each host with its own variables; each host got its own range.
        inventory = json.loads((d / ".xenlab" / "inventory.json").read_text())["xenlab"]["hosts"]
        assert {name: v["lab_dhcp_range_start"] for name, v in inventory.items()} == {
            "one": "192.168.77.3", "two": "192.168.77.101"}
        for name, port, key, first, release in (
                ("one", lab.host.port, lab.host.key, "192.168.77.3", "12"),
                ("two", other.port, other.key, "192.168.77.101", "13")):
            with Remote(SshFiles.in_dir(d / ".xenlab" / "hosts" / name),
                        SshTarget("127.0.0.1", port, USER, key)) as host:
                conf = host.run(["cat", lab_host.DNSMASQ_CONF]).out
                assert f"dhcp-range={first}," in conf, (name, conf)
                assert f'VERSION_ID="{release}"' in host.run(["cat", "/etc/os-release"]).out
                # The Xen that release's security suite maintains, from the release table.
                xen = RELEASES[release].xen
                xl = f"/usr/lib/xen-{xen}/bin/xl"
                assert host.run(["test", "-x", xl], check=False).rc == 0, (name, xl)

        os.killpg(other.procs[0].pid, signal.SIGTERM)  # the second host's sshd
        other.procs[0].wait(timeout=10)
        r = xenlab("up", "--json", "--provision", "--skip-tags", "xen_reboot", cwd=d, timeout=1500)
        assert r.returncode == 1 and "1 of 2 hosts not ready: two: " in r.stderr, r.stderr
        assert "one ready" in r.stderr and "Traceback" not in r.stderr
        result = json.loads(r.stdout)["hosts"]
        assert result["one"]["ansible"]["ran"] and result["one"]["ansible"]["failed"] == 0, result
        assert set(result["two"]) == {"error"}
    finally:
        other.close()
