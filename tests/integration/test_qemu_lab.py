"""End to end on real Xen: `xenlab up --provider qemu` from a clean directory, as a user runs it.

The user's side of the host-only network lives in a network namespace this test creates (the tap
is moved there); SSH goes over loopback. Nothing lab-related is addressed in the root namespace.
The tier is one scenario, as molecule has them: the lab and the guests it builds are module
fixtures (`up`, `auth_service`, `two_guests`, `auth4`, `static_web`), and each test names the ones
it needs. In file order every step runs once and later tests reuse it; a test run alone (`-k`)
builds what it needs first; a step that fails errors the tests that need it, not the ones after it.
Tests that change the lab (halt, kill, destroy behind xenlab's back) put back what they took.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import pytest
from helpers import XENLAB, xenlab

from lab import lab_host
from lab.checks import host as hostchecks

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="tap devices, loop devices and chroot need root"),
    pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="./install.sh"),
]


Out = dict[str, object]  # what a `--json` verb printed


@dataclass
class Lab:
    dir: Path
    netns: str
    timings: dict[str, float] = field(default_factory=dict)
    host_key: str = ""  # the lab's SSH host key, as its seed disk gave it

    @property
    def state(self) -> Path:
        return self.dir / ".xenlab"

    def run(self, *args: str, timeout: float = 2400,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*XENLAB, *args], cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "NO_COLOR": "1", **(env or {})})

    def up(self, label: str, *args: str) -> dict[str, object]:
        t = time.monotonic()
        r = self.run("up", "--json", *args)
        self.timings[label] = round(time.monotonic() - t, 1)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    def remote(self):  # type: ignore[no-untyped-def]
        import testinfra

        return testinfra.get_host("ssh://xenlab", ssh_config=str(self.state / "ssh_config"), sudo=True)

    def qemu_pid(self) -> int:
        return int((self.state / "qemu.pid").read_text())


@contextlib.contextmanager
def new_lab(d: Path) -> Iterator[Lab]:
    """A lab directory for the QEMU provider with its own network namespace for the user's side;
    afterwards, whatever a failed test left running is stopped by its PID and the lab removed."""
    netns = f"xlq{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    # Up to five guests run at once on the default 2 GiB VM (about 1.2 GiB free beside dom0), and
    # the example files ask 256 MiB each (MirageOS's default, which a lab keeps): the tier caps
    # them, as a user with many guests on a small lab would, so no test depends on the order in
    # which the others free their memory.
    (d / "xenlab.toml").write_text(f'provider = "qemu"\nhost_netns = "{netns}"\nguest_memory_max = 128\n')
    lab = Lab(d, netns)
    try:
        yield lab
    finally:
        pidfile = lab.state / "qemu.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
        lab.run("destroy", timeout=300)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        print(f"\nQEMU lab {d.name} timings (s): {json.dumps(lab.timings)}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with new_lab(tmp_path_factory.mktemp("qemulab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def up(lab: Lab) -> Out:
    """The first `xenlab up` of a new lab directory: QEMU, Debian, Ansible, reboot into Xen (or,
    when an earlier run left a disk provisioned the same way in the cache, straight into Xen)."""
    result = lab.up("first_up")
    lab.host_key = (lab.state / "ssh_host_ed25519_key.pub").read_text().split()[1]
    return result


def test_up_gives_real_xen_dom0(lab: Lab, up: Out) -> None:
    assert up["provider"] == "qemu"
    remote = lab.remote()
    assert remote.file("/sys/hypervisor/type").content_string.strip() == "xen"
    listing = remote.check_output("xl list")
    assert "Domain-0" in listing
    dom0_mb = int(listing.splitlines()[1].split()[2])
    assert 752 <= dom0_mb <= 768  # dom0_memory = 768 by default, pinned
    info = remote.check_output("xl info")
    # Debian 13's security-supported Xen, paging PVH guests with HAP (under TCG too).
    assert "xen_version            : 4.20" in info
    caps = next(line for line in info.splitlines() if line.startswith("virt_caps")).split(":")[1].split()
    assert "hap" in caps and "hvm" in caps, caps


@pytest.mark.usefixtures("up")
def test_lab_network_checks_pass_over_ssh(lab: Lab) -> None:
    remote = lab.remote()
    hostchecks.holds(remote, "unikernel_cpu")  # AES-NI, PCLMULQDQ, SSE4.x, POPCNT; hvm for PVH
    hostchecks.holds(remote, "bridge")
    hostchecks.holds(remote, "promiscuous")
    hostchecks.holds(remote, "dnsmasq")
    hostchecks.holds(remote, "forwarding")
    hostchecks.holds(remote, "nat")


@pytest.mark.usefixtures("up")
def test_user_side_gets_a_lease(lab: Lab) -> None:
    tap = json.loads((lab.state / "qemu.json").read_text())["tap"]
    _, router = hostchecks.lease_from_user_side(lab.netns, tap, lab.dir)
    assert router == "192.168.77.2"


def test_second_up_finds_the_lab_converged_and_skips_ansible(lab: Lab, up: Out) -> None:
    result = lab.up("second_up_no_change")
    assert result["ansible"]["ran"] is False and result["drift"] == [], result  # type: ignore[index]


def test_drift_in_xens_command_line_is_named_and_the_playbook_changes_only_that(lab: Lab, up: Out) -> None:
    """The converged probe compares the command line the running Xen booted with against the one
    the role gave it (kept in lab_host.XEN_CMDLINE_FILE): `hap=0` added by hand is drift. The run
    that repairs it is also the proof behind skipping Ansible on a converged lab: on real Xen dom0
    the whole playbook changes nothing but that file. (The file is changed, not Xen's command
    line: the same comparison without a reboot under TCG; one Ansible run serves both.)"""
    path = lab_host.XEN_CMDLINE_FILE
    kept = lab.remote().file(path).content_string.strip()
    lab.remote().check_output(f"echo '{kept} hap=0' | sudo tee {path}")
    result = lab.up("up_after_cmdline_drift")
    drift = [line for line in result["drift"] if "Xen booted with" in line]  # type: ignore[union-attr]
    assert drift and "hap=0" in drift[0], result
    ansible = result["ansible"]
    assert ansible["ran"] is True, result  # type: ignore[index]
    assert ansible["changed_tasks"] == ["xen_hypervisor : Keep the Xen command line this role asks for"], \
        ansible  # type: ignore[index]
    assert lab.remote().file(path).content_string.strip() == kept


def test_halt_then_up_brings_the_same_lab_back(lab: Lab, up: Out) -> None:
    marker = f"lab-{secrets.token_hex(4)}"
    lab.remote().check_output(f"echo {marker} > /root/marker")
    r = lab.run("halt", timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(lab.run("status", "--json").stdout)["state"] == "stopped"
    result = lab.up("up_after_halt")
    # Everything the roles set up came back with the boot itself: nothing for Ansible to do.
    assert result["drift"] == [], result
    remote = lab.remote()
    assert remote.file("/root/marker").content_string.strip() == marker
    assert remote.file("/sys/hypervisor/type").content_string.strip() == "xen"


def test_killed_qemu_is_reported_and_up_recovers(lab: Lab, up: Out) -> None:
    pid = lab.qemu_pid()
    os.kill(pid, signal.SIGKILL)
    assert not running(pid)
    status = json.loads(lab.run("status", "--json").stdout)
    assert status["state"] == "crashed", status
    result = lab.up("up_after_kill")
    assert result["drift"] == [], result
    assert "Domain-0" in lab.remote().check_output("xl list")


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/auth_service with the test guest built into it."""
    from conftest import ROOT

    d = tmp_path_factory.mktemp("auth") / "auth_service"
    shutil.copytree(ROOT / "examples" / "auth_service", d)
    r = subprocess.run(["make", "-C", str(ROOT), "guest", f"GUEST_DIR={d}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d


def deploy(lab: Lab, xl: Path, *args: str) -> Out:
    r = lab.run("deploy", str(xl), "--json", *args, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def named_copy(guest: Path, name: str) -> Path:
    xl = guest / f"{name}.xl"
    xl.write_text((guest / "auth_service.xl").read_text().replace("'auth_service'", f"'{name}'"))
    return xl


def http(lab: Lab, ip: str, query: str) -> tuple[int, str]:
    r = subprocess.run(["ip", "netns", "exec", lab.netns, "curl", "-s", "-m", "10", "-w", "\\n%{http_code}",
                        f"http://{ip}:8088/?{query}"], capture_output=True, text=True, timeout=30)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body.strip()


@pytest.fixture(scope="module")
def auth_service(lab: Lab, up: Out, guest: Path) -> Out:
    """The example guest, deployed with an HTTP probe."""
    t = time.monotonic()
    out = deploy(lab, guest / "auth_service.xl", "--probe", "http://:8088/")
    lab.timings["deploy_first"] = round(time.monotonic() - t, 1)
    lab.timings.update({f"deploy.{k}": v for k, v in out["phases_s"].items()})  # type: ignore[union-attr]
    return out


def test_deploy_auth_service_answers_from_the_users_side(lab: Lab, auth_service: Out) -> None:
    out = auth_service
    assert out["name"] == "auth_service" and str(out["mac"]).startswith("00:16:3e:")
    # Kernel and FAT image went through the shared folder: nothing over SSH, even the first time.
    assert (out["via"], out["sent_bytes"]) == ("share", 0), out
    ip = str(out["ip"])
    assert http(lab, ip, "user=john&password=password1") == (200, "hello john!")
    assert http(lab, ip, "user=john&password=wrong") == (401, "Invalid login")
    listed = {d["name"]: d["ip"] for d in json.loads(lab.run("list", "--json").stdout)}
    assert listed["auth_service"] == ip


def shared(lab: Lab, name: str, fname: str) -> Path:
    return lab.state / "share" / "domains" / name / fname


def test_unchanged_redeploy_copies_nothing(lab: Lab, guest: Path, auth_service: Out) -> None:
    kernel = shared(lab, "auth_service", "mir-auth_service.xen")
    before = kernel.stat()
    t = time.monotonic()
    out = deploy(lab, guest / "auth_service.xl", "--replace")
    lab.timings["redeploy_unchanged"] = round(time.monotonic() - t, 1)
    assert (out["via"], out["sent_bytes"]) == ("share", 0)
    assert (kernel.stat().st_ino, kernel.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_running_domain_is_not_replaced_without_replace(lab: Lab, guest: Path, auth_service: Out) -> None:
    r = lab.run("deploy", str(guest / "auth_service.xl"))
    assert r.returncode == 1 and "already running" in r.stderr and "--replace" in r.stderr


def test_a_truncated_copy_is_never_trusted(lab: Lab, guest: Path, auth_service: Out) -> None:
    kernel = shared(lab, "auth_service", "mir-auth_service.xen")
    os.truncate(kernel, 4096)
    deploy(lab, guest / "auth_service.xl", "--replace", "--probe", "http://:8088/")
    assert kernel.read_bytes() == (guest / "mir-auth_service.xen").read_bytes()


@pytest.mark.usefixtures("up")
def test_without_the_share_deploy_uploads_over_ssh(lab: Lab, guest: Path) -> None:
    """`share = false` (or a lab host without the share mounted): SFTP to the lab host's disk,
    sha256-skipped, a truncated upload sent again whole; the guest runs from there."""
    xl = named_copy(guest, "auth_ssh")
    r = lab.run("deploy", str(xl), "--json", "--probe", "tcp:8088", env={"XENLAB_SHARE": "0"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    size = (guest / "mir-auth_service.xen").stat().st_size
    assert out["via"] == "ssh" and int(out["sent_bytes"]) >= size, out
    remote = f"{lab_host.DOMAINS_DIR}/auth_ssh/mir-auth_service.xen"
    assert lab.remote().check_output(f"sudo stat -c %s {remote}") == str(size)
    lab_copy = lab.remote().check_output(f"sudo cat {lab_host.DOMAINS_DIR}/auth_ssh/auth_ssh.xl")
    assert lab_host.SHARE_MOUNT not in lab_copy and remote in lab_copy
    r = lab.run("destroy", "auth_ssh")
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def two_guests(lab: Lab, up: Out, guest: Path) -> list[Out]:
    """auth2 and auth3, deployed by two xenlab processes at once."""
    xls = [named_copy(guest, name) for name in ("auth2", "auth3")]
    t = time.monotonic()
    procs = [subprocess.Popen([*XENLAB, "deploy", str(x), "--json", "--probe", "tcp:8088"], cwd=lab.dir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for x in xls]
    results = [p.communicate(timeout=900) for p in procs]
    lab.timings["deploy_two_concurrently"] = round(time.monotonic() - t, 1)
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in results]
    return [json.loads(o) for o, _ in results]


def test_two_more_guests_at_once_get_distinct_leases(lab: Lab, two_guests: list[Out]) -> None:
    ips = [str(out["ip"]) for out in two_guests]
    assert len(set(ips)) == 2
    for ip in ips:
        assert http(lab, ip, "user=alice&password=s3cret") == (200, "hello alice!")


@pytest.mark.usefixtures("two_guests")
def test_check_passes_with_a_junit_report(lab: Lab, tmp_path: Path) -> None:
    junit = tmp_path / "check.xml"
    r = lab.run("check", "--junit-xml", str(junit), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    xml = junit.read_text()
    assert 'failures="0"' in xml and 'errors="0"' in xml
    assert "test_guest_reachable_from_the_users_side[ssh://xenlab-auth2]" in xml and "test_xen_dom0" in xml
    assert "lab host: Xen 4.20" in r.stderr and "HAP paging" in r.stderr  # what the results are about
    status = json.loads(lab.run("status", "--json").stdout)
    assert status["xen"].startswith("Xen 4.20") and status["xen"].endswith("HAP paging"), status


def test_topology_draws_the_live_lab(lab: Lab, two_guests: list[Out], tmp_path: Path) -> None:
    """The graph against the lab read independently (`ip -j link` in dom0, the deploys' own
    output); SVG and PNG from Graphviz; a NIC made non-promiscuous by hand is the one node marked."""
    import xml.etree.ElementTree as ET

    svg, png = tmp_path / "lab.svg", tmp_path / "lab.png"
    r = lab.run("topology", "--json", "--svg", str(svg), "--png", str(png), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    graph = json.loads(r.stdout)
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["a"], e["b"]) for e in graph["edges"]}
    tap = json.loads((lab.state / "qemu.json").read_text())["tap"]
    assert nodes[f"user:{tap}"]["detail"]["addresses"] == ["192.168.77.1/24"]
    assert nodes[f"user:{tap}"]["detail"]["netns"] == lab.netns
    assert nodes["bridge:br0"]["detail"]["addresses"] == ["192.168.77.2/24"]
    links = json.loads(lab.remote().check_output("ip -j link show"))
    ports = {link["ifname"] for link in links if link.get("master") == "br0"}
    drawn = {a.split(":", 1)[1] for a, b in edges if b == "bridge:br0" and a.startswith(("nic:", "vif:"))}
    assert drawn == ports and "eth1" in ports, (drawn, ports)
    assert (f"user:{tap}", "nic:eth1") in edges and nodes["nic:eth1"]["detail"]["promiscuous"] is True
    for out in two_guests:
        guest = nodes[f"guest:{out['name']}"]
        assert (guest["detail"]["mac"], guest["detail"]["ip"]) == (out["mac"], out["ip"])
        vifs = [b for a, b in edges if a == guest["id"]]
        assert [nodes[v]["detail"]["mac"] for v in vifs] == [out["mac"]]
    assert graph["problems"] == []
    text = ET.tostring(ET.parse(svg).getroot(), encoding="unicode")
    for out in two_guests:
        assert str(out["name"]) in text and str(out["ip"]) in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    remote = lab.remote()
    remote.check_output("sudo ip link set dev eth1 promisc off")
    try:
        r = lab.run("topology", "--json", timeout=300)
        marked = [n["id"] for n in json.loads(r.stdout)["nodes"] if n["problems"]]
        assert r.returncode == 1 and marked == ["nic:eth1"], r.stdout[-2000:]
        plain = lab.run("topology", timeout=300).stdout
        assert "✗ eth1 is not promiscuous" in plain  # the promiscuous fact's own words
    finally:
        remote.check_output("sudo ip link set dev eth1 promisc on")


@pytest.mark.usefixtures("two_guests")  # auth3 is one of them
def test_check_names_the_cause_when_a_guest_is_gone(lab: Lab) -> None:
    lab.remote().check_output("sudo xl destroy auth3")  # behind xenlab's back
    r = lab.run("check", timeout=900)
    assert r.returncode == 1
    assert "auth3 is not running" in r.stdout
    r = lab.run("destroy", "auth3")  # gone already: forgotten, so that `check` passes again
    assert r.returncode == 0 and "auth3 was no longer on the lab host" in r.stderr, r.stderr
    r = lab.run("destroy", "auth3")  # and now unknown: a clear error
    assert r.returncode == 1 and "no domain named 'auth3'" in r.stderr


@pytest.mark.usefixtures("up")
@pytest.mark.parametrize("case", ["malformed", "missing-kernel", "shell-name", "too-big"])
def test_bad_inputs_fail_clearly_and_leave_nothing(lab: Lab, guest: Path, tmp_path: Path, case: str) -> None:
    d = tmp_path / case
    shutil.copytree(guest, d)
    xl = d / "auth_service.xl"
    text = xl.read_text()
    if case == "malformed":
        xl.write_text(text.replace("vif = [ ]", "vif = [ 'bridge=br0'"))
    elif case == "missing-kernel":
        (d / "mir-auth_service.xen").unlink()
    elif case == "shell-name":
        xl.write_text(text.replace("'auth_service'", "'x; touch /root/injected'"))
    else:
        with open(d / "data" / "huge", "wb") as f:
            f.truncate(130 * 1024 * 1024)
    before = lab.remote().check_output("sudo xl list")
    args = ["--strict"] if case == "shell-name" else []
    r = lab.run("deploy", str(xl), *args)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode in (1, 2) and len(errors) == 1 and "Traceback" not in r.stderr
    assert {"malformed": str(xl) + ":", "missing-kernel": "mir-auth_service.xen",
            "shell-name": "--strict", "too-big": "128 MiB"}[case] in r.stderr
    assert lab.remote().check_output("sudo xl list").count("\n") == before.count("\n")
    assert not lab.remote().file("/root/injected").exists  # the name never reached a shell


@pytest.fixture(scope="module")
def auth4(lab: Lab, up: Out, guest: Path) -> Out:
    """The example guest at a fixed address of the DHCP range (a dnsmasq reservation)."""
    return deploy(lab, named_copy(guest, "auth4"), "--ip", "192.168.77.199", "--probe", "tcp:8088")


def test_fixed_ip_is_served_and_the_console_log_readable(lab: Lab, auth4: Out) -> None:
    assert auth4["ip"] == "192.168.77.199"
    assert http(lab, "192.168.77.199", "user=john&password=password1") == (200, "hello john!")
    log = lab.run("console", "--log", "auth4")
    assert log.returncode == 0 and "AUTH: users: alice john" in log.stdout, log.stderr


def test_console_is_interactive_and_ctrl_bracket_leaves(lab: Lab, auth4: Out) -> None:
    """`xenlab console` through a terminal, as a person uses it: a typed line reaches the guest
    (its init echoes it back as a log line), and Ctrl-] detaches with exit 0."""
    import pty
    import select

    token = secrets.token_hex(4)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*XENLAB, "console", "auth4"], cwd=lab.dir, stdin=follower,
                            stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    seen, deadline, next_send = b"", time.monotonic() + 90, 0.0
    try:
        while f"AUTH: console: {token}".encode() not in seen and time.monotonic() < deadline:
            if time.monotonic() > next_send:  # until it arrives: attaching takes a moment
                os.write(leader, f"{token}\r".encode())
                next_send = time.monotonic() + 5
            if select.select([leader], [], [], 1)[0]:
                with contextlib.suppress(OSError):
                    seen += os.read(leader, 65536)
        assert f"AUTH: console: {token}".encode() in seen, seen[-2000:]
        os.write(leader, b"\x1d")  # Ctrl-]
        assert proc.wait(timeout=30) == 0, seen[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)


@pytest.mark.usefixtures("up")
def test_a_guest_that_never_answers_is_destroyed_not_left_half_deployed(lab: Lab, guest: Path) -> None:
    r = lab.run("deploy", str(named_copy(guest, "auth5")), "--probe", "tcp:9", "--timeout", "60")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "does not answer on tcp:9" in errors[0] and "auth5 destroyed" in errors[0]
    assert "hint: console:" in r.stderr  # the diagnosis names what it saw
    assert "auth5" not in lab.remote().check_output("sudo xl list")
    assert "auth5" not in json.loads((lab.state / "state.json").read_text())["domains"]


# -- real unikernels' behaviour, played by stand-ins (examples/unikernels/*/init says which) ----
@pytest.fixture(scope="module")
def unikernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/unikernels with the stand-ins built (`make unikernels`)."""
    from conftest import ROOT

    d = tmp_path_factory.mktemp("uk") / "unikernels"
    shutil.copytree(ROOT / "examples" / "unikernels", d,
                    ignore=shutil.ignore_patterns("*.xen", "*-initrd.gz"))
    for persona in sorted(p for p in d.iterdir() if (p / "init").exists()):
        r = subprocess.run([sys.executable, str(ROOT / "examples/auth_service/build_guest.py"), str(persona),
                            "--unikernel", str(persona)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return d


def domains(lab: Lab) -> list[str]:
    return [line.split()[0] for line in lab.remote().check_output("sudo xl list").splitlines()[1:]]


@pytest.fixture(scope="module")
def testkernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/unikernels/testkernel with xenlab's own test kernel built (`make`)."""
    from conftest import ROOT

    d = tmp_path_factory.mktemp("tk") / "testkernel"
    shutil.copytree(ROOT / "examples" / "unikernels" / "testkernel", d,
                    ignore=shutil.ignore_patterns("*.xen"))
    r = subprocess.run(["make", "-C", str(d)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d


def run_tk(lab: Lab, testkernel: Path, *args: str, xl: str = "testkernel.xl",
           timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], Out]:
    """`xenlab run` of the test kernel with boot arguments, as JSON; nothing may be left behind."""
    r = lab.run("run", str(testkernel / xl), "--json", *args, timeout=timeout)
    out = json.loads(r.stdout) if r.stdout.strip() else {}
    assert str(out.get("name", "")) not in domains(lab)
    return r, out


@pytest.mark.usefixtures("up")
def test_run_a_small_pvh_unikernel_that_prints_and_exits(lab: Lab, testkernel: Path, tmp_path: Path) -> None:
    """Solo5's shape, as its own harness runs its Xen tests: PVH, memory = 32, its command line,
    the shared_info page added to its physmap (what aborted every such guest under shadow
    paging), poweroff with `solo5_exit(0)`. Exit 0, console on stdout, JUnit, nothing left."""
    junit = tmp_path / "tk.xml"
    t = time.monotonic()
    r = lab.run("run", str(testkernel / "testkernel.xl"), "--arg", "print=hello-from-the-lab",
                "--junit-xml", str(junit), timeout=600)
    lab.timings["run_testkernel"] = round(time.monotonic() - t, 1)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "hello-from-the-lab" in r.stdout and "Solo5: solo5_exit(0) called" in r.stdout
    assert "xenlab-testkernel: on Xen 4.20" in r.stdout and "ABORT" not in r.stdout
    assert "Solo5: Memory map: 32 MB addressable" in r.stdout
    assert "testkernel ended with a poweroff, exit status 0" in r.stderr and "error:" not in r.stderr
    assert 'failures="0"' in junit.read_text() and "hello-from-the-lab" in junit.read_text()
    assert "testkernel" not in domains(lab)


@pytest.mark.usefixtures("up")
@pytest.mark.parametrize("status", [1, 99, 64])
def test_run_exits_with_the_status_the_unikernel_reports(lab: Lab, testkernel: Path, tmp_path: Path,
                                                         status: int) -> None:
    """Solo5 reports every status but its abort as a poweroff: the console line says which (Solo5's
    test_xnor ends with 1, test_blk with 99; MirageOS 4 refuses a boot argument with 64)."""
    junit = tmp_path / "tk.xml"
    r = lab.run("run", str(testkernel / "testkernel.xl"), "--arg", f"exit={status}",
                "--junit-xml", str(junit), timeout=600)
    assert r.returncode == status, r.stderr[-3000:]
    assert f"ended with a poweroff, exit status {status}" in r.stderr
    report = junit.read_text()
    assert 'failures="1"' in report and f'type="exit status {status}"' in report
    assert f"solo5_exit({status}) called" in report  # the console kept
    if status == 64:
        assert "MirageOS refused a boot argument" in r.stderr


@pytest.mark.usefixtures("up")
def test_a_suite_of_small_unikernels_with_expected_failures(lab: Lab, testkernel: Path,
                                                            tmp_path: Path) -> None:
    """Solo5's suite in miniature: test kernels that exit 0, exit 3 (expected), abort (expected:
    a crash with ABORT on its console), a PV one, and one that fails. One `xenlab run` of the
    directory: several at once, one JUnit report, exit 1 for the one failure, nothing left."""
    suite = tmp_path / "suite"
    suite.mkdir()
    pvh = (testkernel / "testkernel.xl").read_text()
    pv = (testkernel / "testkernel-pv.xl").read_text()
    for name, text, args, expect in (
            ("tk_hello", pvh, "print=hello-suite", ""), ("tk_exit3", pvh, "exit=3", "status = 3\n"),
            ("tk_abort", pvh, "abort", 'ended = "crash"\nconsole = ["Solo5: ABORT"]\n'),
            ("tk_pv", pv, "exit=0", ""), ("tk_fails", pvh, "exit=2", "")):
        key = "extra" if "type = 'pv'" in text else "cmdline"
        text = text.replace("name = 'testkernel-pv'", f"name = '{name}'").replace(
            "name = 'testkernel'", f"name = '{name}'").replace(f"{key} = ''", f"{key} = '{args}'")
        for kernel in ("testkernel-pvh.xen", "testkernel-pv.xen"):
            text = text.replace(f"'{kernel}'", f"'{testkernel / kernel}'")
        (suite / f"{name}.xl").write_text(text)
        if expect:
            (suite / f"{name}.expect").write_text(expect)
    junit = tmp_path / "suite.xml"
    t = time.monotonic()
    r = lab.run("run", str(suite), "--junit-xml", str(junit), timeout=900)
    lab.timings["suite_of_5"] = round(time.monotonic() - t, 1)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "4 passed, 1 failed of 5 unikernels" in r.stderr, r.stderr[-3000:]
    assert "tk_fails ended with a poweroff, exit status 2" in r.stderr
    report = ElementTree.parse(junit).getroot()
    assert (report.get("tests"), report.get("failures"), report.get("errors")) == ("5", "1", "0")
    outs = {c.get("name"): c.findtext("system-out") or "" for c in report.iter("testcase")}
    assert "hello-suite" in outs["tk_hello"].splitlines() and "Solo5: ABORT" in outs["tk_abort"]
    assert "Solo5: ABORT" not in outs["tk_hello"]  # each console its own
    assert not set(outs) & set(domains(lab))


@pytest.mark.usefixtures("up")
def test_the_ci_recipes_xenlab_lines_run_on_the_lab(lab: Lab, testkernel: Path, tmp_path: Path) -> None:
    """examples/ci/github-actions.yml's xenlab lines, as the job runs them, in the lab's
    directory (up finds it converged; destroy is left to the tests at the end), on a suite of
    two test kernels: each exits 0 and the reports the job uploads are written."""
    from ci_recipes import GITHUB, xenlab_commands

    suite = tmp_path / "xen"
    suite.mkdir()
    for name, args in (("ci_one", "print=one"), ("ci_two", "exit=0")):
        text = (testkernel / "testkernel.xl").read_text().replace("name = 'testkernel'", f"name = '{name}'")
        text = text.replace("cmdline = ''", f"cmdline = '{args}'").replace(
            "'testkernel-pvh.xen'", f"'{testkernel / 'testkernel-pvh.xen'}'")
        (suite / f"{name}.xl").write_text(text)
    shutil.rmtree(lab.dir / "results", ignore_errors=True)
    for argv in xenlab_commands(GITHUB, str(suite)):
        if argv[0] == "destroy":
            continue
        r = lab.run(*argv, timeout=1800)
        assert r.returncode == 0, (argv, r.stderr[-3000:])
    cases = {report: [c.get("name") for c in ElementTree.parse(lab.dir / "results" / report).iter("testcase")]
             for report in ("unikernels.xml", "lab.xml")}
    assert sorted(cases["unikernels.xml"]) == ["ci_one", "ci_two"]
    assert "test_xen_dom0" in " ".join(map(str, cases["lab.xml"])), cases["lab.xml"]


@pytest.mark.usefixtures("up")
def test_run_says_when_the_status_is_hidden(lab: Lab, testkernel: Path) -> None:
    r, out = run_tk(lab, testkernel, "--arg", "--solo5:quiet", "--arg", "exit=3")
    assert r.returncode == 0 and out["ended"] == "poweroff" and out["status_hidden"] is True
    assert "only a poweroff and a crash can be told apart" in r.stderr


@pytest.mark.usefixtures("up")
@pytest.mark.parametrize("how", ["abort", "reboot"])
def test_run_a_unikernel_that_aborts_or_reboots_fails(lab: Lab, testkernel: Path, how: str) -> None:
    r, out = run_tk(lab, testkernel, "--arg", how)
    assert r.returncode == 1, r.stderr[-3000:]
    assert out["ended"] == ("crash" if how == "abort" else "reboot") and out["passed"] is False
    if how == "abort":
        assert any("Solo5: ABORT:" in line for line in out["console"])


@pytest.mark.usefixtures("up")
def test_run_stops_a_guest_that_never_ends(lab: Lab, testkernel: Path) -> None:
    r = lab.run("run", str(testkernel / "testkernel.xl"), "--arg", "hang", "--timeout", "15", timeout=600)
    assert r.returncode == 124, r.stderr[-3000:]
    assert "still running after" in r.stderr and "testkernel" not in domains(lab)


@pytest.mark.usefixtures("up")
def test_the_lab_cpu_has_what_unikernels_use(lab: Lab, testkernel: Path) -> None:
    """The CPU features unikernels check for at boot (Unikraft: RDRAND and RDSEED; mirage-crypto:
    AES-NI), as a PVH guest sees them, each instruction executed; RDSEED where QEMU's TCG has it."""
    from lab.checks.facts import UNIKERNEL_CPU_FLAGS

    dom0 = lab.remote().check_output("grep -m1 ^flags /proc/cpuinfo").split()
    wanted = [f for f in UNIKERNEL_CPU_FLAGS if f != "rdseed" or "rdseed" in dom0]
    r, out = run_tk(lab, testkernel, "--arg", f"require={','.join(wanted)}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(f"xenlab-testkernel: CPU has {f}" in out["console"] for f in wanted), out["console"]


@pytest.mark.usefixtures("up")
def test_run_a_pv_unikernel(lab: Lab, testkernel: Path) -> None:
    """MirageOS 3's shape on Mini-OS: PV, start_info, shared_info mapped; a status other than 0
    is a crash there."""
    r, out = run_tk(lab, testkernel, "--no-network", "--arg", "print=pv-ok", xl="testkernel-pv.xl")
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(line.startswith("Xen Minimal OS!") for line in out["console"]) and "pv-ok" in out["console"]
    r, out = run_tk(lab, testkernel, "--no-network", "--arg", "exit=5", xl="testkernel-pv.xl")
    assert r.returncode == 1 and out["ended"] == "crash"


@pytest.mark.usefixtures("up")
def test_small_unikernels_boot_every_time(lab: Lab, testkernel: Path) -> None:
    """The paging mode is chosen for these: no failed boot of a unikernel-shaped guest, PVH at
    32 MiB and PV, one after another (bench/bench_boots.py runs 50 of each for the boot table)."""
    ended, expected = [], []
    for i in range(4):
        for xl in ("testkernel.xl", "testkernel-pv.xl"):
            # Every other PVH boot adds shared_info far above its RAM (new p2m pages from Xen's pool).
            high = ["--arg", "shinfo=high"] if xl == "testkernel.xl" and i % 2 else []
            _, out = run_tk(lab, testkernel, "--no-network", "--arg", f"exit={i}", *high, xl=xl)
            ended.append((xl, out.get("status") if out.get("ended") == "poweroff" else out.get("ended")))
        # Mini-OS has no way to say a status but a crash: the PV flavour ends so for exit=N > 0.
        expected += [("testkernel.xl", i), ("testkernel-pv.xl", 0 if i == 0 else "crash")]
    assert ended == expected


@pytest.mark.usefixtures("up")
def test_deploy_stops_waiting_when_the_guest_powers_off(lab: Lab, testkernel: Path) -> None:
    """A unikernel that exits is no reason to wait 180 s for a lease: the wait ends with it."""
    t = time.monotonic()
    r = lab.run("deploy", str(testkernel / "testkernel.xl"), "--network", timeout=600)
    took = time.monotonic() - t
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr[-3000:]
    assert "testkernel ended (poweroff)" in errors[0] and "testkernel destroyed" in errors[0]
    assert "solo5_exit(0) called" in r.stderr  # the console tail in the hint
    assert took < 120, took
    # This boot's console only; earlier boots of the name (the runs above) kept as .1.
    logs = lab.remote().check_output(
        "sudo sh -c 'grep -c \"solo5_exit\" /var/log/xen/console/guest-testkernel.log*'")
    assert "/var/log/xen/console/guest-testkernel.log:1" in logs.split(), logs
    assert "/var/log/xen/console/guest-testkernel.log.1:1" in logs.split(), logs


def curl(lab: Lab, url: str) -> str:
    r = subprocess.run(["ip", "netns", "exec", lab.netns, "curl", "-fsS", "-m", "10", url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def static_web(lab: Lab, up: Out, unikernels: Path) -> Out:
    """The MirageOS 3 web server's stand-in, given the first free address of the static range."""
    t = time.monotonic()
    out = deploy(lab, unikernels / "static_web" / "static_web.xl", "--static", "--probe", "http://:80/")
    lab.timings["deploy_static"] = round(time.monotonic() - t, 1)
    return out


def test_static_unikernel_on_a_cpu_with_aes_ni(lab: Lab, unikernels: Path, static_web: Out) -> None:
    """MirageOS 3 web server's shape: PV, crypto that traps without AES-NI/SSE4, its address only
    from boot arguments. `--static` gives it a free address of the static range (MirageOS 4
    dialect by default), readiness is its address answering, HTTP from the user's side."""
    out = static_web
    ip = str(out["ip"])
    assert out["address"] == "static" and ip == "192.168.77.201"
    assert f"--ipv4={ip}/24 --ipv4-gateway=192.168.77.2" in str(out["boot_args"])
    assert curl(lab, f"http://{ip}/") == f"static_web at {ip}/24"
    listed = {d["name"]: d for d in json.loads(lab.run("list", "--json").stdout)}
    row = listed["static_web"]
    assert (row["ip"], row["address"], row["state"]) == (ip, "static", "running")
    assert row["boot_args"] == out["boot_args"]
    assert row["sha256"]["static_web.xen"] == hashlib.sha256((unikernels / "static_web" / "static_web.xen")
                                                             .read_bytes()).hexdigest()
    assert 0 <= row["uptime_s"] < 600 and row["uptime_s"] != row["cpu_s"]


@pytest.mark.usefixtures("up")
def test_static_mirage3_dialect_and_a_pinned_binary(lab: Lab, unikernels: Path) -> None:
    src = unikernels / "static_web"
    xl = src / "static_web3.xl"
    xl.write_text((src / "static_web.xl").read_text().replace("'static_web'", "'static_web3'"))
    digest = hashlib.sha256((src / "static_web.xen").read_bytes()).hexdigest()
    out = deploy(lab, xl, "--static", "192.168.77.230", "--arg-style", "mirage3", "--sha256", digest,
                 "--probe", "tcp:80")
    assert "ipv4=192.168.77.230/24 ipv4-gateway=192.168.77.2" in str(out["boot_args"])
    assert "--ipv4" not in str(out["boot_args"])
    assert curl(lab, "http://192.168.77.230/") == "static_web at 192.168.77.230/24"


@pytest.mark.parametrize("case", ["in-use", "outside-range", "quote", "semicolon", "sha256"])
def test_bad_unikernel_inputs_create_nothing(lab: Lab, unikernels: Path, static_web: Out, case: str) -> None:
    src = unikernels / "static_web"
    xl = src / "static_bad.xl"
    xl.write_text((src / "static_web.xl").read_text().replace("'static_web'", "'static_bad'"))
    args, expected = {
        "in-use": (["--static", "192.168.77.201"], "in use by the guest 'static_web'"),
        "outside-range": (["--static", "192.168.77.50"], "outside the lab's static range"),
        "quote": (["--arg", "--name='x'"], "cannot hold"),
        "semicolon": (["--arg", "a;reboot"], "cannot hold ';'"),
        "sha256": (["--sha256", "0" * 64], "sha256 is"),
    }[case]
    before = domains(lab)
    r = lab.run("deploy", str(xl), *args)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert expected in errors[0] and "destroyed" not in errors[0]
    assert domains(lab) == before
    remote = lab.remote()
    assert not remote.file(f"{lab_host.DOMAINS_DIR}/static_bad").exists
    assert "static_bad" not in remote.check_output(f"sudo ls {lab_host.STATIC_DIR} -l || true")


@pytest.mark.usefixtures("up")
def test_the_example_guest_boots_as_pvh_too(lab: Lab, guest: Path) -> None:
    """Debian's kernel boots PVH, as MirageOS 4 unikernels do: the same auth service, type='pvh'."""
    xl = guest / "auth_pvh.xl"
    xl.write_text((guest / "auth_service.xl").read_text().replace("'auth_service'", "'auth_pvh'")
                  .replace("builder = 'linux'", "type = 'pvh'"))
    # A PVH file without a vif is MirageOS 4's unikernel without a network device: asking for a
    # probe of it is refused; --network gives it one.
    r = lab.run("deploy", str(xl), "--probe", "http://:8088/")
    assert r.returncode == 2 and "--network gives it a vif" in r.stderr, r.stderr[-2000:]
    # Linux's own early PVH boot triple-faults now and then under TCG's emulated nested paging
    # (2 boots in 11 on QEMU 7.2, 4 in 10 on 10.0; Xen logs "Triple fault" with its own RIP in
    # the guest's registers), before its console exists: a stand-in's failure, not the lab's
    # (the test kernel's PVH boots do not fail: bench/boot_table.md). Such a boot, and only such
    # a boot, is tried again; deploy's clean-up after it is still asserted.
    for attempt in range(8):  # at 4 in 10, all eight fail once in 1,500 runs
        r = lab.run("deploy", str(xl), "--json", "--network", "--probe", "http://:8088/", timeout=900)
        stand_in_fault = r.returncode == 1 and "auth_pvh ended (reboot)" in r.stderr
        if not stand_in_fault:
            break
        assert "auth_pvh" not in domains(lab), "a failed deploy left its domain behind"
        print(f"auth_pvh: Linux's PVH boot triple-faulted (attempt {attempt + 1})")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert http(lab, str(out["ip"]), "user=john&password=password1") == (200, "hello john!")
    info = json.loads(lab.remote().check_output("sudo xl list -l auth_pvh"))
    assert info[0]["config"]["c_info"]["type"] == "pvh"
    r = lab.run("destroy", "auth_pvh")
    assert r.returncode == 0, r.stderr
    assert "auth_pvh" not in domains(lab)


@pytest.fixture(scope="module")
def existing(lab: Lab, up: Out, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """A second lab directory that takes the QEMU lab as an existing host (provider = "ssh"), as a
    team takes a server: its address, user and key, the host-only NIC by name, and the Xen command
    line this host needs (the QEMU provider's serial console)."""
    from lab.config import load
    from lab.providers.qemu import Qemu

    state = json.loads((lab.state / "state.json").read_text())["ssh"]
    facts = Qemu(load(cwd=lab.dir).config, lab.state).facts()
    nic = lab.remote().check_output(
        "ip -o link show master br0 | awk -F': ' '$2 !~ /^vif/ { print $2; exit }'").split("@")[0]
    d = tmp_path_factory.mktemp("existing")
    (d / "xenlab.toml").write_text(
        f'provider = "ssh"\nssh_host = "{state["host"]}"\nssh_port = {state["port"]}\n'
        f'ssh_user = "{state["user"]}"\nssh_key = "{state["identity"]}"\nuplink_interface = "{nic}"\n'
        f'xen_cmdline_extra = "{facts.xen_cmdline_extra}"\n'
        f'dom0_cmdline_extra = "{facts.dom0_cmdline_extra}"\n')
    return Lab(d, lab.netns)


def test_the_lab_as_an_existing_host(lab: Lab, existing: Lab, guest: Path) -> None:
    """provider = "ssh" on real Xen: `up` pins the vouched-for key and converges the host without
    a reboot; deploy (over SSH: no share to this directory), list, check, destroy NAME; `destroy`
    removes this directory's guests only and the host keeps running, its other guests too."""
    from lab.config import load
    from lab.ssh import fingerprint

    nic = load(cwd=existing.dir).config.uplink_interface
    boot_id = lab.remote().check_output("cat /proc/sys/kernel/random/boot_id")
    others = set(domains(lab)) - {"Domain-0"}
    r = existing.run("up")
    assert r.returncode == 1 and "--trust-host-key SHA256:" in r.stderr, r.stderr
    result = existing.up("existing_host_up", "--trust-host-key", fingerprint(f"ssh-ed25519 {lab.host_key}"))
    assert result["provider"] == "ssh" and result["ansible"]["changed"] == 0, result  # type: ignore[index]
    assert lab.remote().check_output("cat /proc/sys/kernel/random/boot_id") == boot_id, "rebooted"

    out = deploy(existing, named_copy(guest, "exist1"), "--probe", "http://:8088/")
    assert out["via"] == "ssh" and int(out["sent_bytes"]) > 0, out  # type: ignore[call-overload]
    assert http(lab, str(out["ip"]), "user=john&password=password1") == (200, "hello john!")
    listed = json.loads(existing.run("list", "--json").stdout)
    assert [(d["name"], d["ip"]) for d in listed if d["name"] == "exist1"] == [("exist1", out["ip"])]
    r = existing.run("check", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    r = existing.run("topology", "--json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    labels = [n["label"] for n in json.loads(r.stdout)["nodes"]]
    assert "exist1" in labels and nic in labels, labels
    assert existing.run("destroy", "exist1").returncode == 0
    assert "exist1" not in domains(lab)

    deploy(existing, named_copy(guest, "exist2"))
    r = existing.run("destroy")
    assert r.returncode == 0 and "keeps running" in r.stderr, r.stderr
    assert set(domains(lab)) - {"Domain-0"} == others, "destroy took more, or less, than its own"
    assert lab.remote().check_output("cat /proc/sys/kernel/random/boot_id") == boot_id
    assert json.loads(lab.run("status", "--json").stdout)["state"] == "running"


def test_several_hosts_with_one_down(lab: Lab, existing: Lab, guest: Path, tmp_path: Path) -> None:
    """Two existing hosts in one directory: the lab (as the test above takes it) and one that is
    down. `up` readies the lab and names the other; deploy places the guest on the host that can
    take it; list, status and destroy NAME work across both, each row naming its host."""
    import tomllib

    from lab.ssh import fingerprint

    settings = tomllib.loads((existing.dir / "xenlab.toml").read_text())
    settings.pop("provider")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    d = tmp_path / "several"
    d.mkdir()
    (d / "xenlab.toml").write_text(
        'provider = "ssh"\n[hosts.lab]\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
        + f'[hosts.gone]\nssh_host = "127.0.0.1"\nssh_port = {closed}\nssh_user = "nobody"\n'
        f'ssh_key = "{settings["ssh_key"]}"\nuplink_interface = "eth1"\nsubnet = "192.168.78.0/24"\n'
        'host_ip = "192.168.78.1"\nlab_ip = "192.168.78.2"\ndhcp_start = "192.168.78.3"\n'
        'dhcp_end = "192.168.78.200"\nstatic_start = "192.168.78.201"\nstatic_end = "192.168.78.254"\n')
    several = Lab(d, lab.netns)
    r = several.run("up", "--json", "--trust-host-key", fingerprint(f"ssh-ed25519 {lab.host_key}"))
    assert r.returncode == 1 and "1 of 2 hosts not ready: gone: cannot reach" in r.stderr, r.stderr
    result = json.loads(r.stdout)["hosts"]
    assert result["lab"]["provider"] == "ssh" and "cannot reach" in result["gone"]["error"], result

    out = deploy(several, named_copy(guest, "placed1"))
    assert out["host"] == "lab", out
    r = several.run("list", "--json")
    rows = [(row["host"], row["name"]) for row in json.loads(r.stdout)]
    assert ("lab", "placed1") in rows and all(host == "lab" for host, _ in rows), rows
    assert "gone:" in r.stderr and r.returncode == 1  # the listing lacks a host: as topology
    status = json.loads(several.run("status", "--json").stdout)["hosts"]
    assert status["lab"]["state"] == "running" and status["gone"]["state"] != "running", status
    assert several.run("destroy", "placed1").returncode == 0
    assert "placed1" not in domains(lab)
    assert several.run("destroy").returncode == 0
    assert json.loads(lab.run("status", "--json").stdout)["state"] == "running"


@pytest.mark.usefixtures("up")
@pytest.mark.usefixtures("auth_service")  # at least one guest, when this test runs alone
def test_destroy_each_guest_leaves_domain0_only(lab: Lab) -> None:
    """Whatever the tests before left: each guest destroyed by name frees what it held."""
    names = [d["name"] for d in json.loads(lab.run("list", "--json").stdout)]
    for name in names:
        r = lab.run("destroy", name)
        assert r.returncode == 0, r.stderr
    assert domains(lab) == ["Domain-0"]
    remote = lab.remote()
    # (made on the first static claim: absent when this test runs alone)
    claims = remote.check_output(f"sudo ls -A {lab_host.STATIC_DIR} 2>/dev/null || true")
    assert claims == "", "static claims left"
    # Their uploads go with them (a run or a failed deploy keeps its own, for the next attempt).
    kept = remote.check_output(f"sudo ls -A {lab_host.DOMAINS_DIR}").split()
    assert names and not set(names) & set(kept), (names, kept)
    r = lab.run("destroy", "nosuch")
    assert r.returncode == 1 and "no domain named 'nosuch'" in r.stderr


def running(pid: int, grace: float = 15) -> bool:
    """Whether pid is still a live process (a zombie waiting for init to reap it is not)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
        except (OSError, IndexError):
            return False
        if state == "Z":
            return False
        time.sleep(0.5)
    return True


@pytest.mark.usefixtures("up")
def test_destroy_leaves_nothing_behind(lab: Lab) -> None:
    pid = lab.qemu_pid()
    tap = json.loads((lab.state / "qemu.json").read_text())["tap"]
    r = lab.run("destroy", timeout=600)
    assert r.returncode == 0, r.stderr
    assert not running(pid)
    assert not (lab.state / "disk.qcow2").exists()
    for ns in ([], ["-n", lab.netns]):
        links = subprocess.run(["ip", *ns, "-o", "link"], capture_output=True, text=True).stdout
        assert tap not in links
    assert json.loads(lab.run("status", "--json").stdout)["state"] == "absent"


@pytest.mark.usefixtures("up")
def test_a_second_lab_starts_from_the_provisioned_cache(lab: Lab, tmp_path: Path) -> None:
    """The first lab's provisioning (this run's, or an earlier run's with the same roles and
    settings) left its disk in the cache: a new lab boots straight into Xen from it, Ansible does
    not run, and it is a lab of its own (its own host key) that passes `xenlab check`."""
    d = tmp_path / "second"
    d.mkdir()
    with new_lab(d) as second:
        result = second.up("second_lab_from_cache")
        assert str(result["disk"]).startswith("provisioned cache"), result
        assert result["ansible"]["ran"] is False and result["drift"] == [], result  # type: ignore[index]
        # What a CI cache is keyed on names the entry this lab started from.
        key = second.run("config", "--cache-key").stdout.strip()
        assert key and key in str(result["disk"]), (key, result["disk"])
        r = second.run("check", timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        pinned = (d / ".xenlab" / "known_hosts").read_text().split()[-1]
        served = second.remote().check_output("sudo cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
        assert pinned == served
        assert served != lab.host_key, "the cached disk brought the first lab's host key"
        status = json.loads(second.run("status", "--json").stdout)
        assert status["cache"]["provisioned_images"] >= 1, status


def test_no_space_for_the_overlay_is_a_clear_error(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", small], check=True)
    try:
        (small / "xenlab.toml").write_text('provider = "qemu"\n')
        r = xenlab("up", cwd=small)
        assert r.returncode == 1 and "MiB free" in r.stderr and "Traceback" not in r.stderr
        assert not (small / ".xenlab" / "disk.qcow2").exists()
        assert not (small / ".xenlab" / "qemu.pid").exists()
    finally:
        subprocess.run(["umount", small], check=False)
