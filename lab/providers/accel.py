"""Which QEMU accelerator runs the lab VM: decided by running a guest, not by opening /dev/kvm.

Some machines of the project's kind have a /dev/kvm that root can open and that QEMU accepts, but
that never runs an ordinary guest (a nested-cloud KVM module), or aborts with `-cpu host`. A QEMU
started paused (`-S`) proves nothing: it never runs a guest instruction. So the probe boots a
512-byte boot sector with the exact CPU the lab would use; the payload writes a token to the serial
port and leaves through isa-debug-exit. Only a payload that arrives within seconds counts.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab import run
from lab.errors import die

PROBE_TIMEOUT = 10.0  # TCG runs the payload in ~0.1 s; a KVM slower than this is no use to Xen
TOKEN = b"XENLAB-ACCEL-OK"
_EXIT_PORT = 0xF4
_EXIT_CODE = (0x21 << 1) | 1  # isa-debug-exit makes QEMU exit with (value << 1) | 1


def _payload() -> bytes:
    """Real-mode boot sector: print TOKEN on COM1 (0x3f8), then write 0x21 to isa-debug-exit."""
    code = bytearray()
    for ch in TOKEN + b"\n":
        code += bytes([0xBA, 0xF8, 0x03, 0xB0, ch, 0xEE])  # mov dx,0x3f8; mov al,ch; out dx,al
    code += bytes([0xBA, _EXIT_PORT, 0x00, 0xB0, 0x21, 0xEE])  # mov dx,0xf4; mov al,0x21; out dx,al
    code += bytes([0xF4, 0xEB, 0xFD])  # hlt; jmp $-1 (never reached when the exit device works)
    return bytes(code) + bytes(510 - len(code)) + b"\x55\xaa"


@dataclass(frozen=True)
class Verdict:
    accel: str
    usable: bool
    why: str
    seconds: float


def probe(accel: str, cpu: str, timeout: float = PROBE_TIMEOUT,
          extra: tuple[str, ...] = ()) -> Verdict:
    """Boot the payload under accel with cpu; usable only if the token reached the serial port
    and QEMU left through isa-debug-exit. extra: more QEMU arguments (the tests pass -S)."""
    if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Verdict(accel, False, "/dev/kvm is missing or not writable", 0.0)
    with tempfile.TemporaryDirectory(prefix="xenlab-accel-") as tmp:
        disk, serial = Path(tmp) / "probe.img", Path(tmp) / "serial.out"
        disk.write_bytes(_payload())
        argv = ["qemu-system-x86_64", "-accel", accel, "-cpu", cpu, "-m", "16", "-nodefaults",
                "-display", "none", "-monitor", "none", "-no-reboot",
                "-drive", f"file={disk},format=raw,if=ide",
                "-serial", f"file:{serial}",
                "-device", f"isa-debug-exit,iobase={_EXIT_PORT:#x},iosize=0x04", *extra]
        start = time.monotonic()
        proc = run.spawn(argv)
        try:
            code = proc.wait(timeout=timeout)
        except BaseException as exc:  # a timeout, Ctrl-C, SIGTERM: never leave it running
            proc.kill()
            proc.wait()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            took = time.monotonic() - start
            arrived = serial.exists() and TOKEN in serial.read_bytes()
            if arrived:  # ran the payload but could not leave: the exit device is what failed
                return Verdict(accel, False, "the payload ran but QEMU did not exit", took)
            return Verdict(accel, False, f"a guest under {accel} did not run its first "
                                         f"instructions within {timeout:.0f} s", took)
        took = time.monotonic() - start
        arrived = serial.exists() and TOKEN in serial.read_bytes()
        if code == _EXIT_CODE and arrived:
            return Verdict(accel, True, f"a guest ran under {accel} in {took:.2f} s", took)
        stderr = run.tail(proc.stderr.read() if proc.stderr else "", 1)
        return Verdict(accel, False, f"QEMU -accel {accel} -cpu {cpu} exited with {code} "
                                     f"before the guest ran: {stderr or 'no message'}", took)


def host_has_virtualisation() -> bool:
    """Whether this machine's CPU offers VT-x/AMD-V: with KVM and `-cpu host`, Xen in the VM
    can run PVH guests only if it does."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f" {flag}" in flags for flag in ("vmx", "svm"))


def choose(setting: str, kvm_cpu: str) -> tuple[str, str]:
    """(accelerator, why) for accel = auto|kvm|tcg."""
    if setting == "tcg":
        return "tcg", "accel = tcg"
    kvm = probe("kvm", kvm_cpu)
    if setting == "kvm":
        if not kvm.usable:
            die(f"accel = kvm, but KVM cannot run the lab VM: {kvm.why}",
                hint="set accel = \"auto\" or \"tcg\" (XENLAB_ACCEL=tcg)")
        return "kvm", f"accel = kvm ({kvm.why})"
    if not kvm.usable:
        return "tcg", f"KVM unusable: {kvm.why}"
    if not host_has_virtualisation():
        return "tcg", ("KVM works but this CPU offers no VT-x/AMD-V to nest: PVH guests would not "
                       "run (accel = kvm forces it)")
    return "kvm", kvm.why
