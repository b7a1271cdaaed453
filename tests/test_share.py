"""The local side of the shared folder: what deploy puts there, when it copies, and what it never
leaves behind. The lab host's side (the 9p mount, the id check, guests booting from it) is in the
QEMU tier."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lab import share
from lab.remote import sha256_file


def test_the_id_is_made_once_and_proves_the_folder(tmp_path: Path) -> None:
    assert share.local_id(tmp_path) is None  # no share: deploy goes over SSH
    root = share.ensure(tmp_path)
    first = share.local_id(tmp_path)
    assert first and len(first) == 32
    share.ensure(tmp_path)
    assert share.local_id(tmp_path) == first
    assert share.local_id(tmp_path / "other") is None
    assert share.owned(tmp_path) == [root]


def test_a_copy_is_made_only_when_the_bytes_differ(tmp_path: Path) -> None:
    share.ensure(tmp_path)
    kernel = tmp_path / "unikernel.xen"
    kernel.write_bytes(os.urandom(300_000))
    assert share.place(tmp_path, "web", "unikernel.xen", kernel, sha256_file(kernel)) is True
    target = tmp_path / "share" / "domains" / "web" / "unikernel.xen"
    inode = target.stat().st_ino
    assert share.place(tmp_path, "web", "unikernel.xen", kernel, sha256_file(kernel)) is False
    assert target.stat().st_ino == inode  # untouched, not rewritten
    os.truncate(target, 4096)  # as a crash would leave a file written in place (place never does)
    assert share.place(tmp_path, "web", "unikernel.xen", kernel, sha256_file(kernel)) is True
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha256_file(kernel)
    assert target.stat().st_ino != inode  # a new file renamed into place: a running guest's stays whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["unikernel.xen"]  # no temporary left
    assert f"{share.lab_directory('web')}/unikernel.xen" == "/var/lib/xenlab/share/domains/web/unikernel.xen"
    share.forget(tmp_path, "web")
    assert not target.parent.exists()
