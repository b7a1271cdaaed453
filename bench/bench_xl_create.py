"""Where `xl create` spends its time on the lab, from inside dom0.

    cd LAB_DIR && python3 bench/bench_xl_create.py NAME [--runs 3]

NAME is a guest deployed on the lab in LAB_DIR (its lab copy of the .xl file is reused). Each run
destroys it, runs `xl -vvv create` on the lab host with every line of its log timestamped there
(dom0's monotonic clock, by a small Python wrapper started before the clock starts), then reports
the phases between libxl's own milestones and the longest silences, with what ended each one.
Medians over the runs; the guest is left running as the last run created it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.remote import Remote, ShellScript
from lab.state import LabState

_TIMED = ShellScript(r"""
xl destroy "$1" >/dev/null 2>&1
exec python3 -c '
import subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(["xl", "-vvv", "create", sys.argv[1]], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True)
for line in p.stdout:
    print(f"{time.monotonic() - t0:.3f} {line}", end="")
print(f"{time.monotonic() - t0:.3f} @@exit {p.wait()}")
' "$2"
""", name="xenlab-bench-create")

# libxl's milestones, as its verbose log (4.17) names them; each phase runs from its milestone's
# first line to the next milestone's. A file without a disk has no block phase, and so on.
MILESTONES = [
    ("parse, domain made", r"^Parsing config"),
    ("kernel probed, decompressed, loaded", r"xc_dom_find_loader"),
    ("memory, page tables, device entries", r"xc_dom_boot_image: called"),
    ("block hotplug script", r"calling hotplug script: \S*/block"),
    ("vif hotplug script", r"calling hotplug script: \S*/vif"),
    ("unpause, xl exits", r"libxl_domain_unpause"),
]


def timeline(out: str) -> list[tuple[float, str]]:
    lines = []
    for raw in out.splitlines():
        stamp, _, text = raw.partition(" ")
        try:
            lines.append((float(stamp), text))
        except ValueError:
            continue
    return lines


def phases(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Time from each milestone's first line to the next milestone's first line."""
    firsts: list[tuple[float, str]] = []
    for name, pattern in MILESTONES:
        hit = next((t for t, text in lines if re.search(pattern, text)), None)
        if hit is not None:
            firsts.append((hit, name))
    firsts.sort()
    end = lines[-1][0] if lines else 0.0
    out = {"total": end, "before first milestone": firsts[0][0] if firsts else end}
    for (t, name), (t_next, _) in zip(firsts, [*firsts[1:], (end, "")], strict=True):
        out[name] = t_next - t
    return out


def silences(lines: list[tuple[float, str]], top: int = 5) -> list[tuple[float, str]]:
    gaps = [(b[0] - a[0], f"{a[1][:70]!r} -> {b[1][:70]!r}") for a, b in itertools.pairwise(lines)]
    return sorted(gaps, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    state_dir = Path(".xenlab")
    record = LabState.load(state_dir).domains.get(args.name)
    if record is None or not record.lab_xl:
        sys.exit(f"error: no deployed guest {args.name!r} in {state_dir.resolve()}")
    runs: list[dict[str, float]] = []
    gaps: list[tuple[float, str]] = []
    with Remote.open(state_dir) as remote:
        for _ in range(args.runs):
            r = remote.run(_TIMED(args.name, record.lab_xl), sudo=True, timeout=600, idempotent=False)
            lines = timeline(r.out)
            if not lines or not lines[-1][1].startswith("@@exit 0"):
                sys.exit(f"error: xl create failed: {r.out[-2000:]}")
            runs.append(phases(lines))
            gaps += silences(lines)
    keys = sorted({k for run in runs for k in run},
                  key=lambda k: -statistics.median(r.get(k, 0) for r in runs))
    print(json.dumps({
        "runs": args.runs,
        "median_s": {k: round(statistics.median(r.get(k, 0.0) for r in runs), 2) for k in keys},
        "longest_silences_s": [(round(g, 2), where) for g, where in sorted(gaps, reverse=True)[:8]],
    }, indent=2))


if __name__ == "__main__":
    main()
