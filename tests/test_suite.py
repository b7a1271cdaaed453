"""`xenlab run` of several unikernels as one suite, against the fake lab host (tests/
fake_lab_host.py: stand-ins for Xen and the guests, whose kernel names script what they do):
which files, how many at once, what each was expected to do, one JUnit report, the exit status.
The QEMU tier runs a suite of test kernels on real Xen."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from fake_lab_host import FakeLabHost, lab_directory

from lab import ui
from lab.cli import cli
from lab.core.suite import files_of
from lab.errors import LabError

PVH = "name = '{name}'\ntype = 'pvh'\nkernel = '{kernel}'\nmemory = {memory}\n"


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeLabHost]:
    monkeypatch.setattr(ui.settings, "json", False)
    return lab_directory(tmp_path, monkeypatch)


def unikernel(work: Path, name: str, behaviour: str, memory: int = 32, expect: str = "") -> Path:
    """A unikernel whose kernel's name says what the stand-in does with it."""
    kernel = f"{name}-{behaviour}.xen"
    (work / kernel).write_bytes(b"\x7fELF" + name.encode())
    xl = work / f"{name}.xl"
    xl.write_text(PVH.format(name=name, kernel=kernel, memory=memory))
    if expect:
        (work / f"{name}.expect").write_text(expect)
    return xl


def xenlab(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["run", *args], catch_exceptions=False)
    return r.exit_code, r.output


def test_a_suite_with_expected_failures_passes_and_reports_each(suite: tuple[Path, FakeLabHost]) -> None:
    work, host = suite
    unikernel(work, "hello", "exit-0")
    unikernel(work, "exits3", "exit-3", expect="status = 3\n")
    unikernel(work, "aborts", "crash", expect='ended = "crash"\nconsole = ["ABORT"]\n')
    code, out = xenlab(str(work), "--junit-xml", str(work / "suite.xml"), "--timeout", "20")
    assert code == 0, out
    assert "3 passed, 0 failed of 3 unikernels" in out
    report = ElementTree.parse(work / "suite.xml").getroot()
    assert (report.get("tests"), report.get("failures"), report.get("errors")) == ("3", "0", "0")
    cases = {c.get("name"): c for c in report.iter("testcase")}
    assert set(cases) == {"hello", "exits3", "aborts"}
    assert "ABORT" in (cases["aborts"].findtext("system-out") or "")  # each console its own
    assert "ABORT" not in (cases["hello"].findtext("system-out") or "")
    assert host.domains() == {}  # every one removed


def test_one_failure_fails_the_suite_and_names_why(suite: tuple[Path, FakeLabHost]) -> None:
    work, _ = suite
    unikernel(work, "good", "exit-0")
    unikernel(work, "bad", "exit-1")
    unikernel(work, "wrong", "exit-0", expect='ended = "crash"\n')
    unikernel(work, "refused", "refused")
    code, out = xenlab(*(str(work / f"{n}.xl") for n in ("good", "bad", "wrong", "refused")),
                       "--junit-xml", str(work / "suite.xml"), "--timeout", "20")
    assert code == 1
    assert "1 passed, 3 failed of 4 unikernels" in out
    assert "bad ended with a poweroff, exit status 1" in out
    assert "wrong ended with a poweroff, exit status 0" in out and ": expected a crash" in out
    assert "bad| Solo5: solo5_exit(1) called" in out  # the failures' consoles, each its own
    assert "refused did not run: xl create refused failed" in out
    report = ElementTree.parse(work / "suite.xml").getroot()
    assert (report.get("failures"), report.get("errors")) == ("2", "1")


@pytest.mark.parametrize(("free", "jobs", "most"), [(96, None, 3), (1024, 2, 2), (1024, 1, 1)])
def test_as_many_run_at_once_as_memory_and_jobs_allow(suite: tuple[Path, FakeLabHost], free: int,
                                                      jobs: int | None, most: int) -> None:
    work, host = suite
    host.free_memory(free)
    for i in range(6):
        unikernel(work, f"u{i}", "exit-0-sleep-8")  # 32 MiB each, running 0.8 s
    code, out = xenlab(str(work), "--timeout", "30", *(["--jobs", str(jobs)] if jobs else []))
    assert code == 0, out
    assert host.peak() == most, out  # never more, and that many did run side by side


