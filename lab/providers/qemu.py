"""The lab VM in QEMU, run and supervised by xenlab itself: no VirtualBox, no Vagrant.

NIC 1 is user-mode networking with SSH forwarded to a free loopback port (Vagrant's NAT NIC);
NIC 2 is a tap device on the host-only network, holding the host side address (.1), optionally
inside a named network namespace. KVM is used when it really works, else TCG with the CPU flags
Xen needs (-smap: dom0 page faults in create_bounce_frame; -rdtscp: PVH guests hang).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from lab import run, ui
from lab import share as lab_share
from lab.checks.facts import UNIKERNEL_CPU_FLAGS
from lab.config import LabConfig
from lab.errors import LabError, die
from lab.providers import ProviderFacts, VmStatus, accel, qemu_cache, qemu_image
from lab.providers.qmp import Qmp
from lab.releases import RELEASES, Release
from lab.remote import Remote
from lab.ssh import SshTarget

NAT_MAC = "52:54:00:12:34:56"
LAB_MAC = "52:54:00:77:00:02"
# Not "max": with it (even minus SMAP, which crashes dom0 at once, and RDTSCP, which hangs PVH)
# dom0 processes under Xen segfault now and then while guests are created (sshd "Corrupted MAC
# on input", heap corruption in udevd); measured 1 crash in 3 two-guest create cycles with max,
# none with qemu64. On top of qemu64, what today's unikernels need from any laptop's CPU (see
# UNIKERNEL_CPU_NEEDS; QEMU spells sse4_1 as sse4.1); SVM and NPT give Xen `hvm` and `hap`, which
# PVH guests (MirageOS 4) need. Stability: bench/bench_guest_cycles.py, bench/boot_table.md.
TCG_CPU = ",".join(["qemu64", "+svm", "+npt",
                    *(f"+{f.replace('_', '.')}" for f in UNIKERNEL_CPU_FLAGS)])
_TCG_LACKS = re.compile(r"TCG doesn't support requested feature: \S+\.([\w.]+) \[")


def tcg_cpu() -> str:
    """TCG_CPU less what this QEMU's TCG cannot give (7.2 has no RDSEED): asking for it only
    makes QEMU warn, and `xenlab check` names what is missing."""
    probe = run.run(["qemu-system-x86_64", "-accel", "tcg", "-cpu", TCG_CPU, "-M", "pc", "-nodefaults",
                     "-display", "none", "-kernel", "/nonexistent/xenlab-cpu-probe"], check=False, timeout=30)
    lacks = {f"+{name}" for name in _TCG_LACKS.findall(probe.stderr)}
    return ",".join(f for f in TCG_CPU.split(",") if f not in lacks)


KVM_CPU = "host"
OLDEST_RELEASE = "12"
OVERLAY_MIN_FREE = 2 * 1024**3  # what provisioning and a few guests write into the overlay
BOOT_TIMEOUT = 600
# Longest silence on the serial console while booting: Xen and dom0 under TCG print every few
# seconds; a VM that is silent this long after the bootloader handed over is not booting.
BOOT_STALL = 60
HALT_TIMEOUT = 90


_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_])")


def console_tail(path: Path, width: int = 72) -> str:
    """The serial console's last readable line, for the boot status: GRUB, Xen and Linux paint
    with escape sequences and carriage returns, and the log is never read whole."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = (line.strip() for line in re.split(r"[\r\n]+", _ESCAPES.sub("", tail)))
    readable = [line for line in lines if line and line.isprintable()]
    return readable[-1][:width] if readable else ""


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _public_key(path: Path) -> str:
    kind, blob = path.read_text().split()[:2]
    return f"{kind} {blob}"


