"""The CI recipes of examples/ci/, read as their CI systems read them: the shell lines each job
runs, in order, and the xenlab command lines among them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

RECIPES = Path(__file__).resolve().parent.parent / "examples" / "ci"
GITHUB = RECIPES / "github-actions.yml"
GITLAB = RECIPES / "gitlab-ci.yml"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def shell_lines(path: Path) -> list[str]:
    """Every line of shell the job runs, in order (GitLab's after_script last)."""
    data = load(path)
    if path == GITHUB:
        steps = next(iter(data["jobs"].values()))["steps"]
        return [line for step in steps if "run" in step for line in step["run"].splitlines()]
    job = next(v for k, v in data.items() if isinstance(v, dict) and "script" in v)
    return [*job.get("before_script", []), *job["script"], *job.get("after_script", [])]


def xenlab_commands(path: Path, suite: str) -> list[list[str]]:
    """The xenlab command lines, as argv after `xenlab`, with $SUITE as suite."""
    found = []
    for line in shell_lines(path):
        for m in re.finditer(r"(?:^|\$\(|&& |; )xenlab ([^)|;&]*)", line):
            found.append(shlex.split(m.group(1).replace("$SUITE", suite)))
    return found
