"""The folder the user's machine shares with the lab host, so deploys copy nothing over SSH.

Vagrant's synced folder, the QEMU way: the state directory's `share/` is a virtio-9p device of
the lab VM, mounted in dom0 at lab_host.SHARE_MOUNT when a deploy first needs it (so it survives
nothing and needs nothing: no role, no boot-time unit). Deploy copies kernels and images into it (sha256-
skipped, written to a temporary name and renamed, so a guest never boots a truncated file) and
the lab copy of the .xl file points there. Where no share is mounted (VirtualBox, a lab VM
started by an older xenlab), or `share = false`, deploy uploads over SSH and says so.

A random id written beside the files, and read back by the lab host, proves that what dom0 has
mounted is this lab's folder and not another lab's, before any path is trusted.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from lab import lab_host
from lab.remote import sha256_file

LOCAL = "share"  # under the state directory
TAG = "xenlab-share"  # the 9p mount tag
_ID = ".xenlab-share-id"


def ensure(state_dir: Path) -> Path:
    """The share's directory on this machine, with its id; made before the VM starts."""
    root = state_dir / LOCAL
    (root / "domains").mkdir(parents=True, exist_ok=True)
    if not (root / _ID).exists():
        (root / _ID).write_text(secrets.token_hex(16) + "\n")
    return root


def local_id(state_dir: Path) -> str | None:
    try:
        return (state_dir / LOCAL / _ID).read_text().strip()
    except OSError:
        return None


def id_file() -> str:
    """Where the lab host reads the id of the share it has mounted."""
    return f"{lab_host.SHARE_MOUNT}/{_ID}"


def lab_directory(name: str) -> str:
    """Where the lab host sees domain name's files in the share."""
    return f"{lab_host.SHARE_MOUNT}/domains/{name}"


def place(state_dir: Path, name: str, fname: str, source: Path, sha256: str) -> bool:
    """Put source in the share for domain name; False when the same bytes are there already."""
    directory = state_dir / LOCAL / "domains" / name
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / fname
    if target.is_file() and sha256_file(target) == sha256:
        return False
    tmp = directory / f".{fname}.{os.getpid()}.tmp"
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def forget(state_dir: Path, name: str) -> None:
    shutil.rmtree(state_dir / LOCAL / "domains" / name, ignore_errors=True)


def owned(state_dir: Path) -> list[Path]:
    """The share belongs to one lab VM (its id proves which): destroy removes it."""
    return [state_dir / LOCAL]
