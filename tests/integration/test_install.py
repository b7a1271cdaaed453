"""install.sh's Python part on a stock Debian 12: Debian's own /usr/bin/python3, which refuses
pip (PEP 668), in a debootstrapped bookworm (the provisioning tier's cached root filesystem)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from integration.rootfs import rootfs_tarball

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root"),
    pytest.mark.skipif(not shutil.which("debootstrap"), reason="./install.sh"),
]


def in_root(root: Path, *cmd: str, env: dict[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
             "LANG": "C.UTF-8", **(env or {})}
    return subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True, env=clean,
                          timeout=timeout)


def test_install_on_debians_own_python(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", root, "--numeric-owner", "-xf", rootfs_tarball()], check=True,
                   timeout=300)
    # The stock interpreter really is externally managed: plain pip is what fails there.
    assert (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").exists()
    # xenlab's dependencies as wheels, made with this machine's pip and its cache (the chroot has
    # no index configured); Debian's python3 is 3.11, as is the interpreter running the tests.
    wheels = root / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", wheels, f"{ROOT}[test]",
                        "setuptools>=68"],  # the editable install's build dependency
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    checkout = root / "src" / "xenlab"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "build", "__pycache__", ".xenlab", "*.xen", "*-initrd.gz",
        ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"))
    env = {"PYTHON": "/usr/bin/python3", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"}
    # Without Debian's python3-venv (ensurepip): named, and nothing half-made left behind.
    ensurepip = root / "usr/lib/python3.11/ensurepip"
    ensurepip.rename(ensurepip.with_name("ensurepip.away"))
    try:
        r = in_root(root, "/src/xenlab/install.sh", "--python-only", env=env)
    finally:
        ensurepip.with_name("ensurepip.away").rename(ensurepip)
    assert r.returncode == 2 and "python3-venv" in r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert not (checkout / ".venv").exists()
    r = in_root(root, "/src/xenlab/install.sh", "--python-only", env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    version = in_root(root, "xenlab", "--version")
    assert version.returncode == 0 and "xenlab" in version.stdout, version.stderr
    assert os.readlink(root / "usr/local/bin/xenlab") == "/src/xenlab/.venv/bin/xenlab"
    show = in_root(root, "xenlab", "xl", "show", "/src/xenlab/examples/auth_service/auth_service.xl")
    assert show.returncode == 0 and '"auth_service"' in show.stdout, show.stderr
    # Debian's own Python is untouched: no xenlab in it, and it still refuses pip.
    assert in_root(root, "/usr/bin/python3", "-c", "import lab").returncode != 0
    # The venv is Debian's interpreter, not a copy of the test runner's.
    venv_python = os.readlink(root / "src/xenlab/.venv/bin/python3")
    assert venv_python in ("/usr/bin/python3", "python3"), venv_python
    # A second run installs nothing new and still succeeds.
    again = in_root(root, "/src/xenlab/install.sh", "--python-only", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    # A .venv left half-made (no pip in it) by an interrupted run is made again, not tripped over.
    shutil.rmtree(checkout / ".venv" / "lib")
    healed = in_root(root, "/src/xenlab/install.sh", "--python-only", env=env)
    assert healed.returncode == 0, healed.stderr[-2000:]
    assert in_root(root, "xenlab", "--version").returncode == 0

    # A release xenlab does not support is said so, before anything is installed.
    os_release = root / "usr/lib/os-release"
    os_release.write_text(os_release.read_text().replace('VERSION_ID="12"', 'VERSION_ID="11"'))
    old = in_root(root, "/src/xenlab/install.sh", "--python-only", env=env)
    assert old.returncode == 2, old.stderr
    assert "not a Debian release xenlab supports" in old.stderr and "Debian 13 (trixie)" in old.stderr
