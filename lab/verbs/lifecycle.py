"""`xenlab halt`, `xenlab destroy`, `xenlab status`: the lab VM's lifecycle after `up`."""

from __future__ import annotations

import shutil
from pathlib import Path

from lab import providers, ui
from lab.config import LabConfig
from lab.errors import no_lab
from lab.providers import VmStatus
from lab.state import LabState


def _provider(config: LabConfig, state_dir: Path) -> providers.Provider:
    state = LabState.load(state_dir)
    if not state.provider and config.provider == "auto":
        no_lab(state_dir)
    return providers.get(providers.choose(config, state.provider), config, state_dir)


def halt(config: LabConfig, state_dir: Path) -> None:
    with ui.step("Stopping the lab VM"):
        _provider(config, state_dir).halt()


def destroy(config: LabConfig, state_dir: Path) -> None:
    with ui.step("Destroying the lab VM"):
        _provider(config, state_dir).destroy()
    # A new VM has a new host key and a new disk: nothing recorded about this one stays true.
    for name in ("state.json", "known_hosts", "ssh_config", "inventory.ini", "lab-vars.json"):
        (state_dir / name).unlink(missing_ok=True)
    for scratch in ("cp", "ansible-tmp"):  # SSH control sockets, Ansible's remote temp
        shutil.rmtree(state_dir / scratch, ignore_errors=True)


def status(config: LabConfig, state_dir: Path) -> dict[str, object]:
    state = LabState.load(state_dir)
    if not state.provider:
        # Logs and built images outlive a lab on purpose; anything else is a lab half-made.
        left = sorted(p.name for p in state_dir.glob("*")
                      if p.suffix != ".log" and p.name not in ("images", "ansible-tmp", "cp"))
        if left:  # an `up` stopped before the lab could be reached: its disk and keys are kept
            return {"provider": None, "state": "incomplete",
                    "detail": f"an interrupted `xenlab up` left {', '.join(left)} in {state_dir}; "
                              "`xenlab up` resumes from it"}
        return {"provider": None, "state": "absent", "detail": "no lab created here"}
    vm: VmStatus = _provider(config, state_dir).status()
    return {"provider": state.provider, "state": vm.state, "detail": vm.detail,
            "provisioned": state.provisioned,
            "ssh": f"ssh -F {state_dir / 'ssh_config'} xenlab" if vm.state == "running" else None}
