"""A real Debian host standing in for the lab VM, in network namespaces this test run owns.

    wan ns:  wan0 10.0.2.2/24 ............ the NAT side (Vagrant's NAT NIC peer)
    host ns: eth0 10.0.2.15/24 (default via 10.0.2.2), eth1 (host-only NIC, no address)
             sshd in its own mount/pid/uts namespaces, chrooted into a debootstrapped bookworm
    user ns: vboxnet0 192.168.77.1/24 ...... the user's machine on the host-only network

SSH reaches the host through a socat forwarder on 127.0.0.1:PORT in the root namespace, exactly
like Vagrant's NAT port forward; no lab address is ever configured in the root namespace.
Everything started here is stopped by PID, and the namespaces are deleted, on close().
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from integration.rootfs import SUITE, rootfs_tarball

UPLINK_MAC = "02:00:00:77:00:02"
USER = "xenlab"


def sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabHost:
    def __init__(self, workdir: Path, suite: str = SUITE) -> None:
        self.suite = suite
        tag = secrets.token_hex(3)
        self.ns_host, self.ns_user, self.ns_wan = f"xlt{tag}h", f"xlt{tag}u", f"xlt{tag}w"
        self.workdir = workdir
        self.root = workdir / "rootfs"
        self.key = workdir / "id_ed25519"
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.namespaces: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------
    def start(self) -> LabHost:
        try:
            self._rootfs()
            self._network()
            self._sshd()
            self._forwarder()
            self._wait_for_ssh()
        except BaseException:
            self.close()
            raise
        return self

    def _rootfs(self) -> None:
        self.root.mkdir(parents=True)
        sh("tar", "-C", str(self.root), "--numeric-owner", "-xf", str(rootfs_tarball(self.suite)),
           timeout=300)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        sh("chroot", str(self.root), "useradd", "--create-home", "--shell", "/bin/bash", USER)
        ssh_dir = self.root / "home" / USER / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        sh("chroot", str(self.root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh")
        sudoers = self.root / "etc" / "sudoers.d" / USER
        sudoers.write_text(f"{USER} ALL=(ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        (self.root / "etc" / "hostname").write_text("xenlab-test\n")
        # sudo resolves its own host name; with no DNS here that would hang until a timeout.
        with open(self.root / "etc" / "hosts", "a") as hosts:
            hosts.write("127.0.1.1 xenlab-test\n")
        # No services start inside the image build (debootstrap's policy); here they may.
        (self.root / "usr" / "sbin" / "policy-rc.d").unlink(missing_ok=True)

    @property
    def host_key(self) -> str:
        pub = (self.root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
        return f"{pub[0]} {pub[1]}"

    def _network(self) -> None:
        for ns in (self.ns_host, self.ns_user, self.ns_wan):
            sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        tag = self.ns_host[3:9]
        pairs = [
            (f"xa{tag}", self.ns_host, "eth0", None, f"xb{tag}", self.ns_wan, "wan0"),
            (f"xc{tag}", self.ns_host, "eth1", UPLINK_MAC, f"xd{tag}", self.ns_user, "vboxnet0"),
        ]
        for a, ns_a, name_a, mac_a, b, ns_b, name_b in pairs:
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", ns_a, "name", name_a)
            sh("ip", "link", "set", b, "netns", ns_b, "name", name_b)
            if mac_a:
                sh("ip", "-n", ns_a, "link", "set", name_a, "address", mac_a)
        sh("ip", "-n", self.ns_wan, "addr", "add", "10.0.2.2/24", "dev", "wan0")
        sh("ip", "-n", self.ns_wan, "link", "set", "wan0", "up")
        sh("ip", "-n", self.ns_host, "addr", "add", "10.0.2.15/24", "dev", "eth0")
        sh("ip", "-n", self.ns_host, "link", "set", "eth0", "up")
        sh("ip", "-n", self.ns_host, "route", "add", "default", "via", "10.0.2.2")
        sh("ip", "-n", self.ns_user, "addr", "add", "192.168.77.1/24", "dev", "vboxnet0")
        sh("ip", "-n", self.ns_user, "link", "set", "vboxnet0", "up")

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{Path(cmd[0]).name}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def _sshd(self) -> None:
        boot = ("mount -t proc proc /proc && mount -t sysfs sysfs /sys && "
                "mount -t tmpfs -o mode=755 tmpfs /run && mkdir -p /run/sshd /run/network && "
                "hostname xenlab-test && exec /usr/sbin/sshd -D -e")
        self._spawn(["ip", "netns", "exec", self.ns_host, "unshare", "--mount", "--pid", "--uts",
                     "--fork", "--kill-child", "chroot", str(self.root), "/bin/sh", "-c", boot])

    def _forwarder(self) -> None:
        self._spawn(["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
                     f"EXEC:ip netns exec {self.ns_host} socat STDIO TCP4\\:127.0.0.1\\:22"])

    def _wait_for_ssh(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args!r} exited early; see logs in {self.workdir}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"sshd did not answer within {timeout} s; logs in {self.workdir}")

    # -- use ------------------------------------------------------------------------------------
    def in_user_ns(self, *cmd: str, check: bool = True,
                   timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns_user, *cmd, check=check, timeout=timeout)

    # -- tear-down ------------------------------------------------------------------------------
    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)
        self.procs.clear()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
        shutil.rmtree(self.root, ignore_errors=True)
