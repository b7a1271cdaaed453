"""Static checks are part of the test command: ruff and mypy must stay clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.parametrize("cmd", [
    ["ruff", "check", "lab", "tests", "bench"],
    [sys.executable, "-m", "mypy"],
    ["ansible-lint", "--offline", "-q"],
    ["ansible-playbook", "--syntax-check", "-i", "localhost,", "playbooks/site.yml"],
], ids=["ruff", "mypy", "ansible-lint-production", "playbook-syntax"])
def test_clean(cmd: list[str]) -> None:
    # The tools of the test command's own virtualenv, which is not on PATH when it runs as
    # `.venv/bin/python -m pytest`; never a ruff or Ansible that happens to be installed elsewhere
    # (ansible-lint itself runs `ansible` from PATH).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    tool = shutil.which(cmd[0], path=path)
    if tool is None:
        pytest.fail(f"{cmd[0]} is not installed: pip install -e '.[test]'")
    r = subprocess.run([tool, *cmd[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PATH": path})
    assert r.returncode == 0, r.stdout + r.stderr
