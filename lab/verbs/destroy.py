"""`xenlab destroy [NAME]`."""

from __future__ import annotations

from typing import Any

import click

from lab.verbs.options import host_option, hosts, lab_flags, settings


@click.command("destroy")
@click.argument("name", required=False)
@lab_flags
@host_option
def command(name: str | None, host: str | None, **flags: Any) -> None:
    """Destroy the domain NAME on the lab; without NAME, remove the lab VM and its disk (from an
    existing host: only the domains deployed from here, and their files)."""
    resolved = settings(**flags)
    if name:
        from lab.domain import destroy as destroy_domain
        from lab.placement import holder

        destroy_domain(holder(hosts(resolved, host), name), name)
        return
    from lab.core.lifecycle import destroy

    for h in hosts(resolved, host):
        destroy(h)
