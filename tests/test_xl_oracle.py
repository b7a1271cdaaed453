"""xenlab's .xl reader against Xen's own (libxlutil through ctypes), over a corpus of real files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CORPUS

from lab.xl.disk import DiskSpecError, parse_disk
from lab.xl.syntax import Scalar, XlSyntaxError, read

VALID = sorted((CORPUS / "valid").glob("*.xl"))
INVALID = sorted((CORPUS / "invalid").glob("*.xl"))
DISKS = [
    line.rstrip("\n")
    for line in (CORPUS / "disks.txt").read_text().splitlines()
    if line and not line.startswith("#")
]


def test_corpus_is_big_enough() -> None:
    assert len(VALID) >= 30 and len(INVALID) >= 10 and len(DISKS) >= 30


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_key_and_value_matches_xen(xen, path: Path) -> None:
    result = xen.parse(str(path))
    assert result.rc == 0, result.error
    doc = read(path)
    mine = doc.resolved()
    # Every word that could be a key: Xen and xenlab must agree on which are present.
    candidates = set(re.findall(r"[a-z][._0-9a-z]*", path.read_text(errors="replace")))
    for key in sorted(candidates):
        kind, theirs = xen.get(result.cfg, key)
        if key not in mine:
            assert kind == "missing", f"{key}: Xen has {theirs!r}, xenlab has nothing"
            continue
        ours = mine[key]
        if isinstance(ours, Scalar):
            assert (kind, theirs) == ("string", ours.text), key
            assert xen.get_long(result.cfg, key) == doc.number(key), key
        else:
            expected = [i.text if isinstance(i, Scalar) else None for i in ours]
            assert (kind, theirs) == ("list", expected), key
    # JSON view: integers exactly where Xen reads an integer from a number.
    for key, value in doc.to_json().items():
        if isinstance(value, int):
            assert xen.get_long(result.cfg, key) == value, key
    xen.destroy(result.cfg)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_malformed_files_are_rejected_by_both(xen, path: Path) -> None:
    assert xen.parse(str(path)).rc != 0
    with pytest.raises(XlSyntaxError) as err:
        read(path)
    # FILE:LINE:COL: message
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: \S", err.value.message)


@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.name)
def test_untouched_file_writes_back_the_same_bytes(path: Path) -> None:
    try:
        doc = read(path)
    except XlSyntaxError:
        return
    assert doc.text.encode("utf-8", "surrogateescape") == path.read_bytes()


def _disk_fields(j: dict) -> dict:
    return {
        "target": j.get("pdev_path"), "format": j.get("format"), "vdev": j.get("vdev"),
        "readwrite": bool(j.get("readwrite")), "cdrom": bool(j.get("is_cdrom")),
        "script": j.get("script"), "backend": j.get("backend_domname"),
        "backendtype": j.get("backend", "unknown"),
    }


def _corpus_disks() -> list[str]:
    specs = list(DISKS)
    for path in VALID:
        specs += read(path).strings("disk") or []
    return specs


@pytest.mark.parametrize("spec", _corpus_disks())
def test_disk_spec_matches_xlu_disk_parse(xen, spec: str) -> None:
    theirs, _ = xen.disk(spec)
    if theirs is None:
        with pytest.raises(DiskSpecError):
            parse_disk(spec)
        return
    ours = parse_disk(spec)
    assert {k: getattr(ours, k) for k in _disk_fields(theirs)} == _disk_fields(theirs)
    # Our re-rendering (key=value, target last) must mean the same to Xen.
    again, _ = xen.disk(ours.render())
    assert again is not None and _disk_fields(again) == _disk_fields(theirs)
