"""The offline verbs work from a wheel installed into a clean virtualenv."""

from __future__ import annotations

import json
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
