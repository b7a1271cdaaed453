"""Static checks are part of the test command: ruff and mypy must stay clean."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("cmd", [
    ["ruff", "check", "lab", "tests", "bench"],
    [sys.executable, "-m", "mypy"],
    ["ansible-lint", "--offline", "-q"],
    ["ansible-playbook", "--syntax-check", "-i", "localhost,", "playbooks/site.yml"],
], ids=["ruff", "mypy", "ansible-lint-production", "playbook-syntax"])
def test_clean(cmd: list[str]) -> None:
    if not shutil.which(cmd[0]) and cmd[0] != sys.executable:
        pytest.fail(f"{cmd[0]} is not installed: pip install -e '.[test]'")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
