"""A Debian root filesystem (of a release in lab/releases.py) that plays the lab VM in provisioning
tests.

Built once with debootstrap from Debian's mirror and cached under ~/.cache/xenlab (keyed by the
recipe, so a changed package list rebuilds); a test copies nothing, it boots the cached tree
read-write inside its own namespaces and resets the files the playbook writes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from lab import lab_host

MIRROR = os.environ.get("XENLAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"  # the default host: the QEMU tier runs Debian 13 (the default lab) for real
# What a Vagrant Debian box has (ssh, python3 with apt bindings, sudo, ifupdown) plus what the
# playbook installs, so provisioning runs offline inside the namespaces.
PACKAGES = [
    "openssh-server", "python3", "python3-apt", "sudo", "iproute2", "procps", "kmod", "iputils-ping",
    *lab_host.packages(),
    # what a stock Debian 12 has for install.sh's Python part (tests/integration/test_install.py)
    "python3-venv",
]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "xenlab"


def recipe_key(suite: str = SUITE) -> str:
    return hashlib.sha256(f"{MIRROR} {suite} {' '.join(PACKAGES)} v2".encode()).hexdigest()[:12]


def rootfs_tarball(suite: str = SUITE) -> Path:
    """The cached pristine rootfs as a tarball; built on first use (~2-4 minutes)."""
    target = cache_dir() / f"testhost-{suite}-{recipe_key(suite)}.tar"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.with_suffix(".build")
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                    suite, str(work), MIRROR], check=True, capture_output=True)
    tmp = target.with_suffix(".tmp")
    subprocess.run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(tmp), "."], check=True)
    tmp.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    return target
