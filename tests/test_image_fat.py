"""FAT16 images read back with the real tools: fsck.fat (dosfstools) and mtools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import run, xenlab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.image import build_image
from lab.image.fat import short_name

pytestmark = pytest.mark.skipif(not shutil.which("fsck.fat") or not shutil.which("mtype"),
                                reason="needs dosfstools and mtools (apt-get install dosfstools mtools)")


def fsck(img: Path) -> str:
    r = run("fsck.fat", "-n", img, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def mtype(img: Path, name: str) -> bytes:
    return subprocess.run(["mtype", "-i", str(img), f"::/{name}"], capture_output=True,
                          check=True).stdout


def boot_field(img: Path, offset: int, size: int) -> int:
    with open(img, "rb") as f:
        f.seek(offset)
        return int.from_bytes(f.read(size), "little")


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_auth_service_data_reads_back_byte_for_byte(tmp_path: Path) -> None:
    data = tree(tmp_path / "data", {"john": b"password1\n", "alice": b"s3cret\n",
                                    "sub/deeper/notes.txt": b"x" * 70000, "empty": b""})
    img = tmp_path / "fat_block1.img"
    result = build_image("fat", data, img)
    out = fsck(img)
    assert ": 6 files, " in out  # fsck.fat counts directories too: four files, sub/ and deeper/
    assert boot_field(img, 11, 2) == 512  # bytes per sector
    assert img.read_bytes()[54:62] == b"FAT16   "
    for rel in ("john", "alice", "sub/deeper/notes.txt", "empty"):
        assert mtype(img, rel) == (data / rel).read_bytes()
    # Stored upper-case, found in any case; shown lower-case thanks to the NT case bits.
    assert mtype(img, "JOHN") == b"password1\n"
    listing = run("mdir", "-b", "-i", img, "::/").stdout.split()
    assert "::/john" in listing
    assert result.files == 4 and result.data_bytes == 10 + 7 + 70000


def test_more_than_512_root_entries(tmp_path: Path) -> None:
    files = {f"f{i:05d}.txt": f"file {i}\n".encode() for i in range(1200)}
    data = tree(tmp_path / "d", files)
    img = tmp_path / "many.img"
    build_image("fat", data, img)
    fsck(img)
    names = run("mdir", "-b", "-i", img, "::/").stdout.split()
    assert len(names) == 1200
    assert boot_field(img, 17, 2) >= 1200  # root directory sized for what it holds
    for i in (0, 511, 512, 1199):
        assert mtype(img, f"f{i:05d}.txt") == f"file {i}\n".encode()


def test_long_names_are_an_error_listing_them_and_leave_nothing(tmp_path: Path) -> None:
    data = tree(tmp_path / "d", {"ok.txt": b"1", "averylongname.txt": b"2",
                                 "sub/too.many.dots": b"3", "x.html": b"4"})
    img = tmp_path / "out.img"
    r = xenlab("image", "fat", data, "-o", img)
    assert r.returncode == 2
    assert "averylongname.txt" in r.stderr and "sub/too.many.dots" in r.stderr
    assert "x.html" in r.stderr  # a 4-character extension is not 8.3 either
    assert "ok.txt" not in r.stderr.split("names:")[-1]
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: ")
    assert not img.exists() and not list(tmp_path.glob(".out.img*"))


def test_case_collisions_are_an_error(tmp_path: Path) -> None:
    data = tree(tmp_path / "d", {"john": b"a", "JOHN": b"b"})
    with pytest.raises(LabError, match="differ only in case"):
        build_image("fat", data, tmp_path / "x.img")


def test_size_too_small_is_refused_and_leaves_no_image(tmp_path: Path) -> None:
    data = tree(tmp_path / "d", {"big.bin": os.urandom(3 * 1024 * 1024)})
    img = tmp_path / "x.img"
    r = xenlab("image", "fat", data, "-o", img, "--size", "3M")
    assert r.returncode == 2 and "needs" in r.stderr and "--size" in r.stderr
    assert not img.exists()
    ok = xenlab("image", "fat", data, "-o", img, "--size", "8M")
    assert ok.returncode == 0, ok.stderr
    assert img.stat().st_size == 8 * 1024 * 1024
    fsck(img)
    assert mtype(img, "big.bin") == (data / "big.bin").read_bytes()


def test_data_over_128_mib_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    with open(data / "huge.bin", "wb") as f:
        f.truncate(130 * 1024 * 1024)  # sparse: costs no disk
    r = xenlab("image", "fat", data, "-o", tmp_path / "x.img")
    assert r.returncode == 2 and "128 MiB" in r.stderr and "tar" in r.stderr


def test_large_file_uses_bigger_clusters(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    payload = os.urandom(1 << 20) * 40
    (data / "disk.bin").write_bytes(payload)
    img = tmp_path / "x.img"
    build_image("fat", data, img)
    fsck(img)
    assert boot_field(img, 13, 1) in (2, 4)
    assert mtype(img, "disk.bin") == payload


def test_an_existing_image_survives_a_failed_rebuild(tmp_path: Path) -> None:
    data = tree(tmp_path / "d", {"john": b"pw"})
    img = tmp_path / "x.img"
    build_image("fat", data, img)
    before = img.read_bytes()
    (data / "waytoolongname").write_bytes(b"")
    with pytest.raises(LabError):
        build_image("fat", data, img)
    assert img.read_bytes() == before


def test_output_inside_data_directory_is_refused(tmp_path: Path) -> None:
    data = tree(tmp_path / "d", {"a": b"1"})
    with pytest.raises(LabError, match="inside its own data directory"):
        build_image("fat", data, data / "x.img")


def test_linux_reads_it_too_if_loop_devices_work(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    data = tree(tmp_path / "d", {"john": b"pw\n", "sub/a.txt": b"A"})
    img = tmp_path / "x.img"
    build_image("fat", data, img)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run("mount", "-o", "loop,ro", img, mnt, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot loop-mount here: {r.stderr.strip()}")
    try:
        assert (mnt / "john").read_bytes() == b"pw\n"
        assert (mnt / "sub" / "a.txt").read_bytes() == b"A"
    finally:
        run("umount", mnt)


@pytest.mark.parametrize("name,ok", [
    ("john", True), ("JOHN", True), ("a.b", True), ("12345678.abc", True), ("123456789", False),
    ("a.abcd", False), (".hidden", False), ("a.b.c", False), ("sp ace", False), ("ünï", False),
    ("a+b", False), ("x~1", True), ("README.md", True), ("trailing.", False),
])
def test_short_name_rules(name: str, ok: bool) -> None:
    assert (short_name(name) is not None) == ok


# The 8.3 rule as Microsoft's FAT specification words it: 1-8 characters, optionally a dot and
# 1-3 more, from upper-case letters, digits and these symbols (names compared case-blind).
_SPEC_8_3 = re.compile(r"[A-Z0-9!#$%&'()\-@^_`{}~]{1,8}(?:\.[A-Z0-9!#$%&'()\-@^_`{}~]{1,3})?")


@settings(max_examples=500)
@given(st.from_regex(r"[aZ09_~!-]{0,10}(\.[aZ09_~!.-]{0,5})?", fullmatch=True)
       | st.from_regex(r"[aZ0+ ,;=é-]{0,10}(\.[aZ0+ ,;=é.-]{0,5})?", fullmatch=True))
def test_short_names_follow_the_specification(name: str) -> None:
    accepted = short_name(name) is not None
    assert accepted == bool(name.isascii() and _SPEC_8_3.fullmatch(name.upper()))


_names = st.from_regex(r"[a-z0-9_]{1,8}(\.[a-z0-9]{1,3})?", fullmatch=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(
    st.lists(_names, min_size=1, max_size=3).map("/".join), st.binary(max_size=3000),
    min_size=1, max_size=25))
def test_random_trees_read_back(tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes]) -> None:
    root = tmp_path_factory.mktemp("prop")
    data = root / "d"
    data.mkdir()
    written: dict[str, bytes] = {}
    for rel, content in files.items():
        p = data / rel
        # Skip paths that collide with a file used as a directory (or vice versa).
        if any((data / Path(rel).parents[i]).is_file() for i in range(len(Path(rel).parents) - 1)):
            continue
        if p.exists():
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        written[rel] = content
    img = root / "x.img"
    build_image("fat", data, img)
    fsck(img)
    for rel, content in written.items():
        assert mtype(img, rel) == content
    shutil.rmtree(root)
