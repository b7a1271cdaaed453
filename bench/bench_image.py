"""Benchmark: `xenlab image fat` against mkfs.fat + mcopy -s, and `xenlab --help` start-up.

Both sides run as whole commands (a user runs either one from a shell), on the same trees, in the
same run, interleaved; the report gives medians and the ratio. Goal: ratio <= 2.0, help < 150 ms.

    python3 bench/bench_image.py [--runs N] [--xenlab PATH]

Run it against xenlab installed the way users get it (a wheel in a clean virtualenv), since
interpreter start-up with many site-packages .pth files is part of what a user waits for. For a
small tree start-up is most of the time: `xenlab image` is read without click (lab/entry.py) and
imports nothing the interpreter has not loaded already, beyond lab.image itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], **kw: object) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def mkfs_mcopy(data: Path, img: Path, size_kib: int, spc: int, root: int) -> None:
    img.unlink(missing_ok=True)
    subprocess.run(["mkfs.fat", "-F", "16", "-s", str(spc), "-r", str(root), "-R", "1",
                    "-C", str(img), str(size_kib)],
                   check=True, stdout=subprocess.DEVNULL)
    items = [str(p) for p in sorted(data.iterdir())]
    subprocess.run(["mcopy", "-s", "-i", str(img), *items, "::"], check=True)


def bench_tree(name: str, data: Path, work: Path, runs: int, exe: list[str]) -> dict[str, float]:
    xen_img, ref_img = work / "xenlab.img", work / "ref.img"
    xenlab = [*exe, "image", "fat", str(data), "-o", str(xen_img)]
    subprocess.run(xenlab, check=True, capture_output=True)
    # The reference gets the same geometry: image size and sectors per cluster.
    size_kib = xen_img.stat().st_size // 1024
    head = xen_img.read_bytes()[:512]
    spc, root = head[13], int.from_bytes(head[17:19], "little")
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(timed(xenlab))
        start = time.perf_counter()
        mkfs_mcopy(data, ref_img, size_kib, spc, root)
        theirs.append(time.perf_counter() - start)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"{name:<22} xenlab {a * 1000:8.1f} ms   mkfs.fat+mcopy {b * 1000:8.1f} ms   "
          f"ratio {a / b:5.2f}x  (median of {runs})")
    return {"xenlab": a, "reference": b, "ratio": a / b}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--xenlab", help="xenlab executable (default: this interpreter's -m lab)")
    args = ap.parse_args()
    exe = [args.xenlab] if args.xenlab else [sys.executable, "-m", "lab"]
    for tool in ("mkfs.fat", "mcopy"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: apt-get install dosfstools mtools")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = work / "small"
        small.mkdir()
        for i in range(1000):
            (small / f"f{i:04d}.txt").write_bytes(os.urandom(200 + i % 700))
        large = work / "large"
        large.mkdir()
        with open(large / "disk.bin", "wb") as f:
            for _ in range(100):
                f.write(os.urandom(1 << 20))
        bench_tree("1000 small files", small, work, args.runs, exe)
        bench_tree("one 100 MiB file", large, work, args.runs, exe)

        helps = [timed([*exe, "--help"]) for _ in range(args.runs * 3)]
        python = str(Path(args.xenlab).with_name("python")) if args.xenlab else sys.executable
        bare = [timed([python, "-c", "pass"]) for _ in range(args.runs * 3)]
        imports = [timed([python, "-c", "import click"]) for _ in range(args.runs * 3)]
        print(f"{'xenlab --help':<22} {statistics.median(helps) * 1000:8.1f} ms median "
              f"(bare python3 start-up {statistics.median(bare) * 1000:.1f} ms, "
              f"+import click {statistics.median(imports) * 1000:.1f} ms; goal < 150 ms)")


if __name__ == "__main__":
    main()
