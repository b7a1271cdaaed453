"""The QEMU provider's base image: Debian (the lab's release, lab/releases.py) on a GRUB-bootable
disk, built once from Debian's packages and cached; each lab boots a copy-on-write overlay of it.

It boots like a real machine (firmware -> GRUB on the disk -> default entry). It carries the
packages the playbook installs (Xen, dnsmasq, bridge tools, nftables), so provisioning and
rebuilding a lab download nothing; the playbook still does all the configuring. Per-lab secrets
(the SSH host key and the user's key) are not in it: a seed disk delivers them at boot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lab import lab_host, run, ui
from lab.errors import die
from lab.releases import Release

MIRROR = os.environ.get("XENLAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("XENLAB_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
USER = "xenlab"
DISK_SIZE = "8G"
BASE_PACKAGES = [
    "systemd-sysv", "udev", "dbus", "kmod", "linux-image-amd64", "openssh-server", "sudo", "python3",
    "python3-apt", "ifupdown", "isc-dhcp-client", "iproute2", "procps", "iputils-ping",
    "ca-certificates", "less",
]
# Installed after the bootloader setup, in the booted-like chroot (their scripts call update-grub):
# GRUB and what the roles install, so that provisioning finds them there.
LATE_PACKAGES = ["grub-pc", *(p for p in lab_host.packages() if p not in BASE_PACKAGES)]
RECIPE_VERSION = "5"

SEED_SERVICE = """\
[Unit]
Description=xenlab: install this lab's SSH keys from the seed disk
DefaultDependencies=no
After=local-fs.target systemd-udev-settle.service
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/xenlab-seed
# Its messages belong in the serial console log (.xenlab/console.log) too.
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

SEED_SCRIPT = f"""\
#!/bin/sh
# Installs the lab's own SSH host key and authorized key from the seed disk (a tar archive on
# a virtio disk with serial xenlab-seed), so no two labs share keys and xenlab can pin the host
# key before it ever connects.
set -eux
dev=/dev/disk/by-id/virtio-xenlab-seed
i=0
while [ ! -b "$dev" ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
if [ ! -b "$dev" ]; then echo "xenlab-seed: no seed disk"; exit 0; fi
# /run, not /tmp: this runs before /tmp is set up, and whatever is mounted there later hides it.
d=$(mktemp -d /run/xenlab-seed.XXXXXX)
tar -xf "$dev" -C "$d"
install -d -m 700 -o {USER} -g {USER} /home/{USER}/.ssh
install -m 600 -o {USER} -g {USER} "$d/authorized_keys" /home/{USER}/.ssh/authorized_keys
install -m 600 "$d/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 644 "$d/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
rm -rf "$d"
"""

GRUB_DEFAULTS = """\
# xenlab base image: serial console (QEMU's is captured to .xenlab/console.log) and classic NIC
# names (eth0 = NAT NIC, eth1 = host-only NIC), kept by every later update-grub.
GRUB_DEFAULT=0
# Plain Linux first: the playbook makes Xen the default and reboots into it (Debian's xen.cfg
# would otherwise switch the default as soon as the package is installed).
XEN_OVERRIDE_GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX="net.ifnames=0 biosdevname=0"
GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0,115200"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
"""


FIRST_BOOT_MENU = """\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry "Debian GNU/Linux (xenlab base image, first boot)" {
    insmod part_msdos
    insmod ext2
    search --no-floppy --label --set=root xenlab-root
    linux /vmlinuz root=LABEL=xenlab-root ro net.ifnames=0 biosdevname=0 console=ttyS0,115200
    initrd /initrd.img
}
"""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "xenlab"


def recipe_key(release: Release) -> str:
    text = "\n".join([RECIPE_VERSION, release.apt_sources(MIRROR, SECURITY_MIRROR), *BASE_PACKAGES,
                      "--", *LATE_PACKAGES, SEED_SERVICE, SEED_SCRIPT, GRUB_DEFAULTS, FIRST_BOOT_MENU])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def base_path(release: Release) -> Path:
    return cache_dir() / f"base-{release.suite}-{recipe_key(release)}.qcow2"


def base_ok(path: Path) -> bool:
    if not path.is_file():
        return False
    r = run.run(["qemu-img", "check", "-q", path], check=False)
    return r.returncode == 0


def ensure_base(release: Release) -> Path:
    """The cached base image, built (or rebuilt when corrupt) if needed."""
    path = base_path(release)
    if base_ok(path):
        return path
    if path.exists():
        ui.warn(f"base image {path} is corrupt: rebuilding it")
        path.unlink()
    if os.geteuid() != 0:
        die("building the QEMU base image needs root (loop devices, chroot)",
            hint="run `sudo xenlab up` once; later labs reuse the cached image")
    with ui.step(f"Building the base image ({release.name}, once; cached in {path.parent})"):
        build(path, release)
    return path


PART_OFFSET = 2048 * 512


@contextlib.contextmanager
def _loop(raw: Path, *options: str) -> Iterator[str]:
    # Partition loop devices (losetup -P) need udev or a kernel that makes the nodes, which
    # containers often lack; an offset loop device for the partition works everywhere.
    dev = run.run(["losetup", "--find", "--show", *options, raw], what="losetup").stdout.strip()
    try:
        yield dev
    finally:
        run.run(["losetup", "--detach", dev], check=False)


