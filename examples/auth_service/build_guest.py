"""Build xenlab's test guests from Debian's packages (MirageOS cannot be built on these machines).

    python3 examples/auth_service/build_guest.py [OUTDIR]
    python3 examples/auth_service/build_guest.py OUTDIR --unikernel DIR

Writes, next to auth_service.xl by default, the two files its build-host paths name:
  mir-auth_service.xen        Debian's Linux kernel (boots as a Xen PV or PVH guest)
  auth_service-initrd.gz      busybox initramfs: DHCP, the FAT disk, the auth service on 8088
With --unikernel DIR (one of examples/unikernels/*), the stand-in for that unikernel instead:
  NAME.xen and NAME-initrd.gz, with DIR/init as PID 1 (NAME is DIR's name).
The .debs are downloaded once into ~/.cache/xenlab/guest-debs.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = ["drivers/net/xen-netfront", "drivers/block/xen-blkfront", "fs/fat/fat", "fs/fat/vfat",
           "fs/nls/nls_cp437", "fs/nls/nls_iso8859-1", "fs/nls/nls_ascii"]


def sh(*cmd: str, cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def kernel_package() -> str:
    deps = sh("apt-cache", "depends", "linux-image-amd64")
    m = re.search(r"Depends: (linux-image-[0-9][^\s]*-amd64)", deps)
    if not m:
        sys.exit("cannot find Debian's kernel package (apt-get update?)")
    return m.group(1)


def download(cache: Path, package: str) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        sh("apt-get", "download", package, cwd=cache)
        found = sorted(cache.glob(f"{package}_*.deb"))
    return found[-1]


TOOLS = {"cpio": "cpio", "gzip": "gzip", "dpkg-deb": "dpkg", "apt-get": "apt", "apt-cache": "apt"}


def build(out: Path, init: Path | None = None, name: str = "auth_service") -> None:
    for tool, package in TOOLS.items():
        if not shutil.which(tool):
            sys.exit(f"error: {tool} is not installed\nhint: apt-get install {package} "
                     "(./install.sh installs everything the examples use)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xenlab" / "guest-debs"
    kpkg = kernel_package()
    version = kpkg.removeprefix("linux-image-")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for pkg in (kpkg, "busybox-static"):
            sh("dpkg-deb", "-x", str(download(cache, pkg)), str(t / "debs"))
        root = t / "initramfs"
        for d in ("bin", "proc", "sys", "dev", "data", "etc", "lib/modules"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(t / "debs/bin/busybox", root / "bin/busybox")
        for m in MODULES:
            shutil.copy(t / f"debs/lib/modules/{version}/kernel/{m}.ko", root / "lib/modules")
        sources = ([(init, "init")] if init else
                 [(HERE / "guest" / src, dst) for src, dst in (
                     ("init", "init"), ("auth-handler", "bin/auth-handler"),
                     ("udhcpc.script", "etc/udhcpc.script"))])
        for src_path, dst in sources:
            shutil.copy(src_path, root / dst)
            (root / dst).chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        files = sh("find", ".", cwd=root)
        cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=files.encode(),
                              capture_output=True, check=True).stdout
        out.mkdir(parents=True, exist_ok=True)
        initrd = out / f"{name}-initrd.gz"
        subprocess.run(["gzip", "-9", "-n"], input=cpio, stdout=open(initrd, "wb"), check=True)  # noqa: SIM115
        kernel = out / ("mir-auth_service.xen" if init is None else f"{name}.xen")
        shutil.copy(t / f"debs/boot/vmlinuz-{version}", kernel)
    print(f"{kernel} ({version}) and {initrd.name}")


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv and not argv[0].startswith("--") else HERE
    if "--unikernel" in argv:
        source = Path(argv[argv.index("--unikernel") + 1]).resolve()
        build(out, source / "init", source.name)
    else:
        build(out)


if __name__ == "__main__":
    main(sys.argv[1:])
