"""Where the files xenlab ships next to its code live: playbooks, roles, Vagrantfile, templates."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lab.errors import die

PACKAGE = Path(__file__).resolve().parent


@cache
def root() -> Path:
    """The directory holding playbooks/ and roles/: the checkout, or the installed share dir."""
    candidates = [PACKAGE.parent, PACKAGE / "_data"]
    for c in candidates:
        if (c / "playbooks" / "site.yml").is_file() and (c / "roles").is_dir():
            return c
    die("xenlab's playbooks and roles are missing from this installation",
        hint="reinstall xenlab: pip install --force-reinstall xenlab")


def check() -> None:
    """Everything `up` will need from the installation, before anything slow starts."""
    base = root()
    missing = [p for p in (playbook(), roles() / "xen_hypervisor" / "tasks" / "main.yml",
                           base / "Vagrantfile", callback_plugins()) if not p.exists()]
    if missing:
        die(f"this xenlab installation lacks {', '.join(map(str, missing))}",
            hint="reinstall xenlab: pip install --force-reinstall xenlab")


def playbook(name: str = "site.yml") -> Path:
    return root() / "playbooks" / name


def roles() -> Path:
    return root() / "roles"


def role_file(role: str, name: str) -> Path:
    return roles() / role / "files" / name


def callback_plugins() -> Path:
    return PACKAGE / "ansible_plugins" / "callback"
