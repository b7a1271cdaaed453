"""Benchmark: a suite of small unikernels as one `xenlab run`, against the same files run one by
one (`xenlab run FILE` after `xenlab run FILE`, what a suite cost before the suite runner).

    python3 bench/bench_suite.py [--count 12] [--rounds 3]
        # in a lab's directory, after `xenlab up`; `make testkernel` first

The suite is Solo5's shape: COUNT PVH test kernels at memory = 32, each a second or so of work,
a third of them meant to fail (an abort, with a NAME.expect saying so). Each round times both,
suite first and one by one second, then the other way round (the lab's caches warm for both).
Prints the medians and their ratio; the goal is the suite in at most half the time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = ROOT / "examples" / "unikernels" / "testkernel" / "testkernel-pvh.xen"


def suite(directory: Path, count: int) -> list[Path]:
    files = []
    for i in range(count):
        name = f"bench_{i:02d}"
        aborts = i % 3 == 2
        (directory / f"{name}.xl").write_text(
            f"name = '{name}'\ntype = 'pvh'\nkernel = '{KERNEL}'\nmemory = 32\n"
            f"cmdline = '{'abort' if aborts else f'print={name}'}'\non_crash = 'preserve'\n")
        if aborts:
            (directory / f"{name}.expect").write_text('ended = "crash"\nconsole = ["Solo5: ABORT"]\n')
        files.append(directory / f"{name}.xl")
    return files


def timed(argv: list[str]) -> float:
    start = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True)
    took = time.monotonic() - start
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])}...: exit {r.returncode}\n{r.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--xenlab", default="xenlab")
    args = parser.parse_args()
    if not KERNEL.exists():
        sys.exit("make testkernel first")
    with tempfile.TemporaryDirectory() as tmp:
        files = suite(Path(tmp), args.count)
        as_suite, one_by_one = [], []
        for r in range(args.rounds):
            runs = [("suite", lambda: timed([args.xenlab, "run", tmp])),
                    ("one by one", lambda: sum(timed([args.xenlab, "run", str(f)]) for f in files))]
            for label, work in runs if r % 2 == 0 else runs[::-1]:
                took = work()
                (as_suite if label == "suite" else one_by_one).append(took)
                print(f"round {r + 1}: {label:<10} {took:6.1f} s", flush=True)
    a, b = statistics.median(as_suite), statistics.median(one_by_one)
    print(f"\n{args.count} unikernels, median of {args.rounds}: suite {a:.1f} s, one by one {b:.1f} s, "
          f"suite / one by one = {a / b:.2f}")


if __name__ == "__main__":
    main()
