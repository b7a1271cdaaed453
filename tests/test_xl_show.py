"""`xenlab xl show`: each value as Xen reads it, held to libxlutil."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import xenlab


def test_an_appended_value_is_text_as_xl_has_it(xen, tmp_path: Path) -> None:
    path = tmp_path / "u.xl"
    path.write_text("name = 'u'\nmemory = 64\nmemory += 512\nvcpus = 2\n")
    shown = json.loads(xenlab("xl", "show", path).stdout)
    res = xen.parse(str(path))
    assert res.rc == 0, res.error
    # xl refuses `memory += ...` as a number (xlu_cfg_get_long fails) and reads it as text.
    assert xen.get_long(res.cfg, "memory") is None and xen.get(res.cfg, "memory") == ("string", "64512")
    assert shown["memory"] == "64512" and shown["vcpus"] == 2 == xen.get_long(res.cfg, "vcpus")


def test_a_byte_order_mark_is_refused_as_xl_refuses_it(xen, tmp_path: Path) -> None:
    path = tmp_path / "bom.xl"
    path.write_bytes(b"\xef\xbb\xbfname = 'u'\n")
    assert xen.parse(str(path)).rc != 0  # xl: a syntax error
    r = xenlab("xl", "show", path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and "bom.xl:1:1: a byte-order mark" in errors[0], r.stderr
    assert xenlab("fix", path).returncode == 2
