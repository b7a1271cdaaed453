"""Provisioned lab disks, cached, so that a new lab goes straight to Xen.

After the first complete provisioning of a lab made from the base image, the lab's disk (its
copy-on-write layer over the base: Xen the default boot entry, every role applied, the converged
record) is kept in the cache, keyed by the base image's recipe and the provisioning fingerprint
(the playbook, the roles and the variables they read; lab/converged.py). A new lab whose key
matches starts from it. What is particular to one lab is not in it: the SSH host key is moved
out while the copy is taken, and the seed disk installs the new lab's keys at every boot.

The copy is taken live: QEMU's backup job copies the layer as it was at one instant, with the
guest's root file system frozen for that instant, so the lab does not reboot for it. It is
written under a temporary name and renamed when complete and checked: an interrupted or corrupt
entry is never used. Labs hold a hard link to the entry they started from, so pruning the cache
(the last KEEP entries stay) never pulls a disk from under a lab.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from lab import run, ui
from lab.config import LabConfig
from lab.errors import die
from lab.providers import qemu_image
from lab.providers.qmp import Qmp
from lab.releases import Release
from lab.remote import Remote, ShellScript

KEEP = 3
PREFIX = "provisioned-"
# The drive's id on QEMU's command line (lab/providers/qemu.py).
DRIVE = "root"
BACKUP_TIMEOUT = 600

# Holds the lab host still while QEMU's backup job starts: this lab's host key moved aside (to
# /run, a tmpfs), everything written out, / frozen; then waits for a line (or 120 s, or the
# connection's end) and puts everything back, whatever happened.
_FREEZE = ShellScript(r"""
key=/etc/ssh/ssh_host_ed25519_key
keep=$(mktemp -d /run/xenlab-cache.XXXXXX) || exit 1
restore() {
  fsfreeze --unfreeze / 2>/dev/null
  for f in "$keep"/*; do [ -e "$f" ] && mv "$f" /etc/ssh/; done
  rmdir "$keep"
}
trap restore EXIT
for f in "$key" "$key.pub"; do [ -e "$f" ] && mv "$f" "$keep/"; done
sync
fsfreeze --freeze / || exit 1
echo frozen
timeout 120 head -n 1 >/dev/null
""", name="xenlab-cache-freeze")


def entry(recipe: str, release: Release) -> Path:
    return qemu_image.cache_dir() / f"{PREFIX}{qemu_image.recipe_key(release)}-{recipe[:16]}.qcow2"


def key(config: LabConfig) -> str:
    """What the cache entries a QEMU lab with these settings would use are keyed on (the base
    image's recipe, the provisioning fingerprint): the key for a CI system's cache of the cache
    directory, which holds them when it is right and is rebuilt when they would not be used."""
    from lab import converged
    from lab.providers.qemu import Qemu
    from lab.releases import RELEASES

    _, stamp = converged.provisioning(config, Qemu(config, Path(config.state_dir)).facts(), ())
    return f"{qemu_image.recipe_key(RELEASES[config.release])}-{stamp[:16]}"


def find(recipe: str, release: Release) -> Path | None:
    """The complete, sound entry for recipe over release's base image, if there is one."""
    path = entry(recipe, release)
    return path if qemu_image.base_ok(path) else None


def pin(cached: Path, lab_dir: Path) -> Path:
    """The lab's own name for the entry it starts from: a hard link (a copy across file systems)."""
    own = lab_dir / "provisioned.qcow2"
    own.unlink(missing_ok=True)
    try:
        os.link(cached, own)
    except OSError:
        shutil.copyfile(cached, own)
    return own


def store(recipe: str, release: Release, remote: Remote, qmp_socket: Path) -> Path:
    """Copy the running lab's disk layer into the cache as the entry for recipe."""
    final = entry(recipe, release)
    tmp = final.with_name(f"{final.name}.{os.getpid()}.tmp")
    try:
        copy_layer(qmp_socket, tmp, qemu_image.base_path(release), lambda start: remote.run_paused(
            _FREEZE, "frozen", start, sudo=True, what="freezing the lab's file system for the copy"))
        if not qemu_image.base_ok(tmp):
            die(f"the copy of the lab disk in {tmp} does not pass `qemu-img check`")
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    prune()
    return final


def copy_layer(qmp_socket: Path, target: Path, base: Path,
               hold: Callable[[Callable[[], None]], object]) -> None:
    """The top layer of the running VM's disk, as it was when the copy started, into target (a
    new qcow2 file over the same base image). hold(start) calls start() while the guest holds
    still: the copy's point in time is the job's start."""
    run.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, target],
            what="qemu-img create (cache entry)", hint="is the disk full?")
    job = f"xenlab-cache-{os.getpid()}"
    with Qmp(qmp_socket) as qmp:
        hold(lambda: qmp.execute("drive-backup", **{
            "job-id": job, "device": DRIVE, "target": str(target), "format": "qcow2",
            "sync": "top", "mode": "existing"}))
        done = qmp.wait_event("BLOCK_JOB_COMPLETED", BACKUP_TIMEOUT, device=job)
    if done.get("error"):
        die(f"QEMU's copy of the lab disk failed: {done['error']}")


def entries() -> list[Path]:
    return sorted(qemu_image.cache_dir().glob(f"{PREFIX}*.qcow2"), key=lambda p: p.stat().st_mtime)


def prune(keep: int = KEEP) -> None:
    """The newest `keep` entries stay; temporary files of writes that died an hour ago go."""
    for old in entries()[:-keep] if keep else entries():
        old.unlink(missing_ok=True)
        ui.detail(f"pruned {old.name} from the cache")
    for stale in qemu_image.cache_dir().glob(f"{PREFIX}*.tmp"):
        if time.time() - stale.stat().st_mtime > 3600:
            stale.unlink(missing_ok=True)


def usage() -> dict[str, object]:
    """What the cache holds, for `xenlab status`."""
    root = qemu_image.cache_dir()
    used = 0
    # Another xenlab (or a test) may be writing into the cache: a file gone by the time it is
    # measured is simply not counted.
    for p in root.rglob("*") if root.is_dir() else []:
        with contextlib.suppress(OSError):
            if p.is_file():
                used += p.stat().st_blocks * 512
    return {"dir": str(root), "provisioned_images": len(entries()),
            "base_images": len(list(root.glob("base-*.qcow2"))), "mib": round(used / 2**20)}
