"""The executable's own handling of how a run ends (lab/entry.py), in real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("sig,code,said", [(signal.SIGTERM, 143, "terminated"),
                                           (signal.SIGINT, 130, "interrupted")])
def test_a_signal_unwinds_what_the_verb_cleans_up(tmp_path: Path, sig: int, code: int, said: str) -> None:
    """A kill (CI's timeout, a test harness stopping xenlab by PID) runs the verb's clean-up, as
    Ctrl-C does: without it a base-image build left its loop mount behind."""
    cleaned = tmp_path / "cleaned"
    work = f"""
import time
from lab.entry import reported
def work():
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        open({str(cleaned)!r}, "w").write("yes")
reported(work)
"""
    proc = subprocess.Popen([sys.executable, "-c", work], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (code, f"{said}\n")
    assert cleaned.read_text() == "yes"
