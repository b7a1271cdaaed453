"""`xenlab run`'s verdict and JUnit report, read back by a real XML parser."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from lab import exit_status
from lab.core.run import EXIT_TIMEOUT, Outcome, write_junit
from lab.domain import _seconds


@pytest.mark.parametrize(("ended", "code", "failures"), [
    ("poweroff", 0, 0), ("crash", 1, 1), ("reboot", 1, 1), ("timeout", EXIT_TIMEOUT, 1)])
def test_verdict_and_junit(tmp_path: Path, ended: str, code: int, failures: int) -> None:
    console = ["hello: Hello World!", "\x1b[0mcolour\x07 and a bell", "done"]
    outcome = Outcome("hello", ended, 1.25, console)
    assert outcome.exit_code == code and outcome.passed is (code == 0)
    path = tmp_path / "run.xml"
    write_junit([outcome], path)
    suite = ElementTree.parse(path).getroot()
    assert suite.get("failures") == str(failures) and suite.get("tests") == "1"
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "hello"
    out = case.findtext("system-out") or ""
    assert "hello: Hello World!" in out and "\x07" not in out and "[0mcolour and a bell" in out
    failure = case.find("failure")
    assert (failure is None) is (failures == 0)
    if failure is not None:
        assert failure.get("type") == ended and "hello" in (failure.get("message") or "")


@pytest.mark.parametrize(("text", "seconds"), [
    ("0:00:07", 7.0), ("1:02:03", 3723.0), ("1 day,  0:00:01", 86401.0), ("3 days, 2:00:00", 266400.0),
    ("garbage", None)])
def test_xl_uptime_is_read_as_seconds(text: str, seconds: float | None) -> None:
    assert _seconds(text) == seconds


# Solo5 prints its exit line at INFO level; a status travels as 8 bits, as a process's does.
@pytest.mark.parametrize(("ended", "console", "code", "status"), [
    ("poweroff", ["Solo5: solo5_exit(0) called"], 0, 0),
    ("poweroff", ["FAILURE", "Solo5: solo5_exit(1) called"], 1, 1),  # Solo5's test_xnor
    ("poweroff", ["Solo5: solo5_exit(99) called\r"], 99, 99),  # test_blk; a console's CR
    ("poweroff", ["Solo5: solo5_exit(300) called"], 44, 44),
    ("poweroff", ["Solo5: solo5_exit(-1) called"], 255, 255),
    ("poweroff", ["no word of a status"], 0, None),  # a plain poweroff: as before
    ("poweroff", ["Solo5: solo5_exit(3) called", "Solo5: solo5_exit(0) called"], 0, 0),  # the last
    ("crash", ["Solo5: solo5_abort() called"], 1, None),
    ("crash", ["Solo5: solo5_exit(7) called"], 1, None),  # Xen's crash wins: no exit happened
    ("timeout", ["Solo5: solo5_exit(0) called"], EXIT_TIMEOUT, None),
])
def test_the_exit_status_is_the_one_the_console_reports(tmp_path: Path, ended: str, console: list[str],
                                                       code: int, status: int | None) -> None:
    outcome = Outcome("u", ended, 0.5, console)
    assert (outcome.exit_code, outcome.status, outcome.passed) == (code, status, code == 0)
    path = tmp_path / "run.xml"
    write_junit([outcome], path)
    failure = ElementTree.parse(path).getroot().find("testcase/failure")
    assert (failure is None) is (code == 0)
    if failure is not None and status is not None:
        assert failure.get("type") == f"exit status {status}"
        assert f"exit status {status}" in (failure.get("message") or "")


@pytest.mark.parametrize(("cmdline", "hidden"), [
    ("--solo5:quiet", True), ("--hello=1 --solo5:warn", True), ("--solo5:error", True),
    ("--solo5:info", False), ("--solo5:debug --x", False), ("", False), ("--solo5:quieter", False)])
def test_a_command_line_that_hides_the_exit_line_is_recognised(cmdline: str, hidden: bool) -> None:
    assert exit_status.hidden(cmdline) is hidden


def test_known_mirageos_statuses_get_a_hint_naming_the_refused_argument() -> None:
    console = ["Solo5: Xen console", "mirage: unknown option '--ipv5'.", "Solo5: solo5_exit(64) called"]
    refused = "MirageOS refused a boot argument: mirage: unknown option '--ipv5'."
    assert exit_status.hint(64, console) == refused
    assert "help or version" in (exit_status.hint(63, []) or "")
    assert exit_status.hint(64, []) == "MirageOS refused a boot argument"
    assert exit_status.hint(5, console) is None
