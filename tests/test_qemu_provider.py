"""The QEMU provider's supervision and base-image logic, with real processes and real qemu-img.
(The full boot is the slow e2e tier, tests/integration/test_qemu_lab.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.config import LabConfig
from lab.providers import qemu_image
from lab.providers.qemu import TCG_CPU, Qemu, console_tail, tcg_cpu
from lab.releases import DEFAULT, RELEASES, Release

RELEASE = RELEASES[DEFAULT]

needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"), reason="apt-get install qemu-utils")


def test_status_tells_the_truth(tmp_path: Path) -> None:
    q = Qemu(LabConfig(), tmp_path)
    assert q.status().state == "absent"
    q.overlay.write_bytes(b"")
    assert q.status().state == "stopped"
    # A live process running this lab's disk: running.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(q.overlay)])
    try:
        q.pidfile.write_text(str(proc.pid))
        # Until the child has exec'd, its cmdline is still the parent's.
        deadline = time.monotonic() + 10
        while str(q.overlay).encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert q.status().state == "running"
    finally:
        proc.kill()
        proc.wait()
    # The pidfile outlived its process (killed, host rebooted): crashed, not running.
    assert q.status().state == "crashed"
    # A live PID that is not our QEMU (PID reuse after a reboot) is not mistaken for the lab.
    q.pidfile.write_text(str(subprocess.os.getpid()))  # type: ignore[attr-defined]
    assert q.status().state == "crashed"


def test_tcg_command_line(tmp_path: Path) -> None:
    cmd = Qemu(LabConfig(vm_memory=3072, vm_cpus=2), tmp_path).command(2222, "tcg")
    joined = " ".join(cmd)
    cpu = cmd[cmd.index("-cpu") + 1]
    # qemu64: "max" corrupts dom0 memory under Xen now and then (see TCG_CPU); no SMAP, no RDTSCP.
    flags = cpu.split(",")
    assert cpu == tcg_cpu() and flags[0] == "qemu64" and not {"+smap", "+rdtscp"} & set(flags)
    # What this QEMU's TCG cannot give is left out, not asked for in vain (7.2 has no RDSEED).
    assert set(cpu.split(",")) <= set(TCG_CPU.split(",")) and "+rdrand" in cpu.split(",")
    assert cmd[cmd.index("-accel") + 1] == "tcg"
    assert "-m 3072" in joined and "-smp 2" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined
    assert "bootindex=0" in joined and "serial=xenlab-seed" in joined


def test_tap_name_is_per_lab(tmp_path: Path) -> None:
    a, b = Qemu(LabConfig(), tmp_path / "a"), Qemu(LabConfig(), tmp_path / "b")
    assert a.tap != b.tap and len(a.tap) <= 15


@needs_qemu_img
def test_corrupt_base_image_is_detected_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    base = qemu_image.base_path(RELEASE)
    base.parent.mkdir(parents=True)
    base.write_bytes(b"QFI\xfb" + b"\xff" * 4096)  # a qcow2 magic with garbage behind it
    assert not qemu_image.base_ok(base)
    built: list[Path] = []

    def fake_build(target: Path, release: Release) -> None:
        # Stands in for the multi-minute debootstrap build (the e2e tier runs the real one).
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(target), "64M"], check=True)
        built.append(target)

    monkeypatch.setattr(qemu_image, "build", fake_build)
    if __import__("os").geteuid() != 0:
        pytest.skip("ensure_base refuses to build without root")
    assert qemu_image.ensure_base(RELEASE) == base
    assert built == [base] and qemu_image.base_ok(base)
    # A good cached image is used as it is.
    assert qemu_image.ensure_base(RELEASE) == base and built == [base]


def test_recipe_change_changes_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = qemu_image.recipe_key(RELEASE)
    monkeypatch.setattr(qemu_image, "LATE_PACKAGES", [*qemu_image.LATE_PACKAGES, "htop"])
    assert qemu_image.recipe_key(RELEASE) != before
    # Each release has a base image of its own, and its security suite is in its sources.
    keys = {qemu_image.recipe_key(r) for r in RELEASES.values()}
    assert len(keys) == len(RELEASES)
    for r in RELEASES.values():
        assert f" {r.suite}-security main" in r.apt_sources(qemu_image.MIRROR, qemu_image.SECURITY_MIRROR)


def test_the_boot_status_shows_the_consoles_last_readable_line(tmp_path: Path) -> None:
    # As QEMU's serial log has it: GRUB paints its menu with escape sequences, Linux ends its
    # lines with \r\n, and the file is mid-line while the VM writes.
    log = tmp_path / "console.log"
    assert console_tail(log) == ""  # not there yet: QEMU has not opened it
    log.write_bytes(b"\x1b[H\x1b[J\x1b[1;1H\x1b[?25l\x1b[m\x1b[2;24HGNU GRUB  version 2.06\r\n"
                    b"\x1b[5;78H\x1b[22;1H   The highlighted entry will be executed automatically"
                    b" in 0s.  \x1b[5;78H\x1b[?25h\x1b[H\x1b[J")
    assert console_tail(log) == "The highlighted entry will be executed automatically in 0s."
    with log.open("ab") as f:
        f.write(b"".join(b"[    0.%06d] filler line %d\r\n" % (i, i) for i in range(500)))
        f.write(b"[    3.141592] Run /init as init process\r\n\x1b[0m\r\n[    3.2")
    assert console_tail(log) == "[    3.2"
    assert console_tail(log, width=20) == "[    3.2"
    log.write_bytes(b"x" * 9000 + b"\r\nxenlab login: ")
    assert console_tail(log, width=10) == "xenlab log"


def test_lab_cpu_has_what_unikernels_need() -> None:
    from lab.checks.facts import UNIKERNEL_CPU_FLAGS

    flags = TCG_CPU.split(",")
    assert {"+svm", "+npt"} <= set(flags)
    assert all(f"+{f.replace('_', '.')}" in flags for f in UNIKERNEL_CPU_FLAGS)


@pytest.mark.slow
@needs_qemu_img
@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="tap devices need root")
def test_a_silent_boot_is_a_named_failure_and_stops_its_qemu(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` against a disk that boots nothing (a blank base image stands in for one that hangs
    after the bootloader, as a KVM that cannot run guests does): a named stall within seconds,
    QEMU stopped, its tap gone, and `status` telling what is left."""
    import json
    import secrets

    from lab.core.lifecycle import status
    from lab.errors import LabError
    from lab.lab import Lab
    from lab.providers import qemu as qemu_mod

    base = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    monkeypatch.setattr(qemu_image, "ensure_base", lambda release: base)
    monkeypatch.setattr(qemu_mod, "BOOT_STALL", 3)
    netns = f"xls{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        config = LabConfig(provider="qemu", accel="tcg", host_netns=netns)
        q = Qemu(config, tmp_path / ".xenlab")
        q.preflight()
        t = time.monotonic()
        with pytest.raises(LabError) as exc:
            q.up()
        assert time.monotonic() - t < 60
        assert "no progress for 3 s" in exc.value.message and "accelerator tcg" in exc.value.message
        assert "XENLAB_ACCEL" in (exc.value.hint or "")
        assert json.loads(q.meta.read_text())["accel"] == "tcg"
        assert not q.pidfile.exists() and q.pid() is None  # stopped, not orphaned at 100% CPU
        links = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True).stdout
        assert q.tap not in links
        report = status(Lab("", config, tmp_path / ".xenlab"))
        assert report["state"] == "incomplete" and "disk.qcow2" in str(report["detail"])
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def test_a_lab_keeps_the_release_its_disk_was_made_of(tmp_path: Path) -> None:
    """The setting picks the release of a new lab; a disk is never converted: an existing lab
    stays what it was made of, and one from before releases were recorded is Debian 12's."""
    q = Qemu(LabConfig(release="13"), tmp_path)
    assert q.release.suite == "trixie"  # a new lab: the setting
    q.overlay.write_bytes(b"")
    assert q.release.suite == "bookworm"  # made by an older xenlab: bookworm was all there was
    q.meta.write_text('{"release": "13"}')
    assert Qemu(LabConfig(release="12"), tmp_path).release.suite == "trixie"  # as recorded


@needs_qemu_img
def test_a_new_lab_records_the_release_it_was_made_of(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The overlay is made, then its release recorded: recorded as the setting's, so that every
    later `up` keeps to that release's base image (a lab made as 13's once came back as 12's,
    built a bookworm base and cached its disk under the wrong key)."""
    base = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    asked: list[str] = []
    monkeypatch.setattr(qemu_image, "ensure_base", lambda release: asked.append(release.suite) or base)
    q = Qemu(LabConfig(release="13"), tmp_path / ".xenlab")
    q.dir.mkdir()
    q._ensure_disk(None)
    q._ensure_disk(None)  # the next `up` of the same lab
    assert asked == ["trixie", "trixie"] and json.loads(q.meta.read_text())["release"] == "13"
