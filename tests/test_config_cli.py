"""Settings layering (defaults < xenlab.toml < XENLAB_* < flags) and the CLI's contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import xenlab

from lab.config import LabConfig, load
from lab.errors import LabError


def test_defaults_are_the_classic_lab(tmp_path: Path) -> None:
    c = load(cwd=tmp_path, env={}).config
    assert (c.subnet, c.host_ip, c.lab_ip, c.dhcp_start, c.dhcp_end, c.bridge) == (
        "192.168.77.0/24", "192.168.77.1", "192.168.77.2", "192.168.77.3", "192.168.77.200", "br0")


def test_layers_and_sources(tmp_path: Path) -> None:
    (tmp_path / "xenlab.toml").write_text('vm_memory = 4096\nbridge = "labbr"\nprovider = "qemu"\n')
    r = load(cwd=tmp_path, env={"XENLAB_BRIDGE": "envbr", "XENLAB_NAT": "no"},
             flags={"provider": "virtualbox"})
    assert r.config.vm_memory == 4096 and r.sources["vm_memory"].endswith("xenlab.toml")
    assert r.config.bridge == "envbr" and r.sources["bridge"] == "env XENLAB_BRIDGE"
    assert r.config.nat is False
    assert r.config.provider == "virtualbox" and r.sources["provider"] == "flag --provider"
    assert r.sources["subnet"] == "default"


@pytest.mark.parametrize("toml,env,match", [
    ('vm_memory = "lots"\n', {}, "vm_memory must be int"),
    ("nonsense = 1\n", {}, "unknown setting 'nonsense'"),
    ("subnet = \n", {}, "xenlab.toml"),
    ("", {"XENLAB_DHCP_START": "192.168.78.5"}, "not a host address"),
    ("", {"XENLAB_LAB_IP": "192.168.77.50"}, "inside the DHCP range"),
    ("", {"XENLAB_PROVIDER": "hyperv"}, "one of auto, virtualbox, qemu"),
    ("", {"XENLAB_DOM0_MEMORY": "4096"}, "below vm_memory"),
])
def test_bad_settings_name_where_they_came_from(tmp_path: Path, toml: str, env: dict[str, str],
                                                match: str) -> None:
    (tmp_path / "xenlab.toml").write_text(toml)
    with pytest.raises(LabError, match=match) as err:
        load(cwd=tmp_path, env=env)
    assert err.value.code == 2


def test_config_command_prints_values_and_sources(tmp_path: Path) -> None:
    (tmp_path / "xenlab.toml").write_text("vm_cpus = 4\n")
    r = xenlab("config", "--json", cwd=tmp_path, env={"XENLAB_LEASE_TIME": "1h"})
    data = json.loads(r.stdout)
    assert data["vm_cpus"] == {"value": 4, "source": str(tmp_path / "xenlab.toml")}
    assert data["lease_time"] == {"value": "1h", "source": "env XENLAB_LEASE_TIME"}
    assert data["bridge"]["source"] == "default"
    human = xenlab("config", cwd=tmp_path)
    assert "vm_cpus" in human.stdout and "xenlab.toml" in human.stdout


def test_bad_config_is_a_one_line_error_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "xenlab.toml").write_text("vm_cpus = [1, 2]\n")
    r = xenlab("config", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert "\x1b[" not in r.stderr  # NO_COLOR respected


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; sys.argv=['xenlab','--help']\nimport lab.entry\n"
            "try:\n lab.entry.main()\nexcept SystemExit: pass\n"
            "heavy=[m for m in ('ansible','paramiko','testinfra','rich','jinja2','vagrant')"
            " if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out
    assert "deploy" in out or "fix" in out


def test_unknown_command_is_usage_error() -> None:
    r = xenlab("frobnicate")
    assert r.returncode == 2 and "No such command" in r.stderr


def test_labconfig_is_frozen() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        LabConfig().bridge = "x"  # type: ignore[misc]


@pytest.mark.parametrize("args,match", [
    (["--ip", "10.1.2.3"], "not a free guest address"),
    (["--ip", "192.168.77.2"], "not a free guest address"),
    (["--ip", "nonsense"], "not an IPv4 address"),
    (["--probe", "udp:53"], "expected tcp:PORT"),
])
def test_deploy_refuses_bad_options_before_touching_the_lab(tmp_path: Path, args: list[str],
                                                             match: str) -> None:
    xl = tmp_path / "g.xl"
    xl.write_text("name = 'g'\nkernel = 'k'\n")
    r = xenlab("deploy", xl, *args, cwd=tmp_path)
    assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / ".xenlab").exists()
