"""The options `deploy` and `run` share: how FILE.xl becomes a guest on the lab."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lab.verbs.options import json_option

if TYPE_CHECKING:
    from lab.core.deploy import Request
    from lab.lab import Lab


def guest_options(f: Any) -> Any:
    from lab.bootargs import DIALECTS

    options: list[Any] = [
        click.option("--image", "images", multiple=True, metavar="IMG=DIR",
                     help="Build block image IMG from DIR (fat:/tar: prefix or from the name)."),
        click.option("--strict", is_flag=True,
                     help="Refuse a file that needs repairs instead of repairing it."),
        click.option("--replace", is_flag=True, help="Replace a running domain of the same name."),
        click.option("--arg", "args", multiple=True, metavar="ARG",
                     help="A boot argument for the unikernel (repeatable), e.g. --arg --hello=world."),
        click.option("--static", is_flag=False, flag_value="", default=None, metavar="[IP]",
                     help="A static address as boot arguments: a free one of the static range, "
                          "or IP."),
        click.option("--arg-style", "dialect", type=click.Choice(DIALECTS),
                     help="Boot-argument dialect for --static: --ipv4=A/N (mirage4) or "
                          "ipv4=A/N (mirage3); default: from the kernel, else mirage4."),
        click.option("--network/--no-network", default=None,
                     help="Give the guest a vif on the lab bridge, or none; default: from the file."),
        click.option("--sha256", metavar="HEX",
                     help="Refuse a kernel whose sha256 differs (a binary unikernel's identity)."),
        json_option,
        click.option("--host", metavar="NAME", help="Of several existing hosts, NAME (default: the "
                     "one with the most free memory that has the lab bridge)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def placed(file: Path, host: str | None, **kw: Any) -> tuple[Request, Lab]:
    """The checked request, and the host it goes to; the request is checked before any host is
    asked where the guest goes."""
    from lab.placement import place
    from lab.verbs.options import hosts, settings

    req = checked(file, **kw)
    return req, place(hosts(settings(), host), file)


def checked(file: Path, **kw: Any) -> Request:
    from lab.core.deploy import Request

    req = Request(file, **kw)
    req.check()
    return req
