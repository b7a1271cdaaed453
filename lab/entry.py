"""The `xenlab` executable: every failure leaves as one line and an exit code, never a traceback.

`xenlab image fat|tar` in its usual forms is read by lab.image.arguments and run without importing
click or the rest of the CLI (start-up was most of a small image's time); every other command
line goes to lab.cli.
"""

from __future__ import annotations

import signal
import sys

from lab.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, LabError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def main() -> None:
    # A file name's bytes need not be UTF-8, nor the locale able to show every character: what
    # cannot be written is written escaped, never an exception in the middle of a message.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    from lab.image.arguments import quick

    image = quick(sys.argv[1:])
    if image is None:
        from lab.cli import run

        reported(run)
        return

    def build() -> None:
        from lab.core.image import image as build_image

        build_image(**image)

    reported(build)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, unwound like Ctrl-C: what a verb cleans up on the way out (a loop mount, a
    half-built image, a half-deployed domain) is cleaned up when a CI job or a kill stops it too."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def reported(work: Callable[[], None]) -> None:
    """Run `work`; what it raises becomes an `error:` line (and a `hint:`) and an exit code."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        work()
    except LabError as exc:
        from lab import ui

        ui.error(exc.message, exc.hint)
        sys.exit(exc.code)
    except _Terminated:
        sys.stderr.write("terminated\n")
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_FAILURE)
    except OSError as exc:
        # The last resort: a system error no verb turned into its own message is still one line.
        from lab import ui

        where = f"{exc.filename}: " if exc.filename else ""
        ui.error(f"{where}{exc.strerror or exc}", _OS_HINTS.get(exc.errno or 0, "this is xenlab's bug "
                 "to report, with the command"))
        sys.exit(EXIT_FAILURE)


# What a system error no verb named itself usually asks of the user (errno's numbers: no import).
_OS_HINTS = {
    28: "the disk is full: free space and run it again",  # ENOSPC
    13: "check the permissions of that path (or run xenlab as the user who owns it)",  # EACCES
    1: "check the permissions of that path (or run xenlab as the user who owns it)",  # EPERM
    30: "that file system is read-only: give a path on a writable one",  # EROFS
    36: "the name is too long for the file system: give a shorter one",  # ENAMETOOLONG
    40: "a symbolic link points back at itself: fix or remove it",  # ELOOP
    122: "the disk quota is used up: free space and run it again",  # EDQUOT
}
