"""Benchmark: the boot table. How reliably each kind of test guest boots on this lab, PVH and PV.

    python3 bench/bench_boots.py [--boots N] [--kinds testkernel,linux] [--out FILE.md]
        # in a lab's directory, after `xenlab up`; `make testkernel unikernels` first

Each boot is one `xenlab run` (deploy, run to the end, remove), as a user or CI runs a unikernel
test. Guests: xenlab's test kernel (the unikernel-shaped witness: Solo5's PVH boot path at
memory = 32, and Mini-OS's PV path) and the Linux stand-in `hello` (a Debian kernel with a
busybox init, PVH and PV). A boot passes when the guest ends as it means to (the test kernel:
`solo5_exit(0)` and a poweroff; hello: a poweroff). Prints one markdown row per guest and mode
with the lab's QEMU, Xen, paging mode and CPU model, and the failures by how they ended: the
rows bench/boot_table.md collects. The goal is no failed boot of a unikernel-shaped guest.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTKERNEL = ROOT / "examples" / "unikernels" / "testkernel"
HELLO = ROOT / "examples" / "unikernels" / "hello"


def guests(tmp: Path, kinds: list[str]) -> dict[str, Path]:
    files = {}
    if "testkernel" in kinds:
        for mode, kernel in (("pvh", "testkernel-pvh.xen"), ("pv", "testkernel-pv.xen")):
            if not (TESTKERNEL / kernel).exists():
                sys.exit("make testkernel first")
            (tmp / kernel).symlink_to(TESTKERNEL / kernel)
            xl = tmp / f"tk_{mode}.xl"
            xl.write_text(f"name = 'tk_{mode}'\ntype = '{mode}'\nkernel = '{kernel}'\nmemory = 32\n")
            files[f"testkernel {mode}"] = xl
    if "linux" in kinds:
        if not (HELLO / "hello.xen").exists():
            sys.exit("make unikernels first")
        for f in ("hello.xen", "hello-initrd.gz"):
            (tmp / f).symlink_to(HELLO / f)
        for mode in ("pvh", "pv"):
            xl = tmp / f"hello_{mode}.xl"
            text = (HELLO / "hello.xl").read_text().replace("'hello'", f"'hello_{mode}'")
            xl.write_text(text.replace("type = 'pvh'", f"type = '{mode}'"))
            files[f"linux hello {mode}"] = xl
    return files


def lab_facts() -> dict[str, str]:
    """QEMU's version and CPU model (from its command line), Xen's version and paging mode."""
    facts = {}
    pid = Path(".xenlab/qemu.pid")
    if pid.exists():
        argv = Path(f"/proc/{pid.read_text().strip()}/cmdline").read_bytes().split(b"\0")
        exe = argv[0].decode()
        facts["cpu"] = argv[argv.index(b"-cpu") + 1].decode()
        facts["qemu"] = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()[3]
    info = subprocess.run(["xenlab", "ssh", "sudo", "xl", "info"], capture_output=True, text=True).stdout
    caps = re.search(r"^virt_caps\s*:\s*(.*)$", info, re.M)
    version = re.search(r"^xen_version\s*:\s*(\S+)", info, re.M)
    facts["xen"] = version.group(1) if version else "?"
    facts["paging"] = ("hap" if "hap" in caps.group(1).split() else "shadow") if caps else "?"
    return facts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boots", type=int, default=50, help="boots per guest and mode")
    ap.add_argument("--kinds", default="testkernel,linux")
    ap.add_argument("--out", type=Path, help="append the markdown rows to this file")
    args = ap.parse_args()
    facts = lab_facts()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = guests(Path(tmp), args.kinds.split(","))
        ended: dict[str, Counter[str]] = {k: Counter() for k in files}
        seconds: dict[str, list[float]] = {k: [] for k in files}
        for i in range(args.boots):
            for kind, xl in files.items():  # interleaved: drift over the run hits every kind alike
                t = time.monotonic()
                r = subprocess.run(["xenlab", "run", str(xl), "--json", "--no-network", "--timeout", "120"],
                                   capture_output=True, text=True)
                seconds[kind].append(time.monotonic() - t)
                out = json.loads(r.stdout) if r.stdout.strip() else {}
                how = ("passed" if r.returncode == 0
                       else str(out.get("ended") or f"xenlab exit {r.returncode}"))
                if how != "passed" and not out.get("console"):
                    how += " (empty console)"
                ended[kind][how] += 1
            print(f"{i + 1}/{args.boots}: " + "; ".join(f"{k} {dict(c)}" for k, c in ended.items()),
                  file=sys.stderr)
    for kind, counts in ended.items():
        failures = ", ".join(f"{n} {how}" for how, n in counts.items() if how != "passed") or "none"
        rows.append(f"| {facts.get('qemu', '?')} | {facts['xen']} | {facts['paging']} | {kind} | "
                    f"{counts['passed']}/{args.boots} | {failures} | "
                    f"{statistics.median(seconds[kind]):.1f} |")
    header = ["", f"CPU: `{facts.get('cpu', '?')}`", "",
              "| QEMU | Xen | paging | guest | passed | failures | median s per `run` |",
              "|---|---|---|---|---|---|---|"]
    text = "\n".join([*header, *rows]) + "\n"
    print(text)
    if args.out:
        with args.out.open("a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
