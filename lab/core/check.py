"""`xenlab check`: run the shipped testinfra checks against the lab over xenlab's ssh-config."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

from lab import run, ui, xen_info
from lab.checks import facts
from lab.errors import LabError, no_lab
from lab.lab import Lab
from lab.remote import Remote
from lab.ssh import HOST_ALIAS, SshFiles

CHECKS = Path(__file__).resolve().parent.parent / "checks" / "test_lab.py"


def check(lab: Lab, junit_xml: Path | None = None, verbose: bool = False) -> int:
    ssh = SshFiles.in_dir(lab.state_dir)
    if not ssh.config.exists():
        no_lab(lab.state_dir)
    config = lab.config
    settings = {
        "bridge": config.bridge, "fact_values": facts.values(config), "netns": config.host_netns,
        "domains": {name: asdict(record) for name, record in lab.state.domains.items()},
        # An existing host has no host-only network to this machine: guests are reached from it.
        "user_side": not lab.provider.existing,
    }
    # Which Xen, paging how: what every result below is about.
    with contextlib.suppress(LabError), Remote.open(lab) as remote:
        ui.info(f"lab host: {xen_info.read(remote).summary()}")
    cmd = [sys.executable, "-m", "pytest", str(CHECKS), f"--hosts=ssh://{HOST_ALIAS}",
           f"--ssh-config={ssh.config}", "--sudo", "-p", "no:cacheprovider", "--rootdir",
           str(CHECKS.parent), "-q" if not verbose else "-v", "--tb=line"]
    if junit_xml:
        cmd.append(f"--junit-xml={junit_xml}")
    return run.passthrough(cmd, env={"XENLAB_CHECK": json.dumps(settings)})
