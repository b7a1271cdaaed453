"""The offline verbs work from a wheel installed into a clean virtualenv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT


@pytest.mark.slow
def test_wheel_in_clean_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT],
                   check=True, capture_output=True)
    wheel = next(dist.glob("xenlab-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    # Dependencies come from the pip cache after the first run; the package itself from the wheel.
    r = subprocess.run([venv / "bin" / "pip", "install", "-q", wheel], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exe = venv / "bin" / "xenlab"
    show = subprocess.run([exe, "xl", "show", CORPUS / "valid" / "mirage2-auth.xl"],
                          capture_output=True, text=True, check=True)
    assert json.loads(show.stdout)["name"] == "auth_service"
    xl = tmp_path / "a.xl"
    xl.write_text("name = 'a'\nkernel = 'k'\nvif = [ ]\n")
    (tmp_path / "k").write_bytes(b"")
    fix = subprocess.run([exe, "fix", xl, "--check"], capture_output=True, text=True)
    assert fix.returncode == 1 and "XL005" in fix.stdout
    data = tmp_path / "d"
    data.mkdir()
    (data / "john").write_text("pw")
    img = subprocess.run([exe, "image", "fat", data, "-o", tmp_path / "x.img"],
                         capture_output=True, text=True)
    assert img.returncode == 0 and (tmp_path / "x.img").stat().st_size > 2_000_000
    # `up` needs the playbooks, roles and Vagrantfile: shipped in the wheel, found from outside
    # any checkout, and checked before anything slow starts.
    where = subprocess.run([venv / "bin" / "python", "-c",
                            "from lab import resources; resources.check(); print(resources.root())"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    assert (Path(where.stdout.strip()) / "roles" / "lab_dhcp" / "tasks" / "main.yml").is_file()
    if os.geteuid() == 0:  # up's preflight runs past the resources to the disk check, then stops
        small = tmp_path / "small"
        small.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", small], check=True)
        try:
            (small / "xenlab.toml").write_text('provider = "qemu"\naccel = "tcg"\n')
            up = subprocess.run([exe, "up"], cwd=small, capture_output=True, text=True, timeout=120)
            assert up.returncode == 1 and "MiB free" in up.stderr, up.stderr
            assert "lacks" not in up.stderr and "Traceback" not in up.stderr
        finally:
            subprocess.run(["umount", small], check=False)
