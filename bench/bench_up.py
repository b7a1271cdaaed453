"""Benchmark: `xenlab up` with the QEMU provider, split into phases; QEMU's peak RSS.

    sudo python3 bench/bench_up.py [--skip-cold] [--runs 2]

- cold: no cache at all (the base image is built, the lab provisioned, its disk cached);
- a new lab from the base image (`up --provision`: Ansible's whole first run and the reboot into
  Xen, as every new lab cost before the provisioned-disk cache, and as a cache miss costs now)
  against a new lab from the provisioned-disk cache, alternating, medians and their ratio;
- a halted, converged lab brought back up.

Runs in throw-away directories with a network namespace for the user's side of the lab network.
Goals on a 2-core TCG machine: a new lab from the cache < 120 s, a halted lab < 90 s.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def up(lab: Path, env: dict[str, str], *args: str) -> tuple[float, dict[str, float]]:
    t = time.monotonic()
    r = subprocess.run(["xenlab", "up", "--json", *args], cwd=lab, env=env, capture_output=True,
                       text=True)
    took = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(f"xenlab up failed:\n{r.stderr[-2000:]}")
    return took, json.loads(r.stdout)["phases_s"]


def peak_rss_mib(lab: Path) -> float:
    pid = int((lab / ".xenlab" / "qemu.pid").read_text())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def new_lab(name: str, cache: Path, netns: str, *args: str, halt: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"xenlab-bench-{name}-") as d:
        lab = Path(d)
        (lab / "xenlab.toml").write_text(f'provider = "qemu"\nhost_netns = "{netns}"\n')
        env = {**os.environ, "XDG_CACHE_HOME": str(cache), "NO_COLOR": "1"}
        try:
            total, phases = up(lab, env, *args)
            result: dict[str, object] = {"total_s": round(total, 1), "phases_s": phases,
                                         "qemu_peak_rss_mib": round(peak_rss_mib(lab), 0)}
            if halt:
                subprocess.run(["xenlab", "halt"], cwd=lab, env=env, capture_output=True, check=True)
                result["after_halt_s"] = round(up(lab, env)[0], 1)
        finally:
            subprocess.run(["xenlab", "destroy"], cwd=lab, env=env, capture_output=True)
    print(f"{name}: {json.dumps(result)}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cold", action="store_true", help="reuse the user's cached base image")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    netns = f"xlb{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        if args.skip_cold:
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        else:
            cache = Path(tempfile.mkdtemp(prefix="xenlab-bench-cache-"))
            new_lab("cold", cache, netns)
        base: list[float] = []
        cached: list[float] = []
        halted: list[float] = []
        for i in range(args.runs):
            base.append(float(new_lab("from_base", cache, netns, "--provision")["total_s"]))  # type: ignore[arg-type]
            r = new_lab("from_cache", cache, netns, halt=i == args.runs - 1)
            cached.append(float(r["total_s"]))  # type: ignore[arg-type]
            if "after_halt_s" in r:
                halted.append(float(r["after_halt_s"]))  # type: ignore[arg-type]
        print(json.dumps({
            "new_lab_from_base_s": statistics.median(base),
            "new_lab_from_cache_s": statistics.median(cached),
            "speedup": round(statistics.median(base) / statistics.median(cached), 1),
            "halted_lab_up_s": statistics.median(halted),
        }, indent=2))
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    main()
