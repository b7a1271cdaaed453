"""Checks of a provisioned lab host for tests, each failing with the likely cause: the facts of
lab/checks/facts.py on a testinfra host (reached over xenlab's ssh-config, so the pinned host key
is enforced), and the user's side of the host-only network."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

from lab.checks import facts
from lab.config import LabConfig


def holds(remote: Any, fact_id: str, values: tuple[str, ...] | None = None) -> None:
    """Assert one fact of lab/checks/facts.py on a testinfra host, naming every difference and
    its likely cause. values: the lab's settings as facts.values() gives them (default: the
    default lab's)."""
    fact = facts.BY_ID[fact_id]
    script = facts.script([fact], values or facts.values(LabConfig()), name=f"xenlab-{fact_id}")
    problems = [line for line in remote.check_output(shlex.join(script.argv())).splitlines()
                if line.strip()]
    assert not problems, f"{'; '.join(problems)} ({fact.cause})"


def from_user_side(argv: list[str], netns: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run argv on the user's side of the host-only network (this machine, or its netns)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)


def lease_from_user_side(netns: str, interface: str, workdir: Path,
                         config: LabConfig | None = None) -> tuple[str, str]:
    """A real DHCP exchange from the user's side; returns (ip, router) without configuring, and
    asserts the address is of the lab's DHCP range (default: the default lab's)."""
    import ipaddress

    config = config or LabConfig()
    script = workdir / "udhcpc.script"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip $router"\nexit 0\n')
    script.chmod(0o755)
    r = from_user_side(["busybox", "udhcpc", "-i", interface, "-n", "-q", "-f", "-t", "10", "-T", "3",
                        "-s", str(script)], netns, timeout=120)
    leases = [line.split() for line in r.stdout.splitlines() if line.startswith("LEASE")]
    assert leases, f"no DHCP answer on {interface}: {r.stdout} {r.stderr}"
    ip, router = leases[0][1], leases[0][2]
    low, high, got = map(ipaddress.IPv4Address, (config.dhcp_start, config.dhcp_end, ip))
    assert low <= got <= high, f"{ip} is not of the DHCP range {low}-{high}"
    return ip, router
