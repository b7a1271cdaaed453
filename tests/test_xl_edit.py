"""Editing .xl files keeps everything not edited byte for byte; edits mean what Xen reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS
from helpers import xenlab

from lab.xl.syntax import Scalar, XlSyntaxError, parse

AUTH = (CORPUS / "valid" / "mirage2-auth.xl").read_text()


def test_set_scalar_changes_only_that_value() -> None:
    doc = parse(AUTH).set("memory", "64")
    assert doc.text == AUTH.replace("memory = 256", "memory = 64")
    assert doc.number("memory") == 64


def test_set_list_keeps_one_line_layout_and_comments() -> None:
    doc = parse(AUTH).set_list("vif", ["bridge=br0"])
    assert doc.text == AUTH.replace("vif = [ ]", "vif = [ 'bridge=br0' ]")
    assert "# or add \"script=vif-openvswitch,\"" in doc.text


def test_set_list_keeps_multi_line_layout() -> None:
    src = "name = 'x'\nvif = [\n    'bridge=xenbr0',\n]\n# tail\n"
    doc = parse(src).set_list("vif", ["bridge=br0", "bridge=br1"])
    assert doc.text == "name = 'x'\nvif = [\n    'bridge=br0',\n    'bridge=br1',\n]\n# tail\n"


def test_append_new_key_and_delete_key() -> None:
    src = "name = 'x' # keep me\nbuilder = 'linux'\nmemory = 32\n"
    doc = parse(src).append("vcpus", "1")
    assert doc.text == src + "vcpus = 1\n"
    doc = doc.delete("builder")
    assert doc.text == "name = 'x' # keep me\nmemory = 32\nvcpus = 1\n"


def test_append_to_file_without_final_newline() -> None:
    doc = parse("name = 'x'").append("memory", "32")
    assert doc.text == "name = 'x'\nmemory = 32\n"


def test_plus_equals_chain_collapses_on_set() -> None:
    doc = parse("extra = 'a'\nextra += ' b'\nname = 'n'\n")
    assert doc.string("extra") == "a b"
    doc = doc.set("extra", "'c'")
    assert doc.text == "extra = 'c'\nname = 'n'\n"


def test_quote_round_trips_awkward_strings() -> None:
    from lab.xl.syntax import quote

    for value in ["plain", "it's", 'say "hi"', "back\\slash", "new\nline", "tab\there"]:
        assert parse(f"k = {quote(value)}\n").string("k") == value


def test_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(XlSyntaxError) as err:
        parse("name = 'x'\nmemory = \n", "guest.xl")
    assert err.value.message.startswith("guest.xl:2:")


def test_xl_show_json_and_error_exit_codes(tmp_path: Path) -> None:
    r = xenlab("xl", "show", CORPUS / "valid" / "edge-numbers.xl")
    assert r.returncode == 0
    import json

    data = json.loads(r.stdout)
    assert data["memory"] == 64 and data["maxmem"] == 64 and data["extra_num"] == "12abc"
    bad = tmp_path / "bad.xl"
    bad.write_text("name = 'x'\nvif = [ 'a'\n")
    r = xenlab("xl", "show", bad)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {bad}:3:1: ")
    assert "Traceback" not in r.stderr
    r = xenlab("xl", "show", tmp_path / "missing.xl")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_errors_after_statements_the_fast_reader_leaves_name_their_own_line() -> None:
    """Lines are counted on from each statement the detailed reader takes over."""
    text = "a = 1\nb = [ [ 'x' ] ]; c = [\n [ 2 ] ]\nd = 'ok'\n  e = 1 2\n"
    with pytest.raises(XlSyntaxError) as err:
        parse(text, "mixed.xl")
    assert err.value.message == "mixed.xl:5:9: expected end of line or ';' after the value, got '2'"
    assert parse(text.replace(" 2\n", "\n"), "mixed.xl").resolved()["c"] == [[Scalar("2", True)]]
