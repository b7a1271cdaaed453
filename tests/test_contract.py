"""The lab contract: what the Python side assumes about the lab host is what the roles make, and
the Vagrantfile's stand-alone defaults are the settings' defaults. Each fact has one home in the
code; these tests hold the other languages (YAML, Ruby) to it."""

from __future__ import annotations

import re

import yaml
from conftest import ROOT

from lab import lab_host
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


def test_the_roles_are_handed_the_whole_layout_and_hard_code_none_of_it() -> None:
    """lab/lab_host.py is the one home of the lab host's layout: every role variable of a path,
    table or package list is handed from it (the test above holds the defaults to it), and no
    role file spells one of its paths out instead of reading the variable."""
    handed = lab_vars(LabConfig(), ProviderFacts(uplink_mac=""))
    layout_variables = {k for k in role_defaults() if k.endswith(("_file", "_dir", "dir", "_log",
                                                                   "leasefile", "_packages", "_table"))}
    assert layout_variables <= set(handed), sorted(layout_variables - set(handed))
    paths = [v for k, v in vars(lab_host).items() if k.isupper() and isinstance(v, str) and "/" in v]
    for path in (ROOT / "roles").rglob("*"):
        if path.is_file() and "defaults" not in path.parts:
            text = path.read_text()
            spelled = [p for p in paths if p in text]
            assert not spelled, f"{path.relative_to(ROOT)} spells out {spelled}: use the role variable"


def test_vagrantfile_defaults_are_the_settings_defaults() -> None:
    text = (ROOT / "Vagrantfile").read_text()
    found = dict(re.findall(r'^\s*"(\w+)" => "?([^",\n]+)"?,', text, re.M))
    c = LabConfig()
    assert found["box"] == c.vagrant_box and found["lab_ip"] == c.lab_ip
    assert int(found["memory"]) == c.vm_memory and int(found["cpus"]) == c.vm_cpus
    assert (found["nested"] == "true") is c.pvh
