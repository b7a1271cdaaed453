"""Benchmark: reading a large .xl file, xenlab's reader against Xen's own (libxlutil), same run.

    python3 bench/bench_xl_parse.py [--lines 400000] [--runs 5]

Each reader runs in a fresh process per run (alternating), so time includes start-up and memory
is that process's peak RSS. Reports medians and xenlab/libxlutil ratios (goal: time within 3x,
memory a small multiple of the file's size) for two files: "common", statements of the shapes
real files have (xenlab's regular expression reads them), and "detailed", every statement of a
shape left to xenlab's token parser (a nested list, an octal escape): its worst case.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DETAILED = ["[ [ 'a' ], 'b' ]", "'b\\101'", "[ 1, [ 2, [ 3 ] ] ]"]
VALUES = ["128", "0x40", "'abc def'", "[ 'bridge=br0', 'mac=00:16:3e:00:00:01' ]", '"with \\"quotes\\""',
          "[\n  'format=raw, vdev=xvdb, access=rw, target=disk.img',\n]"]
KEYS = ["memory", "name", "extra", "vif", "disk", "maxmem", "on_crash"]
XENLAB = "from lab.xl.syntax import read; read(sys.argv[1]).resolved()"
LIBXLUTIL = ("sys.path.insert(0, sys.argv[2]); from xen_oracle import Xen; "
             "r = Xen().parse(sys.argv[1]); assert r.rc == 0, r.error")
# Peak memory from VmHWM: getrusage's ru_maxrss survives exec, so a child would report this
# process's own peak (the generated file's text) instead of its own.
MEASURE = """
import re, sys, time
t = time.perf_counter()
{code}
elapsed = time.perf_counter() - t
print(elapsed, re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1])
"""


def measure(code: str, path: Path) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", MEASURE.format(code=code), str(path), str(ROOT / "tests")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    return float(out[0]), int(out[1]) * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=400_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    report: dict[str, object] = {}
    for shape, values in (("common", VALUES), ("detailed", DETAILED)):
        rng = random.Random(1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "big.xl"
            lines = (f"{rng.choice(KEYS)} = {rng.choice(values)}\n" for _ in range(args.lines))
            path.write_text("".join(lines))
            size = path.stat().st_size
            results: dict[str, list[tuple[float, int]]] = {"xenlab": [], "libxlutil": []}
            for _ in range(args.runs):
                results["xenlab"].append(measure(XENLAB, path))
                results["libxlutil"].append(measure(LIBXLUTIL, path))
            # The interpreter's own start and imports, to tell the parser's memory from Python's.
            baseline = [measure("pass", path) for _ in range(3)]
        med = {k: (statistics.median(t for t, _ in v), statistics.median(m for _, m in v))
               for k, v in results.items()}
        base_mem = statistics.median(m for _, m in baseline)
        report[shape] = {
            "file": {"lines": args.lines, "bytes": size},
            "median_s": {k: round(t, 3) for k, (t, _) in med.items()},
            "peak_rss_mb": {k: round(m / 1e6, 1) for k, (_, m) in med.items()},
            "time_ratio_xenlab_over_libxlutil": round(med["xenlab"][0] / med["libxlutil"][0], 2),
            "xenlab_memory_over_file_size": round((med["xenlab"][1] - base_mem) / size, 1),
        }
    print(json.dumps(report, indent=2))

if __name__ == "__main__":
    main()
