"""tar images read back with GNU tar."""

from __future__ import annotations

import tarfile
from pathlib import Path

from helpers import run, xenlab

from lab.image import build_image


def test_tar_image_lists_and_extracts_byte_for_byte(tmp_path: Path) -> None:
    data = tmp_path / "d"
    (data / "htdocs" / "css").mkdir(parents=True)
    (data / "htdocs" / "index.html").write_bytes(b"<h1>hi</h1>\n")
    (data / "htdocs" / "css" / "site.css").write_bytes(b"body{}\n" * 1000)
    (data / "Long Name With Spaces.txt").write_bytes(b"fine in tar\n")
    img = tmp_path / "tar_block1.img"
    build_image("tar", data, img)
    assert img.stat().st_size % 4096 == 0
    listing = run("tar", "-tf", img).stdout.split("\n")
    assert "htdocs/css/site.css" in listing and "Long Name With Spaces.txt" in listing
    out = tmp_path / "x"
    out.mkdir()
    run("tar", "-xf", img, "-C", out)
    for p in data.rglob("*"):
        if p.is_file():
            assert (out / p.relative_to(data)).read_bytes() == p.read_bytes()
    with tarfile.open(img) as t:
        assert all(m.name and not m.name.startswith("./") for m in t.getmembers())
    # Plain ustar: the magic ocaml-tar checks, and no GNU/pax extension headers.
    raw = img.read_bytes()
    assert raw[257:263] == b"ustar\x00"
    assert b"././@LongLink" not in raw and b"PaxHeader" not in raw


def test_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    r = xenlab("image", "tar", tmp_path / "d", "-o", tmp_path / "x.img")
    assert r.returncode == 2 and "no files" in r.stderr
    assert not (tmp_path / "x.img").exists()


def test_names_ustar_cannot_hold_are_listed(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    long = "n" * 120
    (data / long).write_bytes(b"x")
    (data / "ok").write_bytes(b"y")
    r = xenlab("image", "tar", data, "-o", tmp_path / "x.img")
    assert r.returncode == 2 and long in r.stderr and "ustar" in r.stderr
    assert not (tmp_path / "x.img").exists()


def test_long_path_split_into_prefix_works(tmp_path: Path) -> None:
    data = tmp_path / "d"
    deep = data / ("a" * 90) / ("b" * 50)
    deep.mkdir(parents=True)
    (deep / "file.txt").write_bytes(b"deep")
    img = tmp_path / "x.img"
    build_image("tar", data, img)
    out = tmp_path / "x"
    out.mkdir()
    run("tar", "-xf", img, "-C", out)
    assert (out / deep.relative_to(data) / "file.txt").read_bytes() == b"deep"
