"""`xenlab run FILE.xl`: a unikernel as a test, the way a test suite runs one. Deploy it, stream its
console to stdout as it comes, wait until the domain ends, remove it, and say how it ended.

Solo5 on Xen turns a unikernel's exit into a poweroff (its abort into a crash) and says the status
on its console (lab/exit_status.py): a poweroff exits with that status (0 when the console names
none); a crash, a reboot or anything else fails (exit 1); a guest still running at the timeout
fails with exit 124, as timeout(1) does.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from lab import domain, exit_status, ui
from lab.core.deploy import Request, launch, make_room, prepared_and_connected
from lab.errors import LabError
from lab.expectations import Expectation
from lab.lab import Lab

EXIT_TIMEOUT = 124
LINGER = 1.0  # after the end, how long the console may still be arriving


@dataclass
class Outcome:
    name: str
    ended: str  # poweroff, crash, reboot, ..., or "timeout"
    runtime_s: float  # from `xl create` returning to the end being seen
    console: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    status_hidden: bool = False  # the command line hid Solo5's exit line
    expected: Expectation = field(default_factory=Expectation)
    error: str = ""  # why it never ran (deploy refused it, the lab failed): then ended is "error"

    @classmethod
    def not_run(cls, name: str, error: LabError, expected: Expectation) -> Outcome:
        return cls(name=name, ended="error", runtime_s=0.0, expected=expected,
                   error=error.message + (f" ({error.hint})" if error.hint else ""))

    @property
    def status(self) -> int | None:
        """The exit status the console reported, if the guest powered off."""
        return exit_status.status(self.console) if self.ended == "poweroff" else None

    @property
    def exit_code(self) -> int:
        """The guest's: its exit status, 1 for a crash, a reboot or no run, 124 at the timeout."""
        if self.ended == "poweroff":
            return self.status or 0
        return EXIT_TIMEOUT if self.ended == "timeout" else 1

    @property
    def problems(self) -> list[str]:
        """How the run differs from what was expected of it (by default: an exit with status 0)."""
        if self.error:
            return [self.error]
        return self.expected.problems(self.ended, self.status, self.status_hidden, self.console)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def command_status(self) -> int:
        """What `xenlab run FILE` exits with: the guest's exit code, or, where an expectation
        was given (a sidecar, --expect-*), 0 when it was met and 1 when not."""
        if not self.expected.source:
            return self.exit_code
        return 0 if self.passed else 1

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ended": self.ended, "status": self.status, "passed": self.passed,
                "exit_code": self.exit_code, "runtime_s": round(self.runtime_s, 2),
                "status_hidden": self.status_hidden, "problems": self.problems,
                "expected": self.expected.source or None, "console": self.console,
                "phases_s": {k: round(v, 2) for k, v in self.phases.items()}}

    def verdict(self) -> str:
        if self.error:
            return f"{self.name} did not run: {self.error}"
        if self.ended == "timeout":
            said = f"{self.name} still running after {self.runtime_s:.1f} s: stopped (timeout)"
        else:
            status = f", exit status {self.status}" if self.status is not None else ""
            said = f"{self.name} ended with a {self.ended}{status} after {self.runtime_s:.1f} s"
        if self.expected.source:
            said += ": as expected" if self.passed else f": {'; '.join(self.problems)}"
        return said

    def hint(self) -> str:
        """For a failure: where to look."""
        if self.error:
            return "`xenlab deploy FILE` shows each step of putting it on the lab"
        if self.expected.source and self.exit_code == 0:
            return f"what it must do is in {self.expected.source}"
        if self.ended == "timeout":
            return "a longer --timeout, if it is still working"
        return exit_status.hint(self.exit_code, self.console) or "its console is all the guest said"


def run(req: Request, lab: Lab, *, echo: bool = True, expected: Expectation | None = None,
        stop: threading.Event | None = None) -> Outcome:
    """echo: write each console line to stdout as it arrives (off for --json); expected: what
    the run must do to pass (default: exit with status 0); stop: set, the run stops waiting for
    the guest to end (ended "interrupted") and removes it."""
    expected = expected or Expectation()
    p, remote = prepared_and_connected(req, lab)
    lines: list[str] = []
    lock = threading.Lock()

    def on_line(line: str) -> None:
        with lock:
            lines.append(line)
            if echo:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    with remote:
        there = make_room(remote, p)
        follower = None
        try:
            launched = launch(remote, p, there)
            follower = domain.follow_console(remote, p.name, on_line)
            with ui.step("running", p.phases, "runtime"), \
                    ui.live_status(f"{p.name} running (up to {req.timeout:.0f} s)"):
                st = domain.wait_ended(remote, p.name, req.timeout, stop=stop)
            runtime = time.monotonic() - launched.created_at
            _settle(lines, lock)
        finally:
            if follower is not None:
                follower.stop()
            start = time.monotonic()
            # Always removed, whatever ended the run: a test leaves nothing on the lab.
            domain.remove(remote, p.name)
            p.phases["remove"] = time.monotonic() - start
    ended = ("interrupted" if stop and stop.is_set() else "timeout") if st is None \
        else st.ended or "vanished"
    return Outcome(name=p.name, ended=ended, runtime_s=runtime, console=lines, phases=p.phases,
                   status_hidden=exit_status.hidden(launched.cmdline), expected=expected)


def _settle(lines: list[str], lock: threading.Lock) -> None:
    """Wait until the console has been quiet for a moment (at most LINGER s): xenconsoled writes
    the last lines just as the domain dies."""
    deadline = time.monotonic() + LINGER
    with lock:
        seen = len(lines)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        with lock:
            if len(lines) == seen:
                return
            seen = len(lines)


def write_junit(outcomes: Sequence[Outcome], path: Path, seconds: float | None = None) -> None:
    """One test case per unikernel, named after its domain, its console as its output: what CI
    systems show. A unikernel that never ran is an error, one that ran otherwise than expected a
    failure. seconds: the suite's wall time (default: the runs' sum, for one run after another)."""
    total = sum(o.runtime_s for o in outcomes) if seconds is None else seconds
    suite = ElementTree.Element(
        "testsuite", name="xenlab run", tests=str(len(outcomes)),
        failures=str(sum(1 for o in outcomes if not o.passed and not o.error)),
        errors=str(sum(1 for o in outcomes if o.error)), time=f"{total:.3f}")
    for outcome in outcomes:
        case = ElementTree.SubElement(suite, "testcase", classname="xenlab.run", name=outcome.name,
                                      time=f"{outcome.runtime_s:.3f}")
        if outcome.error:
            ElementTree.SubElement(case, "error", message=outcome.verdict(), type="not run")
        elif not outcome.passed:
            failure = ElementTree.SubElement(case, "failure", message=outcome.verdict(),
                                             type=outcome.ended if outcome.status is None
                                             else f"exit status {outcome.status}")
            failure.text = "\n".join(_xml_safe(line) for line in outcome.console[-20:])
        out = ElementTree.SubElement(case, "system-out")
        out.text = "\n".join(_xml_safe(line) for line in outcome.console)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # `--junit-xml results/run.xml` in CI
        tmp = path.with_name(f".{path.name}.tmp")
        ElementTree.ElementTree(suite).write(tmp, encoding="utf-8", xml_declaration=True)
        tmp.replace(path)
    except OSError as exc:
        raise LabError(f"{path}: cannot write the JUnit report: {exc.strerror}",
                       hint="give a writable path to --junit-xml") from None


def _xml_safe(line: str) -> str:
    """XML 1.0 has no place for most control characters, which consoles do print."""
    return "".join(c for c in line if c in "\t\n\r" or ord(c) >= 0x20)
