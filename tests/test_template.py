"""MirageOS's NAME.xl.in templates: filled from the lab, then repaired like any .xl file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import xenlab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.config import LabConfig
from lab.fix import fix_file
from lab.xl.model import Domain

# As `mirage configure -t xen` (MirageOS 4) writes it for a unikernel with one block device and
# one network device.
TEMPLATE = """name = '@NAME@'
kernel = '@KERNEL@'
type = 'pvh'
memory = @MEMORY@
on_crash = 'preserve'

disk = [ 'format=raw, vdev=xvdb, access=rw, target=@BLOCK:disk.img@' ]

# if your system uses openvswitch then either edit /etc/xen/xl.conf and set
#     vif.default.script="vif-openvswitch"
# or add "script=vif-openvswitch," before the "bridge=" below:
vif = [ 'bridge=@NETWORK:service@' ]
"""


def project(tmp_path: Path, text: str = TEMPLATE) -> Path:
    (tmp_path / "web.xen").write_bytes(b"\x7fELF")
    (tmp_path / "disk.img").write_bytes(b"\0" * 512)
    path = tmp_path / "web.xl.in"
    path.write_text(text)
    return path


def test_placeholders_are_filled_from_the_lab(tmp_path: Path, xen) -> None:
    config = LabConfig(bridge="labbr", guest_memory_max=96)
    report = fix_file(project(tmp_path), config)
    assert report.findings == []  # nothing left for the rules once the lab filled it in
    d = Domain(report.fixed)
    assert (d.name, d.kernel, d.memory, d.type) == ("web", "web.xen", 96, "pvh")
    assert [x.target for x in d.disks()] == ["disk.img"] and [v.bridge for v in d.vifs()] == ["labbr"]
    out = tmp_path / "check.xl"
    out.write_text(report.fixed.text)
    res = xen.parse(str(out))
    assert res.rc == 0, res.error
    assert xen.get(res.cfg, "vif") == ("list", ["bridge=labbr"])
    assert xen.get_long(res.cfg, "memory") == 96


def test_fix_write_puts_the_result_beside_the_template(tmp_path: Path) -> None:
    path = project(tmp_path)
    r = xenlab("fix", path, "--write", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert path.read_text() == TEMPLATE  # the template stays a template
    written = (tmp_path / "web.xl").read_text()
    assert "@" not in written.replace("vif-openvswitch", "") and "name = 'web'" in written


def test_unknown_placeholder_names_its_line(tmp_path: Path) -> None:
    path = project(tmp_path, TEMPLATE.replace("on_crash = 'preserve'", "on_crash = '@CRASH@'"))
    r = xenlab("fix", path, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"error: {path}:5: unknown placeholder @CRASH@" in r.stderr and "hint:" in r.stderr


@pytest.mark.parametrize("target", ["fifo", "directory", "symlink-loop", "link-to-device"])
def test_fix_write_never_writes_over_what_is_not_a_regular_file(tmp_path: Path, target: str) -> None:
    """As root, renaming over /dev/null would replace the device with a file: refused, untouched."""
    path = project(tmp_path)
    out = tmp_path / "web.xl"
    if target == "fifo":
        os.mkfifo(out)
    elif target == "directory":
        out.mkdir()
    elif target == "symlink-loop":
        out.symlink_to(out.name)
    else:
        (tmp_path / "null").symlink_to("/dev/null")
        out.symlink_to("null")
    r = xenlab("fix", path, "--write", cwd=tmp_path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".xenlab-")]  # no temporary left


def test_fix_write_handles_a_name_at_the_length_limit(tmp_path: Path) -> None:
    name = "w" * (255 - len(".xl"))  # the longest name a file system takes
    path = tmp_path / f"{name}.xl"
    path.write_text("name = 'w'\nkernel = 'w.xen'\nmemory = 16\nvif = [ 'bridge=br0' ]\n")
    (tmp_path / "w.xen").write_bytes(b"\x7fELF")
    r = xenlab("fix", path, "--write", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "memory = 32" in path.read_text()


def test_a_template_without_placeholders_or_problems_still_makes_its_xl(tmp_path: Path) -> None:
    (tmp_path / "w.xen").write_bytes(b"\x7fELF")
    path = tmp_path / "w.xl.in"
    path.write_text("name = 'w'\nkernel = 'w.xen'\nmemory = 64\nvif = [ 'bridge=br0' ]\n")
    r = xenlab("fix", path, "--write", cwd=tmp_path)
    assert r.returncode == 0 and "w.xl: written from w.xl.in" in r.stderr, r.stderr
    assert (tmp_path / "w.xl").read_text() == path.read_text()
    again = xenlab("fix", path, "--write", cwd=tmp_path)  # nothing new to write: nothing written
    assert again.returncode == 0 and "written" not in again.stderr, again.stderr


PIECES = st.sampled_from(["@NAME@", "@KERNEL@", "@MEMORY@", "@BLOCK:disk.img@", "@NETWORK:service@",
                          "@NOPE@", "@BLOCK:", "@", "name = ", "kernel = ", "memory = ", "vif = [ '",
                          "disk = [ '", "' ]", "'", "\n", " ", "#", "=", "+=", "[", "]", ",", "\x00"])


@given(st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=25))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_template_text_is_filled_and_repaired_or_refused_cleanly(tmp_path: Path,
                                                                    pieces: list[str]) -> None:
    """Generated NAME.xl.in texts: a report, or one LabError naming the template; nothing else."""
    from lab.errors import LabError

    path = project(tmp_path, "".join(pieces))
    try:
        report = fix_file(path, LabConfig())
    except LabError as exc:
        assert exc.message.startswith(str(path)) and exc.code in (1, 2), exc.message
        return
    assert report.out_path == tmp_path / "web.xl"
