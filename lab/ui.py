"""Everything xenlab shows a person: nested steps with timings, progress, warnings, JSON.

Human output goes to stderr so that stdout stays data (`--json`, `xl show`, diffs) for pipes.
rich is imported on first use only: `xenlab --help` must not pay for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time

# `xenlab image --json` and every error message import this module: no typing or dataclasses at
# run time (start-up, see bench/bench_image.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from rich.console import Console


class _Settings:
    __slots__ = ("depth", "json", "verbose")

    def __init__(self) -> None:
        self.verbose = False
        self.json = False
        self.depth = 0


settings = _Settings()
_console: Console | None = None


def colour_enabled(stream: Any = sys.stderr) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(
            stderr=True,
            no_color=not colour_enabled(),
            highlight=False,
            force_terminal=None if sys.stderr.isatty() else False,  # NO_COLOR: no colour, still live
        )
    return _console


_threads = threading.local()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No steps, progress or info from this thread (the unikernels of a suite run side by side:
    the suite says what each did); warnings and errors still show."""
    _threads.quiet = True
    try:
        yield
    finally:
        _threads.quiet = False


def _silent() -> bool:
    return settings.json or getattr(_threads, "quiet", False)


def _say(text: str) -> None:
    if _silent():
        return
    console().print("  " * settings.depth + text, soft_wrap=True)


def info(text: str) -> None:
    _say(text)


def detail(text: str) -> None:
    if settings.verbose:
        from rich.markup import escape

        _say(f"[dim]{escape(text)}[/dim]")  # commands and their output: `[csd]` is not markup


def warn(text: str) -> None:
    # Warnings matter even in --json mode; they go to stderr, never into the data.
    console().print("  " * settings.depth + f"[yellow]warning:[/yellow] {text}", soft_wrap=True)


@contextlib.contextmanager
def step(title: str, timings: dict[str, float] | None = None, key: str = "") -> Iterator[None]:
    """A unit of work shown as `▸ title` ... `✓ title (1.2 s)`, nested by depth; its duration
    is also stored in timings[key] when given."""
    _say(f"[bold]▸[/bold] {title}")
    start = time.monotonic()
    nests = not _silent()  # a quiet thread's steps leave the shown nesting alone
    settings.depth += nests
    ok = False
    try:
        yield
        ok = True
    finally:
        settings.depth -= nests
        took = time.monotonic() - start
        if timings is not None:
            timings[key or title] = took
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        _say(f"{mark} {title} [dim]({took:.1f} s)[/dim]")


def print_out(renderable: Any) -> None:
    """A rich renderable as data on stdout: colour only on a terminal without NO_COLOR, and 100
    columns when stdout is a pipe or a file."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    Console(no_color=not colour_enabled(sys.stdout), highlight=False, force_terminal=None if tty else False,
            width=None if tty else 100).print(renderable)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def error(message: str, hint: str | None) -> None:
    # Plain writes, not rich: the error path must work even if rendering is what broke.
    red, reset = ("\033[31m", "\033[0m") if colour_enabled() else ("", "")
    sys.stderr.write(f"{red}error:{reset} {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")


@contextlib.contextmanager
def transfer(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for bytes on their way, fed by a callback(done, total); on a terminal only
    (a log gets the one-line summary the caller prints after)."""
    if _silent() or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("  " * settings.depth + "{task.description}"), BarColumn(),
               DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, _total: bar.update(task, completed=done)


class _QuietStatus:
    """Stand-in for live status lines where there is no terminal to redraw."""

    def __enter__(self) -> _QuietStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, text: str, key: str = "") -> None:
        return None


def live_status(text: str) -> Any:
    """A spinner line with the time elapsed and a text that can be updated; silent when not on
    a terminal (the steps around it say what happened)."""
    return live_lines({"": text})


def live_lines(lines: dict[str, str]) -> Any:
    """live_status with one line per key (a host of several): update(text, key=KEY)."""
    if _silent() or not sys.stderr.isatty():
        return _QuietStatus()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("  " * settings.depth), SpinnerColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=console(), transient=True)
    tasks = {key: progress.add_task(text, total=None) for key, text in lines.items()}

    class _Lines:
        def __enter__(self) -> _Lines:
            progress.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            progress.__exit__(None, None, None)

        def update(self, text: str, key: str = "") -> None:
            progress.update(tasks[key], description=text)

    return _Lines()
