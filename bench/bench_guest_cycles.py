"""Benchmark: guest create/end/destroy cycles on a running lab, PV and PVH, and what they cost.

    python3 bench/bench_guest_cycles.py [--cycles N]     # in the lab's directory, after `xenlab up`

Each cycle is one `xenlab run` of the hello stand-in (prints, powers off) booted as PVH and as PV,
alternating. Reports per guest type: how each run ended (goal: every one a poweroff), the median
time from `xenlab run` to its verdict split into xl create, the guest's own runtime and xenlab's
overhead; and, for the lab's CPU model, whether dom0 saw a fault (a segfault or general
protection in dom0's kernel log, or a dom0 that stopped answering) during the whole run.
`make unikernels` first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "unikernels" / "hello"
FAULTS = ("segfault", "general protection", "Oops", "BUG:", "Corrupted MAC")


def dom0_faults() -> list[str]:
    r = subprocess.run(["xenlab", "ssh", "sudo", "dmesg"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return [f"dom0 did not answer: {r.stderr.strip()[-200:]}"]
    return [line for line in r.stdout.splitlines() if any(f in line for f in FAULTS)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=10, help="runs per guest type")
    args = ap.parse_args()
    if not (HELLO / "hello.xen").exists():
        sys.exit("make unikernels first")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for f in ("hello.xen", "hello-initrd.gz"):
            (Path(tmp) / f).symlink_to(HELLO / f)
        for kind in ("pvh", "pv"):
            xl = Path(tmp) / f"hello_{kind}.xl"
            text = (HELLO / "hello.xl").read_text().replace("'hello'", f"'hello_{kind}'")
            xl.write_text(text.replace("type = 'pvh'", f"type = '{kind}'"))
            files[kind] = xl
        before = set(dom0_faults())
        ended: dict[str, Counter[str]] = {k: Counter() for k in files}
        times: dict[str, dict[str, list[float]]] = {k: {} for k in files}
        for _ in range(args.cycles):
            for kind, xl in files.items():
                t = time.monotonic()
                r = subprocess.run(["xenlab", "run", str(xl), "--json", "--timeout", "120"],
                                   capture_output=True, text=True)
                total = time.monotonic() - t
                try:
                    out = json.loads(r.stdout)
                except json.JSONDecodeError:
                    ended[kind][f"error: {r.stderr.strip().splitlines()[-1:]}"] += 1
                    continue
                ended[kind][out["ended"]] += 1
                phases = out["phases_s"]
                split = {"total": total, "create": phases.get("create", 0.0),
                         "runtime": out["runtime_s"], "upload": phases.get("upload", 0.0)}
                split["overhead"] = total - split["create"] - split["runtime"] - split["upload"]
                for key, value in split.items():
                    times[kind].setdefault(key, []).append(value)
        faults = sorted(set(dom0_faults()) - before)
    report = {kind: {"ended": dict(ended[kind]),
                     "median_s": {k: round(statistics.median(v), 2) for k, v in times[kind].items()}}
              for kind in files}
    report["dom0_faults"] = faults  # type: ignore[assignment]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
