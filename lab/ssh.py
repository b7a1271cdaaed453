"""How xenlab reaches the lab host: one ssh-config that OpenSSH (Ansible, testinfra's ssh backend)
and paramiko (uploads) all read, and a known_hosts file holding the pinned host key.

The host key is pinned once: taken from the provider when it knows it (the QEMU provider generates
the key itself); on first contact with a VM xenlab just made (Vagrant), trusted on first use and
printed with its fingerprint; on first contact with an existing host (someone's server), only when
the user has vouched for that fingerprint. After that every connection, from every tool, refuses a
different key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab import ui
from lab.errors import die

if TYPE_CHECKING:
    import paramiko

HOST_ALIAS = "xenlab"


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    user: str
    identity: Path
    host_key: str | None = None  # "ssh-ed25519 AAAA..." when the provider knows it
    # An existing host, not a VM xenlab just made: its key is pinned on first contact only when
    # it matches the fingerprint the user vouched for (`xenlab up --trust-host-key`).
    vouched: bool = False

    @classmethod
    def from_ssh_config(cls, text: str) -> SshTarget:
        """From `vagrant ssh-config` output (the first Host block)."""
        values: dict[str, str] = {}
        for line in text.splitlines():
            m = re.match(r"\s*(\w+)\s+(.*?)\s*$", line)
            if m:
                key = m.group(1).lower()
                values.setdefault(key, m.group(2).strip('"'))
        try:
            return cls(values["hostname"], int(values.get("port", "22")), values["user"],
                       Path(values["identityfile"]))
        except KeyError as exc:
            die(f"ssh-config from the provider has no {exc.args[0]}", hint="run `xenlab up` again")

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class SshFiles:
    config: Path
    known_hosts: Path

    @classmethod
    def in_dir(cls, state: Path) -> SshFiles:
        return cls(state / "ssh_config", state / "known_hosts")

    @classmethod
    def owned(cls, state: Path) -> list[Path]:
        """A new VM has a new host key: none of these outlive the VM they describe."""
        files = cls.in_dir(state)
        return [files.config, files.known_hosts]

    def ssh_argv(self) -> list[str]:
        return ["ssh", "-F", str(self.config), HOST_ALIAS]

    def ssh_line(self) -> str:
        """The command a user types to reach the lab host."""
        import shlex

        return shlex.join(self.ssh_argv())


def fingerprint(key_line: str) -> str:
    blob = base64.b64decode(key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def fetch_host_key(host: str, port: int, timeout: float = 10.0) -> str:
    """The server's host key, read from the SSH handshake (no authentication attempted)."""
    import socket

    import paramiko

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        die(f"cannot reach the lab host's SSH at {host}:{port}: {exc.strerror or exc}",
            hint="is the lab VM running? `xenlab status`")
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    except (paramiko.SSHException, EOFError) as exc:
        die(f"SSH handshake with {host}:{port} failed: {exc}", hint="is the lab VM booted?")
    finally:
        transport.close()


# Where Debian's sshd keeps each kind of host key, for the hint that tells the user how to
# verify a fingerprint on the host itself.
_HOST_KEY_FILES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ecdsa-sha2-nistp256": "ecdsa"}


def write_files(target: SshTarget, files: SshFiles, trust: Collection[str] = ()) -> None:
    """Write the ssh-config, and pin the host key unless one is pinned already.
    trust: the fingerprints (SHA256:...) the user vouched for; needed for a vouched target."""
    files.config.parent.mkdir(parents=True, exist_ok=True)
    pinned = read_pinned(files, target)
    if pinned is None:
        key = target.host_key
        how = "from the provider"
        if key is None:
            key = fetch_host_key(target.host, target.port)
            how = "on first contact"
        if target.vouched:
            _vouched_for(target, key, trust)
            how = "as you vouched for it"
        files.known_hosts.write_text(f"{target.known_hosts_name} {key}\n")
        files.known_hosts.chmod(0o600)
        ui.info(f"pinned the lab host's key {how}: {fingerprint(key)}")
    elif target.host_key is not None and pinned.split()[:2] != target.host_key.split()[:2]:
        die(f"the lab host's key from the provider differs from the one pinned in {files.known_hosts}",
            hint="if you rebuilt the lab on purpose, `xenlab destroy` first; otherwise investigate")
    config = "\n".join([
        f"Host {HOST_ALIAS}",
        f"  HostName {target.host}",
        f"  Port {target.port}",
        f"  User {target.user}",
        f"  IdentityFile {shlex.quote(str(target.identity))}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {shlex.quote(str(files.known_hosts))}",
        "  StrictHostKeyChecking yes",
        "  HashKnownHosts no",
        "  PasswordAuthentication no",
        "  LogLevel ERROR",
        "  ServerAliveInterval 15",
        "  ConnectTimeout 20",
        "",
    ])
    files.config.write_text(config)
    files.config.chmod(0o600)


def _vouched_for(target: SshTarget, key: str, trust: Collection[str]) -> None:
    """Stop unless the key the host presented has a fingerprint the user vouched for."""
    seen = fingerprint(key)
    vouched = [t.strip() for t in trust if t.strip()]
    if seen in vouched:
        return
    kind = _HOST_KEY_FILES.get(key.split()[0], "ed25519")
    verify = f"on the host: ssh-keygen -lf /etc/ssh/ssh_host_{kind}_key.pub"
    where = f"{target.host}:{target.port}"
    if vouched:
        die(f"{where} presented host key {seen}, not {' or '.join(vouched)} as you vouched: "
            "nothing pinned",
            hint=f"someone may be in the way; compare {verify}")
    die(f"{where} is not a host xenlab knows; its {key.split()[0]} host key is {seen}",
        hint=f"check that fingerprint {verify}, then `xenlab up --trust-host-key {seen}`")


def read_pinned(files: SshFiles, target: SshTarget) -> str | None:
    if not files.known_hosts.exists():
        return None
    for line in files.known_hosts.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == target.known_hosts_name:
            return " ".join(parts[1:3])
    return None


@functools.cache
def _quiet_paramiko() -> None:
    """paramiko's transport thread logs its own tracebacks; xenlab reports failures itself."""
    import logging

    logging.getLogger("paramiko").addHandler(logging.NullHandler())


def connect(files: SshFiles, target: SshTarget) -> paramiko.SSHClient:
    """A paramiko client that accepts only the pinned host key."""
    import paramiko

    _quiet_paramiko()
    client = paramiko.SSHClient()
    client.load_host_keys(str(files.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(target.host, port=target.port, username=target.user,
                       key_filename=str(target.identity), look_for_keys=False, allow_agent=False,
                       timeout=20)
    except paramiko.BadHostKeyException:
        die("the lab host presented a different SSH host key than the pinned one",
            hint=f"if the lab was rebuilt on purpose: `xenlab destroy`; pinned in {files.known_hosts}")
    except (paramiko.SSHException, OSError) as exc:
        die(f"cannot SSH to the lab host: {exc}", hint="`xenlab status`; `xenlab up` to start it")
    return client
