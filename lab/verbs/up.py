"""`xenlab up`."""

from __future__ import annotations

from typing import Any

import click

from lab.verbs.options import host_option, hosts, json_option, lab_flags, one_host, settings, state_dir


@click.command("up")
@lab_flags
@json_option
@click.option("--provision", is_flag=True,
              help="Run Ansible even when the lab is converged (it is skipped otherwise).")
@click.option("--trust-host-key", multiple=True, metavar="SHA256:...",
              help="Provider ssh: pin an existing host's SSH key on first contact if it has this "
                   "fingerprint (the error of a first `up` shows it; verify it on the host). "
                   "Repeat it for several hosts.")
@click.option("--allow-reboot", is_flag=True,
              help="Provider ssh: the existing host may be rebooted into Xen (never without).")
@click.option("--skip-tags", default="", hidden=True,
              help="Ansible tags to skip (comma-separated), for development.")
@host_option
def command(as_json: bool, provision: bool, trust_host_key: tuple[str, ...], allow_reboot: bool,
            skip_tags: str, host: str | None, **flags: Any) -> None:
    """Build the lab VM, or take existing hosts, and make them Xen lab hosts; on a converged lab,
    only prove it still is."""
    from lab import ui
    from lab.core.up import Options, up, up_hosts
    from lab.errors import LabError

    resolved = settings(**flags)
    options = Options(tuple(t for t in skip_tags.split(",") if t), provision, allow_reboot,
                      trust_host_key)
    if not resolved.hosts:
        # one_host: --host on a directory with one lab is an error
        result = up(one_host(resolved, host, "up"), options)
        if as_json:
            ui.emit_json(result.to_json())
        return
    chosen = hosts(resolved, host)
    many = up_hosts(chosen, state_dir(resolved), options)
    if as_json:
        ui.emit_json(many.to_json())
    if many.failed:
        raise LabError(f"{len(many.failed)} of {len(chosen)} hosts not ready: "
                       + "; ".join(f"{name}: {why}" for name, why in many.failed.items()),
                       hint=f"{', '.join(many.ready) or 'no host'} ready; after fixing the rest, "
                            "`xenlab up` again (a ready host is found converged and left alone)")
