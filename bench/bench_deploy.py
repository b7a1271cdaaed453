"""Benchmark: `xenlab deploy` on a running lab (run it in the lab's directory, after `xenlab up`).

    python3 bench/bench_deploy.py [--guests N]

Reports, for the auth_service example with the test guest: the first deploy by phase; deploys
of the same build again (goal: 0 bytes over SSH), each timed whole once the earlier guest is
gone; xenlab's own overhead: the wall time beyond `xl create`, the guest's boot to its lease and
the probe (goal < 1 s; median of --runs, the interpreter's start included); N guests deployed
concurrently vs one by one, in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deploy(xl: Path, *args: str) -> dict[str, object]:
    r = subprocess.run(["xenlab", "deploy", str(xl), "--json", "--replace", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr[-2000:])
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def timed_parallel(xls: list[Path]) -> float:
    t = time.monotonic()
    procs = [subprocess.Popen(["xenlab", "deploy", str(x), "--replace", "--json"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for x in xls]
    if any(p.wait() != 0 for p in procs):
        sys.exit("a concurrent deploy failed")
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--guests", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "auth_service"
        shutil.copytree(ROOT / "examples" / "auth_service", d)
        subprocess.run([sys.executable, str(d / "build_guest.py"), str(d)], check=True,
                       capture_output=True)
        xl = d / "auth_service.xl"
        first = deploy(xl, "--probe", "http://:8088/")
        print(f"first deploy:      {json.dumps(first['phases_s'])} sent={first['sent_bytes']}")
        overheads, to_created = [], []
        for _ in range(args.runs):
            # The guest before is gone first, untimed: replacing it would time its teardown too.
            subprocess.run(["xenlab", "destroy", "auth_service"], capture_output=True, check=True)
            t = time.monotonic()
            again = deploy(xl, "--probe", "http://:8088/")
            wall = time.monotonic() - t
            phases = again["phases_s"]
            guest = sum(phases.get(k, 0.0) for k in ("lease", "probe"))  # type: ignore[union-attr]
            overheads.append(wall - guest - phases["create"])  # type: ignore[index,operator]
            # The whole way to a created domain too: work moved into the create's round trip
            # (making room, preparing) must not pass for work saved.
            to_created.append(wall - guest)
            print(f"deploy again: {wall:.1f} s {json.dumps(phases)} via={again['via']} "
                  f"sent={again['sent_bytes']} overhead={overheads[-1]:.2f} s")
        print(f"xenlab's own overhead: median {statistics.median(overheads):.2f} s of {args.runs}; "
              f"to a created domain (overhead and xl create): median {statistics.median(to_created):.2f} s")
        xls = []
        for n in range(args.guests):
            x = d / f"bench{n}.xl"
            x.write_text(xl.read_text().replace("'auth_service'", f"'bench{n}'"))
            xls.append(x)
        t = time.monotonic()
        for x in xls:
            deploy(x)
        one_by_one = time.monotonic() - t
        concurrent = timed_parallel(xls)
        print(f"{args.guests} guests: one by one {one_by_one:.1f} s, concurrently {concurrent:.1f} s "
              f"(ratio {one_by_one / concurrent:.2f}x)")
        for name in ["auth_service", *(f"bench{n}" for n in range(args.guests))]:
            subprocess.run(["xenlab", "destroy", name], capture_output=True)


if __name__ == "__main__":
    main()