@pytest.mark.parametrize(("expect", "error"), [
    ('ended = "crashed"\n', "not one of poweroff, crash, reboot, timeout"),
    ("status = 300\n", "an exit status is 0 to 255"),
    ('ended = "crash"\nstatus = 1\n', "only a poweroff has an exit status"),
    ('console = ["("]\n', "console pattern '('"),
    ("colour = 1\n", "unknown key 'colour'"),
    ("status = '1'\n", "the wrong kind of value"),
    ("status = \n", "Invalid value"),
    ("timeout = -1\n", "not a number of seconds above 0"),
])
def test_a_bad_sidecar_is_refused_before_anything_runs(suite: tuple[Path, FakeLabHost], expect: str,
                                                       error: str) -> None:
    work, host = suite
    unikernel(work, "fine", "exit-0")
    unikernel(work, "odd", "exit-0", expect=expect)
    with pytest.raises(LabError, match=r"odd\.expect") as caught:
        xenlab(str(work))
    assert error in caught.value.message and caught.value.hint
    assert "create" not in host.xl_log()


def test_two_files_of_one_domain_name_are_refused(suite: tuple[Path, FakeLabHost]) -> None:
    work, host = suite
    unikernel(work, "same", "exit-0")
    (work / "other.xl").write_text((work / "same.xl").read_text())
    with pytest.raises(LabError, match="domain 'same' again"):
        xenlab(str(work / "same.xl"), str(work / "other.xl"))
    assert "create" not in host.xl_log()


def test_one_file_keeps_its_exit_status_unless_it_has_an_expectation(suite: tuple[Path, FakeLabHost]) -> None:
    work, _ = suite
    code, _ = xenlab(str(unikernel(work, "three", "exit-3")), "--timeout", "20")
    assert code == 3  # the guest's own status, as before suites
    code, out = xenlab(str(unikernel(work, "expected", "exit-3", expect="status = 3\n")), "--timeout", "20")
    assert code == 0 and "as expected" in out
    code, _ = xenlab(str(work / "three.xl"), "--expect-status", "4", "--timeout", "20")
    assert code == 1


def test_files_directories_and_patterns(tmp_path: Path) -> None:
    (tmp_path / "a.xl").write_text("")
    (tmp_path / "b.xl").write_text("")
    (tmp_path / "b.xl.in").write_text("")  # b.xl is its filled-in copy: b runs once
    (tmp_path / "c.xl.in").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.xl").write_text("")
    assert files_of([tmp_path]) == [tmp_path / n for n in ("a.xl", "b.xl", "c.xl.in")]
    assert files_of([tmp_path / "sub" / "*.xl", tmp_path / "a.xl", tmp_path / "sub" / "d.xl"]) == \
        [tmp_path / "sub" / "d.xl", tmp_path / "a.xl"]
    for missing in ("nosuch.xl", "*.nothing"):
        with pytest.raises(LabError):
            files_of([tmp_path / missing])


def test_ctrl_c_stops_the_running_unikernels_and_removes_them(suite: tuple[Path, FakeLabHost]) -> None:
    """Guests that would run until their 300 s timeout: Ctrl-C (SIGINT, as a terminal sends it)
    ends the suite within seconds, and none is left on the lab host."""
    import os
    import signal
    import threading
    import time

    work, host = suite
    for i in range(3):
        unikernel(work, f"hangs{i}", "runs")  # never ends by itself
    threading.Timer(3, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    code, out = xenlab(str(work), "--timeout", "300")
    assert code != 0 and "Aborted" in out  # click's word for the interrupt; xenlab exits 130
    assert time.monotonic() - start < 30
    assert host.domains() == {} and host.xl_log().count("create") == 3, (host.xl_log(), out)
