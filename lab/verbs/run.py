"""`xenlab run FILE...`."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from lab.verbs.guest_options import checked, guest_options, placed


@click.command("run")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@guest_options
@click.option("--timeout", default=300.0, show_default=True,
              help="Seconds a guest may run before it is stopped (exit 124).")
@click.option("--junit-xml", type=click.Path(path_type=Path),
              help="Write a JUnit report (for CI): one test case per unikernel.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, metavar="N",
              help="Of several unikernels, at most N at once (default: as many as the lab host's "
                   "free memory holds, up to 8).")
@click.option("--expect-ended", type=click.Choice(("poweroff", "crash", "reboot", "timeout")),
              help="How each guest must end to pass (a NAME.expect beside the file says it for one).")
@click.option("--expect-status", type=int, metavar="N",
              help="The exit status each guest's console must report (with a poweroff).")
@click.option("--expect-console", multiple=True, metavar="REGEX",
              help="A regular expression some console line must match (repeatable).")
def command(files: tuple[Path, ...], as_json: bool, junit_xml: Path | None, host: str | None,
            jobs: int | None, expect_ended: str | None, expect_status: int | None,
            expect_console: tuple[str, ...], **kw: Any) -> None:
    """Run unikernels as tests: FILE.xl's console on stdout until it ends, then removed; exit
    with the status its console reports (Solo5's `solo5_exit(N) called`; 0 for a plain poweroff),
    1 for a crash or reboot, 124 at the timeout. Several files, directories or patterns run as
    one suite, several at once: one line per unikernel, a summary, one JUnit report, exit 1 when
    any failed. NAME.expect beside a file (or --expect-*) says when a test must end otherwise."""
    from lab.expectations import Expectation
    from lab.expectations import checked as expectation

    given = expect_ended is not None or expect_status is not None or expect_console
    default = expectation(expect_ended, expect_status, expect_console, "options") if given \
        else Expectation()
    if len(files) == 1 and files[0].is_file():
        _one(files[0], default, as_json, junit_xml, host, **kw)
    else:
        _suite(files, default, as_json, junit_xml, host, jobs, **kw)


def _one(file: Path, default: Any, as_json: bool, junit_xml: Path | None, host: str | None,
         **kw: Any) -> None:
    from lab import ui
    from lab.core.run import run, write_junit
    from lab.expectations import load

    expected = load(file, default)
    if expected.timeout is not None:
        kw["timeout"] = expected.timeout
    req, h = placed(file, host, **kw)
    outcome = run(req, h, echo=not as_json, expected=expected)
    if junit_xml:
        write_junit([outcome], junit_xml)
    if outcome.status_hidden and outcome.ended == "poweroff":
        ui.warn("the command line hides Solo5's exit line (--solo5:quiet, error or warn): only a "
                "poweroff and a crash can be told apart, not the exit status")
    if as_json:
        ui.emit_json(outcome.to_json())
    elif outcome.passed:
        ui.info(outcome.verdict())
    else:
        ui.error(outcome.verdict(), outcome.hint())
    sys.exit(outcome.command_status)


def _suite(paths: tuple[Path, ...], default: Any, as_json: bool, junit_xml: Path | None,
           host: str | None, jobs: int | None, **kw: Any) -> None:
    import threading

    from rich.markup import escape

    from lab import ui
    from lab.core.run import write_junit
    from lab.core.suite import MAX_JOBS, cases, files_of, run_suite
    from lab.errors import bad_input
    from lab.verbs.options import hosts, settings

    resolved = settings()
    todo = cases(files_of(paths), default, resolved.config)
    base = checked(todo[0].xl, **kw)  # the options, refused before any host is asked
    if len(todo) > 1 and (base.ip or base.static):
        bad_input(f"--{'ip' if base.ip else 'static'} names one address, and {len(todo)} unikernels "
                  "run at once", hint="--static without an address gives each a free one")
    labs = hosts(resolved, host)
    lock = threading.Lock()

    def done(outcome: Any) -> None:
        with lock:
            mark = "[green]✓[/green]" if outcome.passed else "[red]✗[/red]"
            ui.info(f"{mark} {escape(outcome.verdict())}")

    def request(case: Any) -> Any:
        timeout = case.expected.timeout if case.expected.timeout is not None else base.timeout
        return replace(base, xl=case.xl, timeout=timeout)

    ui.info(f"running {len(todo)} unikernels, up to {jobs or MAX_JOBS} at once "
            f"({'as many as Xen has free memory for' if not jobs else 'as asked'})")
    suite = run_suite(todo, request, labs, jobs or MAX_JOBS, done)
    if junit_xml:
        write_junit(suite.outcomes, junit_xml, suite.seconds)
    if as_json:
        ui.emit_json(suite.to_json())
    for outcome in suite.failed:  # each failure's last words, apart from the others'
        for line in outcome.console[-10:]:
            sys.stderr.write(f"{outcome.name}| {line}\n")
        sys.stderr.write(f"{outcome.name}: {outcome.hint()}\n")
    ui.info(suite.summary())
    sys.exit(1 if suite.failed else 0)
