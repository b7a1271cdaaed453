"""Benchmark: time to readiness of a static guest against a DHCP one, alternating, same lab.

    python3 bench/bench_readiness.py [--runs 5]     # in the lab's directory, after `xenlab up`

The static guest is the static_web stand-in deployed with `--static` (ready when its address
answers ping from the lab host); the DHCP guest is the auth_service example (ready when dnsmasq
has leased it an address). Both then answer a TCP probe. Reports medians of the readiness phase
(address vs lease), `xl create`, and the whole deploy. `make guest unikernels` first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = {
    "static": (ROOT / "examples/unikernels/static_web/static_web.xl", ["--static", "--probe", "tcp:80"]),
    "dhcp": (ROOT / "examples/auth_service/auth_service.xl", ["--probe", "tcp:8088"]),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    kernels = [ROOT / "examples/unikernels/static_web/static_web.xen",
               ROOT / "examples/auth_service/mir-auth_service.xen"]
    if not all(k.exists() for k in kernels):
        sys.exit("make guest unikernels first")
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in GUESTS}
    for _ in range(args.runs):
        for kind, (xl, extra) in GUESTS.items():
            t = time.monotonic()
            r = subprocess.run(["xenlab", "deploy", str(xl), "--replace", "--json", *extra],
                               capture_output=True, text=True)
            total = time.monotonic() - t
            if r.returncode != 0:
                sys.exit(f"{kind}: {r.stderr.strip().splitlines()[-2:]}")
            phases = json.loads(r.stdout)["phases_s"]
            ready = phases.get("address", phases.get("lease", 0.0))
            for key, value in (("ready", ready), ("create", phases["create"]),
                               ("probe", phases.get("probe", 0.0)), ("total", total)):
                samples[kind].setdefault(key, []).append(value)
    for xl, _ in GUESTS.values():
        name = "static_web" if "static" in xl.name else "auth_service"
        subprocess.run(["xenlab", "destroy", name], capture_output=True)
    med = {k: {p: round(statistics.median(v), 2) for p, v in d.items()} for k, d in samples.items()}
    med["ratio_ready_static_over_dhcp"] = round(med["static"]["ready"] / med["dhcp"]["ready"], 2)  # type: ignore[assignment]
    print(json.dumps(med, indent=2))


if __name__ == "__main__":
    main()
