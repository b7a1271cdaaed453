"""`xenlab run`'s verdict and JUnit report, read back by a real XML parser."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from lab.domain import _seconds
from lab.verbs.run import EXIT_TIMEOUT, Outcome, write_junit


@pytest.mark.parametrize(("ended", "code", "failures"), [
    ("poweroff", 0, 0), ("crash", 1, 1), ("reboot", 1, 1), ("timeout", EXIT_TIMEOUT, 1)])
def test_verdict_and_junit(tmp_path: Path, ended: str, code: int, failures: int) -> None:
    console = ["hello: Hello World!", "\x1b[0mcolour\x07 and a bell", "done"]
    outcome = Outcome("hello", ended, 1.25, console)
    assert outcome.exit_code == code and outcome.passed is (code == 0)
    path = tmp_path / "run.xml"
    write_junit(outcome, path)
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