class Qemu:
    name = "qemu"
    existing = False

    def __init__(self, config: LabConfig, state_dir: Path) -> None:
        self.config, self.dir = config, state_dir
        self.timings: dict[str, float] = {}
        self.overlay = state_dir / "disk.qcow2"
        self.seed = state_dir / "seed.img"
        self.pidfile = state_dir / "qemu.pid"
        self.qmp = state_dir / "qmp.sock"
        self.console = state_dir / "console.log"
        self.meta = state_dir / "qemu.json"
        self.key = state_dir / "id_ed25519"
        self.host_key = state_dir / "ssh_host_ed25519_key"
        self.pinned = state_dir / "provisioned.qcow2"  # the cache entry this lab started from

    # -- facts ----------------------------------------------------------------------------------
    def facts(self) -> ProviderFacts:
        # HAP under TCG too (QEMU's emulated NPT): real unikernels boot with it (Solo5's 32 MiB
        # guests abort at boot under shadow paging), and Debian's security-supported Xen has no
        # shadow paging at all. The measurements: bench/boot_table.md.
        return ProviderFacts(uplink_mac=LAB_MAC, xen_cmdline_extra="console=com1 com1=115200,8n1",
                             dom0_cmdline_extra="console=hvc0 earlyprintk=xen", user_side_interface=self.tap)

    @property
    def tap(self) -> str:
        # Derived from the state directory so two labs on one machine never share a tap.
        import zlib

        return f"xltap{zlib.crc32(str(self.dir.resolve()).encode()) % 100000:05d}"

    def _meta(self) -> dict[str, object]:
        return json.loads(self.meta.read_text()) if self.meta.exists() else {}

    def _update_meta(self, **values: object) -> None:
        self.meta.write_text(json.dumps({**self._meta(), **values}))

    @property
    def release(self) -> Release:
        """The release this lab's disk was made of (a later change of the setting applies to the
        next new lab: a disk is not converted). A disk from before releases were recorded is
        Debian 12's, the only one there was."""
        default = OLDEST_RELEASE if self.overlay.exists() else self.config.release
        return RELEASES[str(self._meta().get("release", default))]

    @property
    def started_from(self) -> str:
        # A lab made before the cache existed has no record of it: it came from the base image.
        return str(self._meta().get("disk_from", "base image"))

    # -- checks ---------------------------------------------------------------------------------
    def preflight(self) -> None:
        for tool in ("qemu-system-x86_64", "qemu-img"):
            if not shutil.which(tool):
                die(f"{tool} is not installed", hint="apt-get install qemu-system-x86 qemu-utils")
        if os.geteuid() != 0:
            die("the QEMU provider needs root for the host-only tap device",
                hint="run xenlab as root (or with sudo)")
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.overlay.exists():
            free = shutil.disk_usage(self.dir).free
            if free < OVERLAY_MIN_FREE:
                die(f"only {free // 1024**2} MiB free in {self.dir}; the lab's disk needs "
                    f"{OVERLAY_MIN_FREE // 1024**2} MiB", hint="free disk space, or set state_dir")
        if self.pid() is None:
            # Decided before the VM starts, not when it starts: Xen's command line depends on it
            # (facts()), and so does which provisioned disk the lab may start from.
            with ui.step("accelerator", self.timings, "accel"):
                accel_name, why = accel.choose(self.config.accel, KVM_CPU)
                ui.info(f"{accel_name}: {why}")
            self._update_meta(accel=accel_name, accel_why=why)

    # -- process --------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """QEMU's PID if it is running this lab's disk (guards against a reused PID)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if any(str(self.overlay).encode() in arg for arg in cmdline) else None

    def status(self) -> VmStatus:
        if not self.overlay.exists():
            return VmStatus("absent")
        pid = self.pid()
        if pid is not None:
            meta = self._meta()
            return VmStatus("running", f"qemu pid {pid}, {meta.get('accel', '?')}, "
                                       f"ssh 127.0.0.1:{meta.get('port')}")
        if self.pidfile.exists():
            return VmStatus("crashed", "QEMU is gone without a halt (killed, or the host rebooted); "
                                       "`xenlab up` starts it again")
        return VmStatus("stopped", "halted")

    # -- lifecycle ------------------------------------------------------------------------------
    def _ensure_disk(self, recipe: str | None) -> None:
        release = self.release  # read before the overlay exists: after, an unrecorded one is 12's
        base = qemu_image.ensure_base(release)
        if self.overlay.exists():
            return
        cached = qemu_cache.find(recipe, release) if recipe else None
        backing = qemu_cache.pin(cached, self.dir) if cached else base
        tmp = self.overlay.with_suffix(".tmp")
        try:
            run.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, tmp],
                    what="qemu-img create (lab overlay)", hint="is the disk full?")
            tmp.rename(self.overlay)
        finally:
            tmp.unlink(missing_ok=True)
        self._update_meta(disk_from=f"provisioned cache ({cached.name})" if cached else "base image",
                          release=release.version)

    def _ensure_keys(self) -> None:
        for key in (self.key, self.host_key):
            if not key.exists():
                run.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xenlab", "-f", key],
                        what="ssh-keygen")
        seed_dir = self.dir / "seed"
        seed_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copy(self.key.with_suffix(".pub"), seed_dir / "authorized_keys")
        shutil.copy(self.host_key, seed_dir / "ssh_host_ed25519_key")
        shutil.copy(self.host_key.with_suffix(".pub"), seed_dir / "ssh_host_ed25519_key.pub")
        from lab.image.tar import build

        build(seed_dir, self.seed, None)
        self.seed.chmod(0o600)
        shutil.rmtree(seed_dir)

    def _ip(self) -> list[str]:
        return ["ip", "-n", self.config.host_netns] if self.config.host_netns else ["ip"]

    def _tap_up(self) -> None:
        # A tap left by a QEMU that died (in the root namespace or moved into the lab's) would
        # clash with the new one: start from none.
        self._tap_delete()
        run.run(["ip", "tuntap", "add", "dev", self.tap, "mode", "tap"], what="ip tuntap add")

    def _tap_configure(self) -> None:
        """After QEMU opened the tap: give it the host side address, in the lab's namespace."""
        ip = self._ip()
        if self.config.host_netns:
            run.run(["ip", "link", "set", self.tap, "netns", self.config.host_netns],
                    what="move tap into netns")
        addr = f"{self.config.host_ip}/{self.config.prefixlen}"
        run.run([*ip, "addr", "replace", addr, "dev", self.tap], what="address the tap")
        run.run([*ip, "link", "set", self.tap, "up"], what="tap up")

    def _tap_delete(self) -> None:
        if self.config.host_netns:
            run.run([*self._ip(), "link", "delete", self.tap], check=False)
        run.run(["ip", "link", "delete", self.tap], check=False)

    def command(self, port: int, accel: str) -> list[str]:
        cpu = KVM_CPU if accel == "kvm" else tcg_cpu()
        return [
            "qemu-system-x86_64", "-name", "xenlab", "-accel", accel, "-cpu", cpu,
            "-smp", str(self.config.vm_cpus), "-m", str(self.config.vm_memory),
            # bootindex: SeaBIOS tries only its first hard disk, which must not be the seed.
            "-drive", f"file={self.overlay},if=none,id=root,format=qcow2,discard=unmap",
            "-device", "virtio-blk-pci,drive=root,bootindex=0",
            "-drive", f"file={self.seed},if=none,id=seed,format=raw,readonly=on",
            "-device", "virtio-blk-pci,drive=seed,serial=xenlab-seed",
            "-netdev", f"user,id=nat,hostfwd=tcp:127.0.0.1:{port}-:22",
            # romfile= : no iPXE option ROM, so firmware goes straight to the disk.
            "-device", f"virtio-net-pci,netdev=nat,mac={NAT_MAC},romfile=",
            "-netdev", f"tap,id=lab,ifname={self.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=lab,mac={LAB_MAC},romfile=",
            "-display", "none", "-monitor", "none", "-serial", f"file:{self.console}",
            "-qmp", f"unix:{self.qmp},server=on,wait=off", "-pidfile", str(self.pidfile),
            # The shared folder deploys copy kernels and images into (lab/share.py). QEMU runs as
            # root: "none" stores files as QEMU writes them, with no ownership mapping to keep.
            "-virtfs", f"local,path={self.dir / lab_share.LOCAL},mount_tag={lab_share.TAG},"
                       "security_model=none",
        ]

    def up(self, recipe: str | None = None) -> SshTarget:
        """recipe: the provisioning fingerprint; a new lab starts from the cache's disk for it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        with ui.step("disk (cached image + this lab's overlay)", self.timings, "image"):
            self._ensure_disk(recipe)
            self._ensure_keys()
            lab_share.ensure(self.dir)
        started = self.pid() is None
        if started:
            self.pidfile.unlink(missing_ok=True)
            accel_name = str(self._meta()["accel"])
            self._tap_up()
            port = _free_port()
            self._update_meta(port=port, tap=self.tap)
            self.console.unlink(missing_ok=True)  # this boot's console only: the stall watch reads it
            with ui.step(f"start QEMU ({accel_name}; console: {self.console})", self.timings, "start"):
                proc = run.spawn(self.command(port, accel_name), log=self.dir / "qemu.log",
                                 new_session=True)
                self._wait_pidfile(proc)
                self._tap_configure()
        port = int(self._meta()["port"])  # type: ignore[call-overload]
        # The host key is ours (from the seed disk): pinned before the first connection.
        target = SshTarget("127.0.0.1", port, qemu_image.USER, self.key,
                           _public_key(self.host_key.with_suffix(".pub")))
        try:
            with ui.step("waiting for SSH (firmware, GRUB, Linux)", self.timings, "boot"):
                self.wait_for_ssh(port)
        except BaseException:
            # A VM that never became reachable is useless and burns a core: stop what this run
            # started (a VM that was already running before is left as it was).
            if started:
                ui.warn("stopping the lab VM this run started (the disk is kept; `xenlab up` "
                        "boots it again)")
                self._stop_process()
            raise
        return target

    def _wait_pidfile(self, proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = run.tail((self.dir / "qemu.log").read_text(errors="replace"), 2)
                die(f"QEMU exited at start: {tail}", hint=f"see {self.dir / 'qemu.log'}")
            if self.pid() is not None:
                return
            time.sleep(0.2)
        die("QEMU did not start within 30 s", hint=f"see {self.dir / 'qemu.log'}")

    def wait_for_ssh(self, port: int) -> None:
        timeout, stall = BOOT_TIMEOUT, BOOT_STALL
        deadline = time.monotonic() + timeout
        size, changed = -1, time.monotonic()
        with ui.live_status("booting") as status:
            while time.monotonic() < deadline:
                if self.pid() is None:
                    die("the lab VM stopped while booting", hint=f"see the console: {self.console}")
                with contextlib.suppress(OSError), \
                        socket.create_connection(("127.0.0.1", port), 3) as s:
                    s.settimeout(5)
                    if s.recv(16).startswith(b"SSH-"):
                        return
                last = console_tail(self.console)
                now_size = self.console.stat().st_size if self.console.exists() else 0
                if now_size != size:
                    size, changed = now_size, time.monotonic()
                elif time.monotonic() - changed > stall:
                    accel_name = self._meta().get("accel", "?")
                    die(f"the lab VM's console shows no progress for {stall:.0f} s "
                        f"(last line: {last or 'nothing'!r}; accelerator {accel_name})",
                        hint="a KVM that cannot run guests stops here: XENLAB_ACCEL=tcg; "
                             f"see the console: {self.console}")
                status.update(f"console: {last}")
                time.sleep(2)
        die(f"the lab VM's SSH did not answer within {timeout:.0f} s",
            hint=f"see the console: {self.console}")

    def keep(self, recipe: str, remote: Remote) -> None:
        """After the first complete provisioning of a lab made from the base image: its disk
        becomes the cache's entry for recipe. A failure costs the cache entry, not the lab."""
        if self._meta().get("disk_from") != "base image" or self.pid() is None:
            return
        try:
            with ui.step("keeping the provisioned disk for new labs", self.timings, "cache"):
                path = qemu_cache.store(recipe, self.release, remote, self.qmp)
            ui.info(f"cached: the next new lab with these settings starts from {path.name}")
        except LabError as exc:
            ui.warn(f"the provisioned disk was not cached ({exc.message}); the lab is unaffected")

    def halt(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(LabError), Qmp(self.qmp, timeout=5) as qmp:
                qmp.execute("system_powerdown")  # ACPI power button: the guest shuts down cleanly
            deadline = time.monotonic() + HALT_TIMEOUT
            while time.monotonic() < deadline and self.pid() is not None:
                time.sleep(1)
            if self.pid() is not None:
                ui.warn(f"the lab VM did not power off within {HALT_TIMEOUT} s: stopping QEMU")
                self._stop_process()
        self.pidfile.unlink(missing_ok=True)
        self._tap_delete()

    def _stop_process(self) -> None:
        """SIGTERM, then SIGKILL, to this lab's QEMU (by its PID, checked against its disk)."""
        pid = self.pid()
        if pid is None:
            return
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            _signal(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        self._tap_delete()

    def destroy(self) -> None:
        # The disk is about to go: nothing on it needs a clean shutdown, and an ACPI poweroff
        # that a running guest holds up would only be waited out.
        self._stop_process()
        self.halt()
        for p in (self.overlay, self.pinned, self.seed, self.meta, self.qmp, self.key,
                  self.key.with_suffix(".pub"), self.host_key, self.host_key.with_suffix(".pub")):
            p.unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

