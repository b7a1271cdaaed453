"""The `xenlab` command: the group, its global options, the verbs of lab/verbs registered on it,
and the one place a click error becomes an `error:` line.

Only click is imported at module level; each verb imports what it needs, so `xenlab --help` stays
fast (see bench/).
"""

from __future__ import annotations

import sys

import click

from lab.errors import EXIT_INTERRUPTED


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # Verbs in the order a user meets them, not alphabetical.
        return list(self.commands)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show each command xenlab runs and its output.")
@click.version_option(package_name="xenlab", prog_name="xenlab")
def cli(verbose: bool) -> None:
    """A Xen lab for unikernels: `xenlab up` builds it; `fix` and `image` prepare a unikernel."""
    from lab import ui

    ui.settings.verbose = verbose


def _register() -> None:
    import importlib

    from lab.verbs import VERBS

    for verb in VERBS:
        cli.add_command(importlib.import_module(f"lab.verbs.{verb}").command, verb)


_register()


def _command_path(ctx: click.Context | None) -> str:
    """`xenlab deploy`, however the executable was started (`python -m lab` included)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["xenlab", *reversed(names)])


def run() -> None:
    """The whole command line through click; lab.entry.main reports what this raises."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # click's own message, in the shape of every other refusal: one `error:` line, a hint.
        from lab import ui

        ctx = getattr(exc, "ctx", None)
        ui.error(exc.format_message(), f"`{_command_path(ctx)} --help` lists what it takes")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
