"""`xenlab halt`, `xenlab destroy`, `xenlab status`: the lab VM's lifecycle after `up`."""

from __future__ import annotations

import shutil

from lab import playbook, providers, state, ui
from lab import share as lab_share
from lab.core.deploy import IMAGES
from lab.errors import LabError, no_lab
from lab.lab import Lab
from lab.providers import VmStatus, qemu_cache
from lab.ssh import SshFiles


def _provider(lab: Lab) -> providers.Provider:
    if not lab.state.provider and lab.config.provider == "auto":
        no_lab(lab.state_dir)
    return lab.provider


def halt(lab: Lab) -> None:
    provider = _provider(lab)
    with ui.step("Leaving the existing host running" if provider.existing else "Stopping the lab VM"):
        provider.halt()


def destroy(lab: Lab) -> None:
    provider = _provider(lab)
    with ui.step("Removing this lab's domains from the existing host" if provider.existing
                 else "Destroying the lab VM"):
        if provider.existing and lab.state.ssh:
            # Only what this lab directory deployed: its domains, their files, reservations.
            from lab import domain
            from lab.remote import Remote

            names = sorted(lab.state.domains)
            with Remote.open(lab) as remote:
                for name in names:
                    domain.remove(remote, name, files=True)
            ui.info(f"removed {len(names)} domain(s) deployed from here, and their files")
        provider.destroy()
    # A new VM has a new host key and a new disk: nothing recorded about this one stays true.
    # An existing host's key is forgotten too: the next `up` has it vouched for again.
    # Each module that keeps files about the VM names them; logs and built images stay.
    state_dir = lab.state_dir
    for path in (*state.owned(state_dir), *SshFiles.owned(state_dir), *playbook.owned(state_dir),
                 *lab_share.owned(state_dir)):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def status(lab: Lab) -> dict[str, object]:
    # The machine's image cache, whatever the lab: it is what makes the next `up` fast or slow.
    return {**_lab_status(lab), "cache": qemu_cache.usage()}


def _lab_status(lab: Lab) -> dict[str, object]:
    state, state_dir = lab.state, lab.state_dir
    if not state.provider:
        # Logs and built images outlive a lab on purpose; anything else is a lab half-made.
        left = sorted(p.name for p in state_dir.glob("*")
                      if p.suffix != ".log" and p.name not in (IMAGES, *playbook.SCRATCH))
        if left:  # an `up` stopped before the lab could be reached: its disk and keys are kept
            return {"provider": None, "state": "incomplete",
                    "detail": f"an interrupted `xenlab up` left {', '.join(left)} in {state_dir}; "
                              "`xenlab up` resumes from it"}
        return {"provider": None, "state": "absent", "detail": "no lab created here"}
    vm = vm_status(lab)
    network = xen = None
    if vm.state == "running" and state.provisioned:
        from lab import topology, xen_info
        from lab.remote import Remote

        try:
            with Remote.open(lab) as remote:  # one connection for both readings
                network = topology.read(lab, remote).summary()
                xen = xen_info.read(remote).summary()
        except LabError as exc:  # status reports; it does not fail on what it reports
            network = network or f"not readable: {exc.message}"
    return {"provider": state.provider, "state": vm.state, "detail": vm.detail,
            "provisioned": state.provisioned, "xen": xen, "network": network,
            "ssh": SshFiles.in_dir(state_dir).ssh_line() if vm.state == "running" else None}


def vm_status(lab: Lab) -> VmStatus:
    return _provider(lab).status()
