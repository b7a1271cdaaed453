"""What several verbs share: their common options, the settings they load, the hosts they act on,
and the one policy for a host of several that fails."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lab.config import Resolved
    from lab.lab import Lab

T = TypeVar("T")

def _json_mode(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    from lab import ui

    ui.settings.json = value  # human output goes quiet as soon as --json is seen
    return value


def json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, callback=_json_mode,
                        help="Print data as JSON on stdout.")(f)


def lab_flags(f: Any) -> Any:
    """The settings declared as flags in lab/config.py, as options named after them."""
    from lab.config import FIELDS

    for name, field in reversed(FIELDS.items()):
        meta = field.metadata
        if meta["flag"]:
            kind = click.Choice(meta["choices"]) if meta["choices"] else type(field.default)
            f = click.option(f"--{name.replace('_', '-')}", name, type=kind,
                             help=f"{meta['help'][0].upper()}{meta['help'][1:]} "
                                  f"(default: {field.default}).")(f)
    return f


def host_option(f: Any) -> Any:
    return click.option("--host", metavar="NAME",
                        help="Of several existing hosts, only NAME (default: all of them).")(f)


def settings(**flags: Any) -> Resolved:
    from lab import config

    return config.load(flags=flags)


def state_dir(resolved: Resolved) -> Path:
    return Path(resolved.config.state_dir).resolve()


def hosts(resolved: Resolved, host: str | None) -> list[Lab]:
    """The lab hosts a verb acts on: the directory's one lab, or those of several (--host)."""
    from lab import hosts as lab_hosts

    return lab_hosts.chosen(resolved, state_dir(resolved), host)


def one_host(resolved: Resolved, host: str | None, verb: str) -> Lab:
    from lab import hosts as lab_hosts

    return lab_hosts.one(resolved, state_dir(resolved), host, verb)


def per_host(resolved: Resolved, results: dict[str, Any]) -> Any:
    """One host's result as it is; several as {"hosts": {name: result}}."""
    return {"hosts": results} if resolved.hosts else next(iter(results.values()))


def each_host(chosen: Iterable[Lab], work: Callable[[Lab], T]) -> tuple[dict[str, T], list[str]]:
    """work(host) for each host: ({name: result}, [names of hosts that failed]). The one lab's
    failure is the command's; of several hosts, one that fails (down, no lab) is warned about
    and the others still answer, and the caller exits 1 for an incomplete answer."""
    from lab import ui
    from lab.errors import LabError

    results: dict[str, T] = {}
    failed: list[str] = []
    for h in chosen:
        try:
            results[h.name] = work(h)
        except LabError as exc:
            if not h.name:
                raise
            ui.warn(f"{h.name}: {exc.message}")
            failed.append(h.name)
    return results, failed
