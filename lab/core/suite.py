"""`xenlab run A.xl B.xl DIR ...`: many unikernels as one test suite.

Each runs as `xenlab run FILE` runs one (lab/core/run.py: deploy, console, end, removed), several
at once: as many as the lab host's free memory holds (Xen's free_memory, read once, against each
file's memory), at most `jobs`. Across several hosts, each unikernel is placed when it starts
(lab/placement.py: the host with the most free memory then). Each console is kept apart, in its
outcome; what each was expected to do comes from its sidecar (lab/expectations.py).

Ctrl-C stops starting new ones and stops those running, each removed, before it is reported.
"""

from __future__ import annotations

import glob
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab import artifacts, placement
from lab.config import LabConfig
from lab.core.deploy import Request
from lab.core.run import Outcome, run
from lab.errors import LabError, bad_input, no_lab
from lab.expectations import Expectation, load
from lab.lab import Lab

MAX_JOBS = 8  # beyond this, more SSH sessions only slow a lab host under TCG down


@dataclass(frozen=True)
class Case:
    xl: Path
    name: str  # the domain's, from the file: two cases never share one
    memory: int  # MiB, as the file asks (what the scheduler counts)
    expected: Expectation


def files_of(args: Sequence[Path]) -> list[Path]:
    """The .xl files the arguments name: files, directories (their *.xl, and each *.xl.in that has
    no NAME.xl beside it), and glob patterns a shell left unexpanded; in order, each once."""
    found: list[Path] = []
    for arg in args:
        if artifacts.is_dir(arg):
            xls = sorted(arg.glob("*.xl"))
            templates = [t for t in sorted(arg.glob("*.xl.in")) if t.with_suffix("") not in xls]
            if not xls and not templates:
                bad_input(f"{arg}: no .xl files in this directory",
                          hint="give the directory the unikernels' .xl files are in")
            found += sorted(xls + templates)
        elif artifacts.is_file(arg):
            found.append(arg)
        elif any(c in str(arg) for c in "*?["):
            matched = sorted(Path(p) for p in glob.glob(str(arg)))
            if not matched:
                bad_input(f"{arg}: no file matches", hint="a pattern like tests/*.xl")
            found += matched
        else:
            bad_input(f"{arg}: no such file", hint="give .xl files, directories of them, or patterns")
    return list(dict.fromkeys(found))


def cases(files: Sequence[Path], default: Expectation, config: LabConfig) -> list[Case]:
    """One case per file, checked before anything runs: its name (unique), its memory, its
    expectation; each file read as deploy reads it (a template filled in for this lab)."""
    from lab.fix import read_as_filled
    from lab.xl.model import Domain
    from lab.xl.template import DEFAULT_MEMORY

    out: list[Case] = []
    names: dict[str, Path] = {}
    for xl in files:
        dom = Domain(read_as_filled(xl, config)[0])
        name, memory = dom.name or xl.stem, dom.memory
        if name in names:
            bad_input(f"{xl}: domain {name!r} again (also {names[name]})",
                      hint="two unikernels of one suite run at the same time: give each its own name")
        names[name] = xl
        # A file that names no memory is counted at what a template's @MEMORY@ gets.
        out.append(Case(xl, name, memory or DEFAULT_MEMORY, load(xl, default)))
    return out


@dataclass
class Suite:
    outcomes: list[Outcome]
    seconds: float

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    def summary(self) -> str:
        passed = len(self.outcomes) - len(self.failed)
        return (f"{passed} passed, {len(self.failed)} failed of {len(self.outcomes)} unikernels "
                f"in {self.seconds:.1f} s")

    def to_json(self) -> dict[str, object]:
        return {"passed": not self.failed, "seconds": round(self.seconds, 2),
                "unikernels": [o.to_json() for o in self.outcomes]}


def run_suite(todo: Sequence[Case], request: Callable[[Case], Request], labs: Sequence[Lab], jobs: int,
              done: Callable[[Outcome], None] = lambda o: None) -> Suite:
    """Every case, several at once; done(outcome) as each ends (from its thread)."""
    if len(labs) == 1 and not labs[0].state.ssh:
        no_lab(labs[0].state_dir)  # once, not once per unikernel
    start = time.monotonic()
    budget = placement.read(labs[0]).free_mb if len(labs) == 1 else None  # Xen's free MiB
    lock = threading.Condition()
    stop = threading.Event()
    running: dict[str, int] = {}  # name -> memory
    outcomes: dict[str, Outcome] = {}

    def one(case: Case) -> None:
        from lab import ui

        try:
            with ui.quiet():
                lab = labs[0] if len(labs) == 1 else placement.place(list(labs), case.xl)
                outcome = run(request(case), lab, echo=False, expected=case.expected, stop=stop)
        except LabError as exc:
            outcome = Outcome.not_run(case.name, exc, case.expected)
        with lock:
            outcomes[case.name] = outcome
            del running[case.name]
            lock.notify_all()
        done(outcome)

    def fits(case: Case) -> bool:
        if len(running) >= jobs:
            return False
        # Alone, a case is tried whatever its size: xl says why it does not fit.
        return not running or budget is None or sum(running.values()) + case.memory <= budget

    # Waited for through `running`, not Thread.join: a join that Ctrl-C interrupts can leave the
    # thread marked as ended while it runs (CPython before 3.13), and its guest on the lab host.
    threads = []
    try:
        for case in todo:
            with lock:
                lock.wait_for(lambda case=case: fits(case))  # type: ignore[misc]
                running[case.name] = case.memory
            thread = threading.Thread(target=one, args=(case,), name=f"xenlab-run-{case.name}")
            try:
                thread.start()
            finally:
                if thread.ident is None:  # never started: nothing to wait for
                    with lock:
                        running.pop(case.name, None)
            threads.append(thread)
        with lock:
            lock.wait_for(lambda: not running)
    except BaseException:
        stop.set()  # Ctrl-C: none more starts; those running stop, and are removed
        with lock:
            lock.wait_for(lambda: not running)
        raise
    for thread in threads:
        thread.join()  # each has said how it ended
    return Suite([outcomes[c.name] for c in todo if c.name in outcomes], time.monotonic() - start)
