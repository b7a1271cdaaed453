"""The Vagrantfile and the Vagrant adapter, with Debian's real vagrant (VirtualBox is absent here,
which is itself the failure the adapter must explain)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from lab.config import LabConfig
from lab.errors import LabError
from lab.providers.virtualbox import VirtualBox

pytestmark = pytest.mark.skipif(not shutil.which("vagrant"), reason="apt-get install vagrant")


def vagrant(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(["vagrant", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", **(env or {})})


def copy_vagrantfile(tmp_path: Path, text: str | None = None) -> Path:
    (tmp_path / "Vagrantfile").write_text(text or (ROOT / "Vagrantfile").read_text())
    return tmp_path


def test_vagrantfile_validates_ignoring_the_provider(tmp_path: Path) -> None:
    r = vagrant("validate", "--ignore-provider", cwd=copy_vagrantfile(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr


def test_validation_catches_a_typo(tmp_path: Path) -> None:
    broken = (ROOT / "Vagrantfile").read_text().replace("config.vm.hostname", "config.vm.hostnme")
    r = vagrant("validate", "--ignore-provider", cwd=copy_vagrantfile(tmp_path, broken))
    assert r.returncode != 0  # proves the check above can fail


def test_libvirt_provider_block_validates(tmp_path: Path) -> None:
    plugins = vagrant("plugin", "list", cwd=tmp_path).stdout
    if "vagrant-libvirt" not in plugins:
        pytest.skip("vagrant-libvirt not installed (apt-get install vagrant-libvirt)")
    r = vagrant("validate", cwd=copy_vagrantfile(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    broken = (ROOT / "Vagrantfile").read_text().replace("lv.cpus", "lv.cpuz")
    r = vagrant("validate", cwd=copy_vagrantfile(tmp_path, broken))
    assert r.returncode != 0 and "cpuz" in r.stdout + r.stderr


def test_vagrantfile_reads_xenlabs_settings(tmp_path: Path) -> None:
    provider = VirtualBox(LabConfig(vm_memory=3072, vm_cpus=3, pvh=False), tmp_path / ".xenlab")
    settings = provider.write_settings()
    data = json.loads(settings.read_text())
    assert data["memory"] == 3072 and data["nested"] is False
    # Vagrant itself evaluates the Vagrantfile with those settings.
    probe = (ROOT / "Vagrantfile").read_text() + (
        '\nputs "XENLAB memory=#{settings["memory"]} cpus=#{settings["cpus"]} '
        'nested=#{settings["nested"]}"\n')
    r = vagrant("validate", "--ignore-provider", cwd=copy_vagrantfile(tmp_path, probe),
                env={"XENLAB_VAGRANT_SETTINGS": str(settings)})
    assert "XENLAB memory=3072 cpus=3 nested=false" in r.stdout, r.stdout + r.stderr


def test_vagrant_failure_carries_vagrants_own_reason(tmp_path: Path) -> None:
    """Real vagrant, real failure: no VirtualBox on this machine. python-vagrant alone would
    raise CalledProcessError with no reason; the adapter must show Vagrant's stderr."""
    provider = VirtualBox(LabConfig(), tmp_path / ".xenlab")
    with pytest.raises(LabError) as err:
        provider.up()
    assert "vagrant up failed" in err.value.message
    assert "VirtualBox" in err.value.message  # e.g. "Vagrant could not detect VirtualBox!"
    assert provider.status().state == "absent"
