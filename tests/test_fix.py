"""`xenlab fix`: each rule found, repaired, and the repair accepted by Xen's own parser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS
from helpers import xenlab

from lab.config import LabConfig
from lab.fix import RULES, fix_file
from lab.xl.disk import parse_disk
from lab.xl.model import Domain


def project(tmp_path: Path, xl: str, files: dict[str, bytes] | None = None) -> Path:
    for name, data in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "app.xl"
    path.write_text(xl)
    return path


def rules_of(report) -> list[str]:
    return sorted({f.rule for f in report.findings})


def test_mirage2_auth_service_is_fully_repaired(tmp_path: Path, xen) -> None:
    src = (CORPUS / "valid" / "mirage2-auth.xl").read_text()
    path = project(tmp_path, src, {
        "mir-auth_service.xen": b"\x7fELF",
        "data/john": b"password",
        "make-fat1-image.sh": b"#!/bin/sh\nset -e\nIMG=$(pwd)/fat_block1.img\nrm -f ${IMG}\n"
                              b"cd ./data/\nSIZE=$(du -s . | cut -f 1)\n",
    })
    report = fix_file(path, LabConfig())
    # memory = 256 stays: MirageOS's default fits a lab (no bound but the lab host's free memory).
    assert rules_of(report) == ["XL003", "XL004", "XL005", "XL009"]
    d = Domain(report.fixed)
    assert d.kernel == "mir-auth_service.xen"
    assert [x.target for x in d.disks()] == ["fat_block1.img"]  # tar_block1 was a phantom
    assert [v.bridge for v in d.vifs()] == ["br0"]
    assert d.memory == 256
    assert d.type == "pv" and report.fixed.get("builder") is None and report.fixed.string("type") == "pv"
    # The repaired file is valid xl that Xen reads the same way.
    out = tmp_path / "fixed.xl"
    out.write_text(report.fixed.text)
    res = xen.parse(str(out))
    assert res.rc == 0, res.error
    assert xen.get(res.cfg, "vif") == ("list", ["bridge=br0"])
    # Comments survive.
    assert "vif-openvswitch" in report.fixed.text
    # A second pass finds nothing left to repair.
    shutil.copy(out, path)
    assert [f for f in fix_file(path, LabConfig()).findings if f.repair] == []


@pytest.mark.parametrize("xl,rule,check", [
    ("name = 'x; rm -rf /'\nkernel = 'k'\nvif = ['bridge=br0']\nmemory = 32\n", "XL001",
     lambda d: d.name == "x-rm-rf"),
    ("kernel = 'k'\nvif = ['bridge=br0']\nmemory = 32\n", "XL001", lambda d: d.name == "app"),
    ("name = 'a'\nkernel = 'k'\nvif = ['mac=00:16:3e:00:00:01']\nmemory = 32\n", "XL006",
     lambda d: d.vifs()[0].bridge == "br0" and d.vifs()[0].mac == "00:16:3e:00:00:01"),
    ("name = 'a'\nkernel = 'k'\nvif = ['bridge=xenbr0']\nmemory = 32\n", "XL006",
     lambda d: d.vifs()[0].bridge == "br0"),
    ("name = 'a'\nkernel = 'k'\nvif = ['bridge=br0']\nmemory = 16\n", "XL007",
     lambda d: d.memory == 32),
    ("name = 'a'\nkernel = 'k'\nvif = ['bridge=br0']\nmemory = 64\nmaxmem = 48\n", "XL008",
     lambda d: d.maxmem == 64),
    ("name = 'a'\nkernel = 'k'\nbuilder = 'linux'\ntype = 'pvh'\nvif = ['bridge=br0']\n", "XL009",
     lambda d: d.doc.get("builder") is None and d.type == "pvh"),
    ("name = 'a'\nkernel = 'k'\nvif = ['bridge=br0']\ndisk = [ 'vdev=xvdb, target=a.img', "
     "'vdev=xvdb, target=b.img' ]\n", "XL010",
     lambda d: [x.vdev for x in d.disks()] == ["xvdb", "xvdc"]),
])
def test_each_rule_repairs(tmp_path: Path, xen, xl: str, rule: str, check) -> None:
    path = project(tmp_path, xl, {"k": b"kernel", "a.img": b"", "b.img": b""})
    report = fix_file(path, LabConfig())
    assert rule in rules_of(report)
    assert check(Domain(report.fixed))
    out = tmp_path / "out.xl"
    out.write_text(report.fixed.text)
    assert xen.parse(str(out)).rc == 0
    for spec in report.fixed.strings("disk") or []:
        assert xen.disk(spec)[0] is not None
        parse_disk(spec)


def test_missing_kernel_has_no_repair_and_check_fails(tmp_path: Path) -> None:
    path = project(tmp_path, "name = 'a'\nkernel = '/build/a.xen'\nvif = ['bridge=br0']\n")
    r = xenlab("fix", path, "--check", "--json")
    assert r.returncode == 1
    found = json.loads(r.stdout)["findings"]
    assert [(f["rule"], f["repair"]) for f in found] == [("XL002", None)]
    assert found[0]["line"] == 2


def test_bad_disk_spec_is_reported_not_crashed(tmp_path: Path) -> None:
    path = project(tmp_path, "name = 'a'\nkernel = 'k'\nvif=['bridge=br0']\n"
                             "disk = [ 'format=qcow9, vdev=xvda, target=/x' ]\n", {"k": b""})
    report = fix_file(path, LabConfig())
    assert "XL011" in rules_of(report)


def test_diff_write_and_check_cli(tmp_path: Path) -> None:
    path = project(tmp_path, "name = 'a'\nkernel = 'k'\nvif = [ ]\nmemory = 16\n", {"k": b""})
    before = path.read_text()
    r = xenlab("fix", path, "--diff")
    assert r.returncode == 0
    assert "-vif = [ ]" in r.stdout and "+vif = [ 'bridge=br0' ]" in r.stdout
    assert "XL005" in r.stderr
    assert path.read_text() == before  # --diff alone never writes
    assert xenlab("fix", path, "--check").returncode == 1
    w = xenlab("fix", path, "--write")
    assert w.returncode == 0
    assert "memory = 32" in path.read_text()  # the lab's minimum
    assert xenlab("fix", path, "--check").returncode == 0


def test_lab_bridge_and_memory_come_from_config(tmp_path: Path) -> None:
    path = project(tmp_path, "name = 'a'\nkernel = 'k'\nvif = [ ]\nmemory = 256\n", {"k": b""})
    (tmp_path / "xenlab.toml").write_text('bridge = "xenbr7"\nguest_memory_max = 256\n')
    r = xenlab("fix", path, "--diff", cwd=tmp_path)
    assert "+vif = [ 'bridge=xenbr7' ]" in r.stdout and "\n-memory" not in r.stdout


def test_rule_ids_are_stable_and_unique() -> None:
    names = [r.name for r in RULES.values()]
    assert len(set(names)) == len(names)
    assert list(RULES)[:4] == ["XL001", "XL002", "XL003", "XL004"]


PVH_NO_VIF = "name = 'u'\nkernel = 'u.xen'\ntype = 'pvh'\nmemory = 64\nvif = [  ]\n"


@pytest.mark.parametrize(("text", "network", "xl005"), [
    (PVH_NO_VIF, None, False),  # MirageOS 4: no vif = no network device in the unikernel
    (PVH_NO_VIF, True, True),  # --network asks for one anyway
    (PVH_NO_VIF.replace("'pvh'", "'pv'"), None, True),  # MirageOS 2/3: `vif = [ ]` left to fill in
    (PVH_NO_VIF.replace("'pvh'", "'pv'"), False, False),  # --no-network
])
def test_no_network_is_decided_from_the_file_and_the_flag(
        tmp_path: Path, text: str, network: bool | None, xl005: bool) -> None:
    path = project(tmp_path, text, {"u.xen": b"\x7fELF"})
    report = fix_file(path, LabConfig(), network=network)
    assert ("XL005" in rules_of(report)) is xl005
    assert bool(Domain(report.fixed).vifs()) is xl005


def test_fix_write_keeps_mode_and_symlinks(tmp_path: Path) -> None:
    real = project(tmp_path, "name = 'u'\nkernel = 'u.xen'\nmemory = 8\nvif = [ 'bridge=br0' ]\n",
                   {"u.xen": b"\x7fELF"})
    real.chmod(0o600)
    link = tmp_path / "link.xl"
    link.symlink_to(real.name)
    r = xenlab("fix", link, "--write", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and "memory = 32" in real.read_text()
    assert real.stat().st_mode & 0o777 == 0o600


def test_multi_line_list_with_its_first_item_on_the_bracket_line(tmp_path: Path, xen) -> None:
    path = project(tmp_path, "name = 'a'\nkernel = 'k'\nvif = [ 'bridge=xenbr0'\n]\n", {"k": b""})
    report = fix_file(path, LabConfig())
    out = tmp_path / "out.xl"
    out.write_text(report.fixed.text)
    res = xen.parse(str(out))
    assert res.rc == 0, res.error
    assert xen.get(res.cfg, "vif") == ("list", ["bridge=br0"])
    assert report.fixed.text.startswith("name = 'a'\nkernel = 'k'\n")


def test_paths_the_system_refuses_are_findings_not_tracebacks(tmp_path: Path) -> None:
    long = "y" * 300
    path = project(tmp_path, f"name = 'b'\nkernel = '/x/{long}/k.xen'\n"
                             f"disk = [ 'format=raw, vdev=xvdb, target=/{long}/d.img' ]\n")
    r = xenlab("fix", path, cwd=tmp_path)
    assert "Traceback" not in r.stderr and r.returncode == 0
    assert "XL002" in r.stdout and "XL004" in r.stdout
