"""The lab contract: what the Python side assumes about the lab host is what the roles make, and
the Vagrantfile's stand-alone defaults are the settings' defaults. Each fact has one home in the
code; these tests hold the other languages (YAML, Ruby) to it."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT

from lab import domain
from lab.config import LabConfig
from lab.playbook import lab_vars
from lab.providers import ProviderFacts


def role_defaults() -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted((ROOT / "roles").glob("*/defaults/main.yml")):
        out.update(yaml.safe_load(path.read_text()) or {})
    return out


def test_roles_defaults_are_the_settings_defaults() -> None:
    """A role run without xenlab (plain ansible-playbook) makes the same lab xenlab would."""
    defaults = role_defaults()
    handed = lab_vars(LabConfig(), ProviderFacts(uplink_mac=""))
    differ = {k: (v, defaults.get(k)) for k, v in handed.items()
              if k in defaults and str(v) != str(defaults[k])}
    assert not differ, differ
    missing = sorted(set(handed) - set(defaults))
    assert not missing, f"variables xenlab hands the roles that have no role default: {missing}"


@pytest.mark.parametrize(("constant", "variable"), [
    (domain.LEASES, "lab_dhcp_leasefile"),
    (domain.HOSTS_DIR, "lab_dhcp_hostsdir"),
    (domain.DNSMASQ_LOG, "lab_dhcp_log"),
    (domain.CONSOLE_LOGS, "xen_hypervisor_console_log_dir"),
])
def test_lab_host_paths_are_where_the_roles_put_them(constant: str, variable: str) -> None:
    assert role_defaults()[variable] == constant


def test_vagrantfile_defaults_are_the_settings_defaults() -> None:
    text = (ROOT / "Vagrantfile").read_text()
    found = dict(re.findall(r'^\s*"(\w+)" => "?([^",\n]+)"?,', text, re.M))
    c = LabConfig()
    assert found["box"] == c.vagrant_box and found["lab_ip"] == c.lab_ip
    assert int(found["memory"]) == c.vm_memory and int(found["cpus"]) == c.vm_cpus
    assert (found["nested"] == "true") is c.pvh