@contextlib.contextmanager
def _mounted(dev: str, target: Path) -> Iterator[Path]:
    run.run(["mount", dev, target], what=f"mount {dev}")
    binds: list[Path] = []
    try:
        for sub, how in (("dev", ["--bind", "/dev"]), ("dev/pts", ["--bind", "/dev/pts"]),
                         ("proc", ["-t", "proc", "proc"]), ("sys", ["-t", "sysfs", "sysfs"])):
            yield_target = target / sub
            if yield_target.is_dir():
                run.run(["mount", *how, yield_target], what=f"mount {sub}")
                binds.append(yield_target)
        yield target
    finally:
        for b in reversed(binds):
            run.run(["umount", "--lazy", b], check=False)
        run.run(["umount", target], check=False)


def _chroot(root: Path, *cmd: str, what: str, env: dict[str, str] | None = None) -> None:
    run.run(["chroot", root, *cmd], what=what, timeout=1800,
            env={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", **(env or {})})


def build(target: Path, release: Release) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="xenlab-base-", dir=target.parent))
    try:
        raw = work / "disk.raw"
        run.run(["truncate", "--size", DISK_SIZE, raw])
        run.run(["sfdisk", "--quiet", raw], input="label: dos\nstart=2048, type=83, bootable\n",
                what="sfdisk")
        with _loop(raw) as dev, _loop(raw, "--offset", str(PART_OFFSET)) as part:
            run.run(["mkfs.ext4", "-q", "-L", "xenlab-root", part], what="mkfs.ext4")
            mnt = work / "mnt"
            mnt.mkdir()
            run.run(["mount", part, mnt], what="mount")
            try:
                with ui.step("debootstrap"):
                    run.run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
                             f"--include={','.join(BASE_PACKAGES)}", release.suite, mnt, MIRROR],
                            what="debootstrap", timeout=3600,
                            hint="is Debian's mirror reachable? (XENLAB_DEBIAN_MIRROR)")
            finally:
                run.run(["umount", mnt], check=False)
            with _mounted(part, mnt) as root, ui.step("bootloader, Xen and lab packages"):
                _configure(root, dev, release)
        with ui.step("compressing into the cache"):
            tmp = target.with_suffix(".tmp")
            run.run(["qemu-img", "convert", "-O", "qcow2", raw, tmp], what="qemu-img convert")
            tmp.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    p = root / rel.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)


def _configure(root: Path, disk: str, release: Release) -> None:
    # The security suite too: Debian's security-supported Xen is only there, and a lab host
    # that never gets security updates is not what anyone expects of one.
    _write(root, "/etc/apt/sources.list", release.apt_sources(MIRROR, SECURITY_MIRROR))
    _write(root, "/etc/hostname", "xenlab\n")
    _write(root, "/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 xenlab\n")
    _write(root, "/etc/fstab", "LABEL=xenlab-root / ext4 errors=remount-ro 0 1\n")
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    _write(root, "/etc/network/interfaces",
           "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
           "# NIC 1: the NAT NIC (SSH is forwarded to it from the host's loopback).\n"
           "allow-hotplug eth0\niface eth0 inet dhcp\n")
    _write(root, "/etc/default/grub", GRUB_DEFAULTS)
    _write(root, "/etc/systemd/system/xenlab-seed.service", SEED_SERVICE)
    _write(root, "/usr/local/sbin/xenlab-seed", SEED_SCRIPT, 0o755)
    _write(root, f"/etc/sudoers.d/{USER}", f"{USER} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    # Only the per-lab key from the seed disk: the keys made at package install are shared by
    # every lab built from this image, so they go.
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root, "/etc/ssh/sshd_config.d/xenlab.conf",
           "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nUseDNS no\n")
    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", USER, what="useradd")
    _chroot(root, "systemctl", "enable", "xenlab-seed.service", what="systemctl enable")
    preseed = f"grub-pc grub-pc/install_devices multiselect {disk}\n"
    _write(root, "/tmp/preseed", preseed)
    _chroot(root, "debconf-set-selections", "/tmp/preseed", what="debconf-set-selections")
    _chroot(root, "apt-get", "update", "-qq", what="apt-get update")
    _chroot(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *LATE_PACKAGES,
            what="apt-get install (grub, xen, lab packages)")
    # The root file system sits on a second (offset) loop device, so grub-install cannot see it
    # as a partition of `disk`: name the modules core.img needs to find it by UUID.
    _chroot(root, "grub-install", "--target=i386-pc", "--modules=part_msdos ext2 search_fs_uuid",
            disk, what="grub-install")
    # grub-mkconfig writes no Linux entries when / is a loop device, so the first boot uses this
    # hand-written menu; the playbook's update-grub, run in the VM, replaces it with the full one.
    _write(root, "/boot/grub/grub.cfg", FIRST_BOOT_MENU)
    _chroot(root, "apt-get", "clean", what="apt-get clean")
    (root / "tmp" / "preseed").unlink()
    # Services the playbook starts itself, with the lab's configuration, not the package's.
    _chroot(root, "systemctl", "disable", "dnsmasq.service", what="systemctl disable dnsmasq")
