"""Image builders against generated and hostile trees: every tree is either built and read back
by the real tools (GNU tar; fsck.fat and mtools) with nothing from outside the data directory in
it, or refused with one `error:` line, exit 2, no traceback and no file left at -o."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import run, xenlab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.image import build_image

SECRET = b"outside-the-data-directory"
# 8.3-friendly names (what FAT holds) and some that only tar holds.
NAMES = st.sampled_from(["A.TXT", "B", "INDEX.HTM", "DATA.BIN", "Long Name.txt", "x", "CSS", "ÉTÉ.TXT"])


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, str, object]]:
    """(kind, path, payload) items: file, dir, link-in (to a file inside), link-out, fifo."""
    items: list[tuple[str, str, object]] = []
    for i in range(draw(st.integers(1, 6))):
        name = f"{draw(NAMES)}{i}" if draw(st.booleans()) else draw(NAMES)
        kind = draw(st.sampled_from(["file", "file", "file", "dir", "link-in", "link-out", "fifo", "old"]))
        items.append((kind, name, draw(st.binary(max_size=3000))))
    return items


def materialise(root: Path, items: list[tuple[str, str, object]]) -> tuple[Path, set[str]]:
    """The tree on disk, and the kinds of item that made it there (a name taken is skipped)."""
    made: set[str] = set()
    data = root / "data"
    data.mkdir()
    (root / "secret").write_bytes(SECRET)
    first_file = None
    for kind, name, payload in items:
        p = data / name
        if p.exists() or p.is_symlink() or (kind == "link-in" and first_file is None):
            continue
        made.add(kind)
        if kind in ("file", "old"):
            p.write_bytes(payload)  # type: ignore[arg-type]
            first_file = first_file or p
            if kind == "old":
                os.utime(p, (-86400 * 365, -86400 * 365))  # 1969
        elif kind == "dir":
            p.mkdir()
            (p / "IN.TXT").write_bytes(b"inner")
        elif kind == "link-in":
            assert first_file is not None
            p.symlink_to(first_file.name)
        elif kind == "link-out":
            p.symlink_to("../secret")
        elif kind == "fifo":
            os.mkfifo(p)
    return data, made


@pytest.mark.parametrize("kind", ["tar", "fat"])
@given(items=trees())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_trees_are_built_and_read_back_or_refused_cleanly(kind: str, items: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, made = materialise(root, items)
        out = root / "out.img"
        try:
            build_image(kind, data, out)
        except LabError as exc:
            assert exc.code == 2 and exc.hint and "\n" not in exc.message
            assert not out.exists() and not list(root.glob(".out.img.*"))
            return
        raw = out.read_bytes()
        assert SECRET not in raw  # nothing from outside the data directory
        assert not made & {"link-out", "fifo"}, "a link out or a FIFO must be refused"
        assert not (kind == "tar" and "old" in made), "a date before 1970 must be refused by tar"
        if kind == "tar":
            listing = run("tar", "-tf", out).stdout.split()
            assert listing, raw[:512]
        else:
            assert run("fsck.fat", "-n", out, check=False).returncode == 0
            assert run("mdir", "-i", out, "::", env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
                       check=False).returncode == 0


@pytest.mark.parametrize("kind", ["tar", "fat"])
@pytest.mark.parametrize("case", ["link-out", "link-dotdot", "loop", "dir-output", "device-output",
                                  "unwritable", "non-utf8", "unreadable"])
def test_hostile_inputs_are_one_line_errors(tmp_path: Path, kind: str, case: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "A.TXT").write_bytes(b"a")
    out = tmp_path / "out.img"
    expected = {"link-out": "leaves the data directory", "link-dotdot": "leaves the data directory",
                "loop": "back to one of its own parent", "dir-output": "not a regular file",
                "device-output": "not a regular file", "unwritable": "cannot write",
                "non-utf8": "not UTF-8", "unreadable": "cannot read"}[case]
    if case == "link-out":
        (data / "SHADOW").symlink_to("/etc/shadow")
    elif case == "link-dotdot":
        (data / "UP").symlink_to("..")
    elif case == "loop":
        (data / "SUB").mkdir()
        (data / "SUB" / "BACK").symlink_to("..")
    elif case == "dir-output":
        out.mkdir()
    elif case == "device-output":
        out = tmp_path / "null"
        subprocess.run(["mknod", out, "c", "1", "3"], check=True)
    elif case == "unwritable":
        ro = tmp_path / "ro"
        ro.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro], check=True)
        out = ro / "out.img"
    elif case == "non-utf8":
        (data / os.fsdecode(b"\xff\xfe.TXT")).write_bytes(b"x")
    elif case == "unreadable":
        (data / "B.TXT").write_bytes(b"b")
        (data / "B.TXT").chmod(0)
        if os.geteuid() == 0:
            # root reads anything: make it unreadable the way root meets it (a dead NFS file,
            # a FUSE error), by taking the file away between scan and copy: a dangling link.
            (data / "B.TXT").unlink()
            (data / "B.TXT").symlink_to("NOWHERE")
            expected = "cannot stat"
    if case == "device-output" and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    try:
        before = out.stat() if out.exists() else None
        r = xenlab("image", kind, data, "-o", out)
    finally:
        if case == "unwritable":
            subprocess.run(["umount", tmp_path / "ro"], check=False)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert expected in errors[0] and "hint: " in r.stderr
    if case == "device-output":
        assert out.is_char_device() and before is not None and out.stat().st_rdev == before.st_rdev
    if case == "dir-output":
        assert out.is_dir()


def test_large_file_across_filesystems_falls_back_from_copy_file_range(tmp_path: Path) -> None:
    """copy_file_range refuses across filesystems (EXDEV): a tmpfs data directory, an image on
    the disk. A 1 MiB file (over the small-file path) still arrives byte for byte."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data = tmp_path / "tmpfs"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", data], check=True)
    try:
        payload = os.urandom(1 << 20)
        (data / "BIG.BIN").write_bytes(payload)
        out = Path(tempfile.mkdtemp(dir="/var/tmp")) / "x.img"
        try:
            r = xenlab("image", "fat", data, "-o", out)
            assert r.returncode == 0, r.stderr
            got = subprocess.run(["mtype", "-i", out, "::/BIG.BIN"], capture_output=True,
                                 env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
            assert got == payload
            r = xenlab("image", "tar", data, "-o", out)
            assert r.returncode == 0, r.stderr
            assert subprocess.run(["tar", "-xOf", out, "BIG.BIN"], capture_output=True).stdout == payload
        finally:
            shutil.rmtree(out.parent)
    finally:
        subprocess.run(["umount", data], check=False)


@pytest.mark.parametrize(("kind", "files"), [
    ("fat", {f"F{i}.BIN": 64 * 1024 for i in range(40)}),  # small files: one write each
    ("fat", {"BIG.BIN": 3 << 20}),  # over the small-file path: copied in ranges
    ("tar", {f"F{i}.BIN": 64 * 1024 for i in range(40)}),
])
def test_a_full_disk_is_said_to_be_the_disk(tmp_path: Path, kind: str, files: dict[str, int]) -> None:
    """The image's file system fills up while the data goes in: the error is the disk's, not "a
    data file changed size", and no half-written image is left."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data = tmp_path / "data"
    data.mkdir()
    for name, size in files.items():
        (data / name).write_bytes(os.urandom(size))
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small], check=True)
    try:
        out = small / "x.img"
        r = xenlab("image", kind, data, "-o", out, *(["--size", "16M"] if kind == "fat" else []))
        errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
        assert r.returncode != 0 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "No space left on device" in errors[0] and "changed size" not in r.stderr, r.stderr
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", small], check=False)


def test_absurd_sizes_are_refused_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "A.TXT").write_bytes(b"a")
    for kind in ("tar", "fat"):
        r = xenlab("image", kind, data, "-o", tmp_path / "x.img", "--size", "1000000G")
        assert r.returncode == 2 and "Traceback" not in r.stderr and "--size" in r.stderr, r.stderr
        assert not (tmp_path / "x.img").exists()


def test_a_directory_fat_cannot_hold_is_refused_and_the_largest_it_can_is_built(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(65521):
        (data / f"F{i}").touch()
    r = xenlab("image", "fat", data, "-o", tmp_path / "x.img")
    assert r.returncode == 2 and "holds 65521 entries" in r.stderr and "Traceback" not in r.stderr
    (data / "F65520").unlink()
    r = xenlab("image", "fat", data, "-o", tmp_path / "x.img")
    assert r.returncode == 0, r.stderr
    assert run("fsck.fat", "-n", tmp_path / "x.img", check=False).returncode == 0


@pytest.mark.parametrize("kind", ["tar", "fat"])
@pytest.mark.parametrize("case", ["shrank", "vanished"])
def test_data_that_changes_under_the_build_is_named_as_the_datas_fault(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, case: str) -> None:
    """Between the scan and the copy a file shrinks or goes away (something else writes the data
    directory): an error about that file, never "cannot write the image", and no image left."""
    from lab import image
    from lab.image import fat, tar

    data = tmp_path / "data"
    data.mkdir()
    (data / "A.TXT").write_bytes(b"x" * 300_000)  # over the small-file path of the FAT builder
    real_scan = image.scan

    def racing_scan(directory: Path) -> list:
        entries = real_scan(directory)
        if case == "shrank":
            (data / "A.TXT").write_bytes(b"x" * 10)
        else:
            for e in entries:
                e.source = str(data / "GONE.TXT")
        return entries

    monkeypatch.setattr(fat if kind == "fat" else tar, "scan", racing_scan)
    out = tmp_path / "x.img"
    with pytest.raises(LabError) as exc:
        build_image(kind, data, out)
    expected = "changed size while the image was built" if case == "shrank" else "cannot read"
    assert expected in exc.value.message and "cannot write" not in exc.value.message
    assert not out.exists() and not list(tmp_path.glob(".x.img.*"))


@pytest.mark.parametrize("kind", ["fat", "tar"])
def test_an_image_name_at_the_length_limit_is_written(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "A.TXT").write_text("a\n")
    out = tmp_path / ("i" * 251 + ".img")  # 255 bytes, the longest a file system takes
    r = xenlab("image", kind, data, "-o", out)
    assert r.returncode == 0 and out.is_file(), r.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
