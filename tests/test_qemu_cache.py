"""The provisioned-disk cache with real qemu-img, qemu-io and a real (paused) QEMU: what a key
depends on, that half-written and corrupt entries are never used, that pruning never takes a
disk from a lab, and that the live copy is the VM's top layer at the moment it started.

The lab host's side of a copy (the frozen file system) is exercised by the QEMU tier."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lab import converged, resources
from lab.providers import qemu_cache, qemu_image
from lab.releases import DEFAULT, RELEASES

RELEASE = RELEASES[DEFAULT]

pytestmark = pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="./install.sh")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache with a small base image in it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    base = qemu_image.base_path(RELEASE)
    base.parent.mkdir(parents=True)
    qcow2(base, size="64M")
    io(base, "write -P 0x11 0 1M")
    return base.parent


def qcow2(path: Path, backing: Path | None = None, size: str = "") -> Path:
    args = ["-F", "qcow2", "-b", str(backing)] if backing else []
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *args, str(path), *([size] if size else [])],
                   check=True)
    return path


def io(path: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)],
                          capture_output=True, text=True)


def test_the_key_follows_the_roles_and_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    cache: Path) -> None:
    copy = tmp_path / "share"
    for part in ("playbooks", "roles"):
        shutil.copytree(resources.root() / part, copy / part)
    monkeypatch.setattr(resources, "root", lambda: copy)
    first = qemu_cache.entry(converged.fingerprint({"lab_bridge": "br0"}, ()), RELEASE)
    assert first == qemu_cache.entry(converged.fingerprint({"lab_bridge": "br0"}, ()), RELEASE)
    assert first != qemu_cache.entry(converged.fingerprint({"lab_bridge": "br1"}, ()), RELEASE)
    defaults = copy / "roles" / "lab_dhcp" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text() + "# changed\n")
    assert first != qemu_cache.entry(converged.fingerprint({"lab_bridge": "br0"}, ()), RELEASE)


def test_half_written_and_corrupt_entries_are_never_used(cache: Path) -> None:
    recipe = "a" * 64
    final = qemu_cache.entry(recipe, RELEASE)
    qcow2(final.with_name(f"{final.name}.4242.tmp"), cache / next(cache.glob("base-*")).name)
    assert qemu_cache.find(recipe, RELEASE) is None  # a write that never finished has no final name
    whole = qcow2(tmp := cache / "whole.qcow2", qemu_image.base_path(RELEASE))
    io(whole, "write -P 0x22 0 4M")
    final.write_bytes(whole.read_bytes()[:70000])  # cut short: as a crash mid-copy leaves it
    assert qemu_cache.find(recipe, RELEASE) is None
    tmp.replace(final)
    assert qemu_cache.find(recipe, RELEASE) == final


def test_pruning_keeps_the_newest_and_never_a_labs_disk(tmp_path: Path, cache: Path) -> None:
    made = []
    for i in range(5):
        path = qcow2(qemu_cache.entry(str(i) * 64, RELEASE), qemu_image.base_path(RELEASE))
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        made.append(path)
    lab = tmp_path / "lab"
    lab.mkdir()
    pinned = qemu_cache.pin(made[0], lab)
    qemu_cache.prune()
    assert qemu_cache.entries() == made[-qemu_cache.KEEP:]
    assert qemu_image.base_ok(pinned)  # the oldest entry left the cache, not the lab
    assert qemu_cache.usage()["provisioned_images"] == qemu_cache.KEEP


def test_the_live_copy_is_the_top_layer_at_its_start(tmp_path: Path, cache: Path) -> None:
    disk = qcow2(tmp_path / "disk.qcow2", qemu_image.base_path(RELEASE))
    assert io(disk, "write -P 0xaa 2M 64k").returncode == 0
    sock = tmp_path / "qmp.sock"
    # Paused (-S): no guest runs, the block layer does; the drive as the lab VM declares it.
    vm = subprocess.Popen(["qemu-system-x86_64", "-S", "-nodefaults", "-display", "none",
                           "-drive", f"file={disk},if=none,id={qemu_cache.DRIVE},format=qcow2",
                           "-qmp", f"unix:{sock},server=on,wait=off"])
    try:
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        target = tmp_path / "entry.qcow2"
        started = []
        qemu_cache.copy_layer(sock, target, qemu_image.base_path(RELEASE),
                              lambda start: (start(), started.append(True)))
        assert started == [True]
    finally:
        vm.send_signal(signal.SIGTERM)
        vm.wait(timeout=30)
    assert io(target, "read -P 0xaa 2M 64k").returncode == 0  # the layer's own data
    assert io(target, "read -P 0x11 0 1M").returncode == 0  # the base's, through its backing file
    info = subprocess.run(["qemu-img", "info", "--output=json", str(target)], capture_output=True,
                          text=True, check=True).stdout
    assert str(qemu_image.base_path(RELEASE)) in info
    # Only the layer was copied: the entry holds the 64 KiB written, not the base's 1 MiB.
    extents = json.loads(subprocess.run(["qemu-img", "map", "--output=json", str(target)],
                                        capture_output=True, text=True, check=True).stdout)
    own = [(e["start"], e["length"]) for e in extents if e["depth"] == 0 and e["data"]]
    assert own == [(2 * 2**20, 64 * 2**10)], extents
    assert subprocess.run(["qemu-img", "compare", str(disk), str(target)]).returncode == 0
