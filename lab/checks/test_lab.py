"""`xenlab check`: the lab host and every deployed guest, as testinfra tests.

Run by `xenlab check` with pytest's testinfra plugin (--hosts=ssh://xenlab --ssh-config=...);
the lab's settings and deployed domains arrive as JSON in XENLAB_CHECK.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any

import pytest

from lab.checks import facts
from lab.checks import host as checks
from lab.config import LabConfig
from lab.lab_host import DNSMASQ_LEASES
from lab.probe import Probe

SETTINGS: dict[str, Any] = json.loads(os.environ.get("XENLAB_CHECK", "{}"))
DOMAINS: dict[str, dict[str, Any]] = SETTINGS.get("domains", {})
BRIDGE = SETTINGS.get("bridge", "br0")
VALUES: tuple[str, ...] = tuple(SETTINGS.get("fact_values") or facts.values(LabConfig()))


def _fact_test(fact: facts.Fact) -> Any:
    def test(host: Any) -> None:
        checks.holds(host, fact.id, VALUES)

    test.__name__ = test.__qualname__ = f"test_{fact.id}"
    test.__doc__ = f"The lab host fact {fact.id!r} (lab/checks/facts.py)."
    return test


# One test per fact, named after it (test_xen_dom0, test_bridge, ...), in the facts' order.
for _fact in facts.FACTS:
    globals()[f"test_{_fact.id}"] = _fact_test(_fact)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_guest_running_and_leased(host: Any, name: str) -> None:
    assert host.run(f"xl domid {name}").rc == 0, f"{name} is not running (xl list): redeploy it"
    if DOMAINS[name].get("address", "dhcp") != "dhcp":
        return  # a static address or no network: no lease to hold
    mac = DOMAINS[name]["mac"]
    leases = host.check_output(f"cat {DNSMASQ_LEASES}")
    assert mac in leases, \
        f"{name} ({mac}) holds no lease: is its vif on {BRIDGE}? see `xenlab console --log {name}`"


def _reach(host: Any, argv: list[str]) -> int:
    """Run argv where the lab network's users are: this machine's side of the host-only network,
    or, for an existing host (no host-only network to this machine), the lab host itself."""
    if SETTINGS.get("user_side", True):
        return checks.from_user_side(argv, SETTINGS.get("netns", "")).returncode
    return int(host.run(shlex.join(argv)).rc)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_guest_reachable_from_the_users_side(host: Any, name: str) -> None:
    d = DOMAINS[name]
    if d.get("address") == "none":
        pytest.skip(f"{name} has no network")
    ip = d.get("ip")
    assert ip, f"{name} has no recorded IP: deploy it again"
    ping = _reach(host, ["ping", "-c", "2", "-W", "2", ip])
    assert ping == 0, f"{name} ({ip}) does not answer ping: host-only NIC promiscuous? route?"
    probe = d.get("probe")
    if probe:
        # The same probe deploy ran, with this interpreter on this side, python3 on the lab host.
        python = sys.executable if SETTINGS.get("user_side", True) else "python3"
        argv = Probe.recorded(probe).argv(python, ip)
        assert _reach(host, argv) == 0, f"{name} ({ip}) does not answer its probe {probe}"
