"""The accelerator is decided by running a guest for real: a boot sector that must print a token
on the serial port and leave through isa-debug-exit within seconds."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from lab.providers import accel
from lab.providers.qemu import KVM_CPU, TCG_CPU

pytestmark = pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="./install.sh")


def test_tcg_runs_the_payload() -> None:
    v = accel.probe("tcg", TCG_CPU)
    assert v.usable, v.why
    assert v.seconds < accel.PROBE_TIMEOUT


def test_a_qemu_that_never_runs_the_guest_is_unusable_within_seconds() -> None:
    """As the old check started QEMU: paused (-S). It stays up and runs nothing."""
    t = time.monotonic()
    v = accel.probe("tcg", TCG_CPU, timeout=3, extra=("-S",))
    assert not v.usable and "did not run its first instructions within 3 s" in v.why
    assert time.monotonic() - t < 10


def test_a_refused_cpu_is_unusable_with_qemus_reason() -> None:
    v = accel.probe("tcg", "no-such-cpu-model")
    assert not v.usable and "exited" in v.why and "no-such-cpu-model" in v.why


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this machine")
def test_this_machines_kvm_gets_a_verdict_in_seconds() -> None:
    """Whatever this machine's /dev/kvm is (here it can be a nested-cloud module that aborts with
    -cpu host, or one that never runs a guest), the probe answers in seconds and auto follows it."""
    t = time.monotonic()
    v = accel.probe("kvm", KVM_CPU)
    assert time.monotonic() - t < accel.PROBE_TIMEOUT + 5
    chosen, why = accel.choose("auto", KVM_CPU)
    if not v.usable:
        assert chosen == "tcg" and v.why in why
    else:
        assert chosen == ("kvm" if accel.host_has_virtualisation() else "tcg")


def test_forced_tcg_probes_nothing() -> None:
    assert accel.choose("tcg", KVM_CPU) == ("tcg", "accel = tcg")
