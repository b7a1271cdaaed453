"""Which of several lab hosts a guest goes to, and which one holds a named guest.

A deploy without --host goes where it fits best: among the hosts that answer and have their lab
bridge up, the one with the most free memory Xen reports (`xl info`'s free_memory), as long as the
guest's memory fits. A host that is down is named and passed over, never waited for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab import ui
from lab.errors import LabError, die
from lab.lab import Lab
from lab.remote import Remote, ShellScript

# "$1": the host's lab bridge. Xen's free memory in MiB, then whether the bridge is there.
_READ = ShellScript(r"""
xl info 2>/dev/null | sed -n 's/^free_memory *: *//p'
if [ -e "/sys/class/net/$1/bridge" ]; then echo bridge; else echo no-bridge; fi
""", name="xenlab-placement")


@dataclass(frozen=True)
class Reading:
    free_mb: int | None = None  # None: not read
    bridge: bool = False
    error: str = ""  # why the host could not be read

    @classmethod
    def parse(cls, out: str) -> Reading:
        lines = out.split()
        free = int(lines[0]) if lines and lines[0].isdigit() else None
        return cls(free, "bridge" in lines)


def choose(readings: dict[str, Reading], memory_mb: int | None) -> tuple[str | None, dict[str, str]]:
    """The host with the most free memory among those that can take the guest (ties: the first
    named), and why each other host could not."""
    unfit: dict[str, str] = {}
    fit: list[tuple[int, int, str]] = []
    for order, (name, r) in enumerate(readings.items()):
        if r.error:
            unfit[name] = r.error
        elif r.free_mb is None:
            unfit[name] = "Xen's free memory not readable (is it running Xen?)"
        elif not r.bridge:
            unfit[name] = "its lab bridge is not up"
        elif memory_mb is not None and r.free_mb < memory_mb:
            unfit[name] = f"{r.free_mb} MiB free, the guest needs {memory_mb} MiB"
        else:
            fit.append((-r.free_mb, order, name))
    return (min(fit)[2] if fit else None), unfit


def guest_memory(file: Path) -> int | None:
    """The guest's memory (MiB) as its file says; None when it cannot be read here (deploy will
    say why)."""
    from lab.xl.model import Domain
    from lab.xl.syntax import read as read_xl

    try:
        return Domain(read_xl(file)).memory
    except LabError:
        return None


def read(host: Lab) -> Reading:
    if not host.state.provisioned:
        return Reading(error="not a lab host yet (`xenlab up`)")
    try:
        with Remote.open(host) as remote:
            r = remote.run(_READ(host.config.bridge), sudo=True, check=False, what="xl info")
    except LabError as exc:
        return Reading(error=exc.message)
    return Reading.parse(r.out)


def place(hosts: list[Lab], file: Path) -> Lab:
    """The host a deploy of file goes to: the only one, or the best of several."""
    if len(hosts) == 1:
        return hosts[0]
    memory = guest_memory(file)
    name, unfit = choose({h.name: read(h) for h in hosts}, memory)
    for other, why in unfit.items():
        ui.info(f"{other}: passed over: {why}")
    if name is None:
        die(f"no host can take {file.name}: " + "; ".join(f"{n}: {why}" for n, why in unfit.items()),
            hint="`xenlab status` and `xenlab list` show the hosts; --host NAME picks one")
    chosen = next(h for h in hosts if h.name == name)
    ui.info(f"placed on {name} (most free memory)")
    return chosen


_EXISTS = ShellScript('xl domid "$1" >/dev/null 2>&1 && echo yes; exit 0', name="xenlab-holder")


def holder(hosts: list[Lab], name: str) -> Lab:
    """The host that holds domain name: the one that deployed it, else the one where it runs."""
    if len(hosts) == 1:
        return hosts[0]
    for h in hosts:
        if name in h.state.domains:
            return h
    for h in hosts:
        try:
            with Remote.open(h) as remote:
                if remote.run(_EXISTS(name), sudo=True).out.strip() == "yes":
                    return h
        except LabError as exc:
            ui.warn(f"{h.name}: {exc.message}")
    die(f"no domain named {name!r} on any host", hint="`xenlab list` shows what runs where")
