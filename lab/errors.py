"""The one exception type xenlab raises for anything a user can act on."""

from __future__ import annotations

# Not `from typing import ...`: `xenlab image` imports this module, and typing costs it start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

# Exit codes, documented in the README; the CLI maps every failure onto one of them.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


class LabError(Exception):
    """A failure with a one-line message, an optional hint and the exit code to leave with."""

    def __init__(self, message: str, hint: str | None = None, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def die(message: str, hint: str | None = None, code: int = EXIT_FAILURE) -> NoReturn:
    raise LabError(message, hint=hint, code=code)


def bad_input(message: str, hint: str | None = None) -> NoReturn:
    raise LabError(message, hint=hint, code=EXIT_USAGE)


def no_lab(state_dir: object) -> NoReturn:
    """The one way to say that this directory has no lab (yet)."""
    die(f"no lab here yet ({state_dir} holds none)", hint="`xenlab up` creates one")
