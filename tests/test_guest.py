"""The test guest that stands in for MirageOS's auth_service (examples/auth_service/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

EXAMPLE = ROOT / "examples" / "auth_service"
HANDLER = EXAMPLE / "guest" / "auth-handler"

pytestmark = pytest.mark.skipif(not shutil.which("busybox"), reason="apt-get install busybox-static")


def request(target: str, data: Path = EXAMPLE / "data") -> str:
    raw = f"GET {target} HTTP/1.1\r\nHost: guest\r\nUser-Agent: test\r\n\r\n"
    # Bytes, not text: universal newlines would hide whether the reply uses CRLF.
    return subprocess.run(["busybox", "sh", str(HANDLER)], input=raw.encode(), capture_output=True,
                          env={"AUTH_DATA": str(data), "PATH": "/usr/bin:/bin"},
                          timeout=10).stdout.decode()


def test_right_password_gets_hello() -> None:
    out = request("/?user=john&password=password1")
    assert out.startswith("HTTP/1.0 200 OK\r\n") and out.endswith("\r\n\r\nhello john!\n")


@pytest.mark.parametrize("target", [
    "/?user=john&password=wrong", "/?user=nobody&password=x", "/?password=password1",
    "/?user=../data/john&password=password1", "/",
])
def test_anything_else_is_401(target: str) -> None:
    out = request(target)
    assert out.startswith("HTTP/1.0 401 Unauthorized\r\n") and "Invalid login" in out


@pytest.mark.slow
def test_guest_builds_from_debian_packages(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(EXAMPLE / "build_guest.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    kernel = (tmp_path / "mir-auth_service.xen").read_bytes()
    assert kernel[0x202:0x206] == b"HdrS"  # a Linux bzImage
    listing = subprocess.run(f"zcat {tmp_path / 'auth_service-initrd.gz'} | cpio -t --quiet",
                             shell=True, capture_output=True, text=True, check=True).stdout.split()
    for member in ("init", "bin/busybox", "bin/auth-handler", "lib/modules/xen-netfront.ko",
                   "lib/modules/xen-blkfront.ko", "lib/modules/vfat.ko"):
        assert member in listing
