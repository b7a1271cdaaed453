"""xenlab's .xl reader against Xen's own (libxlutil) on generated texts: accept/reject and every
value must agree. libxlutil runs in a forked child, since some inputs make it abort (a NUL in a
string): those are counted apart and must be refused by xenlab."""

from __future__ import annotations

import faulthandler
import json
import os
import re
import tempfile

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.xl.syntax import Scalar, XlSyntaxError, _read_values, _statements, _values, parse

KEYS = ["name", "memory", "kernel", "extra", "vif", "disk", "on_crash", "maxmem", "cpus"]
ATOMS = st.one_of(
    st.sampled_from(["0", "128", "0x40", "017", "9", "1e3", "0x", "08"]),
    st.builds(lambda s: f"'{s}'", st.text(st.sampled_from("ab =,/\\\"n0x\t#;[]"), max_size=8)),
    st.builds(lambda s: f'"{s}"', st.text(st.sampled_from("ab ='\\n0t"), max_size=8)),
    st.sampled_from(["'a\\x41'", "'a\\101'", "'\\12'", "'x\0y'", "'caf\u00e9'"]),
)


def values(depth: int = 0) -> st.SearchStrategy[str]:
    if depth > 2:
        return ATOMS
    items = st.lists(st.deferred(lambda: values(depth + 1)), max_size=3)
    return st.one_of(ATOMS, st.builds(
        lambda xs, nl, trail: "[" + ("\n" if nl else " ") + ", ".join(xs) + ("," if trail else "")
        + ("\n" if nl else " ") + "]", items, st.booleans(), st.booleans()))


LINE = st.builds(lambda k, op, v, end: f"{k} {op} {v}{end}", st.sampled_from(KEYS),
                 st.sampled_from(["=", "=", "+="]), values(),
                 st.sampled_from(["\n", "\n", ";", " # note\n", "\r\n", ""]))
TEXTS = st.builds(lambda lines, tail: "".join(lines) + tail, st.lists(LINE, min_size=1, max_size=5),
                  st.sampled_from(["", "", "\n", ".", "#", "\r", "x", "\n\n"]))


# Files most of which Xen reads: escapes, comments inside lists, `;`, `+=` chains.
READABLE_ATOMS = st.one_of(
    st.sampled_from(["0", "128", "0x40", "017"]),
    st.builds(lambda s: "'" + "".join(s) + "'",
              st.lists(st.sampled_from(["a", " ", "#", ",", "[", "\\n", "\\'", '"']), max_size=6)),
    st.builds(lambda s: '"' + "".join(s) + '"',
              st.lists(st.sampled_from(["b", "=", "\\t", '\\"', "\\101"]), max_size=6)),
)
READABLE_LISTS = st.builds(
    lambda xs, sep, trail: "[" + sep + ("," + sep).join(xs) + ("," if trail else "") + sep + "]",
    st.lists(st.one_of(READABLE_ATOMS, st.just("[ 'nested' ]")), max_size=3),
    st.sampled_from([" ", "\n", " # a comment, with 'quotes'\n", "\t"]), st.booleans())
READABLE = st.builds(
    lambda lines: "".join(lines),
    st.lists(st.builds(lambda k, op, v, end: f"{k} {op} {v}{end}", st.sampled_from(KEYS),
                       st.sampled_from(["=", "=", "+="]), st.one_of(READABLE_ATOMS, READABLE_LISTS),
                       st.sampled_from(["\n", ";", " # note\n", "; ", ""])), min_size=1, max_size=6))


def xen_reads(text: bytes) -> dict[str, object] | str | None:
    """What libxlutil makes of text, from a forked child: {key: (kind, value, long)}, None for a
    rejected file, "abort" when libxlutil itself crashed."""
    from xen_oracle import Unavailable, Xen

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: parse, report as JSON, never return into pytest
        try:
            os.close(read_fd)
            # libxlutil's abort is an answer here, not a crash to dump a stack for in CI's log.
            faulthandler.disable()
            try:
                xen = Xen()
            except Unavailable as exc:
                os.write(write_fd, json.dumps({"unavailable": str(exc)}).encode())
                raise
            with tempfile.NamedTemporaryFile(suffix=".xl", delete=False) as f:
                f.write(text)
            r = xen.parse(f.name)
            out: object = None
            if r.rc == 0:
                out = {}
                for key in KEYS:
                    kind, value = xen.get(r.cfg, key)
                    if kind != "missing":
                        out[key] = [kind, value, xen.get_long(r.cfg, key) if kind == "string" else None]
            os.unlink(f.name)
            os.write(write_fd, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) or not data:
        return "abort"
    out = json.loads(data)
    if isinstance(out, dict) and "unavailable" in out:
        # Not Xen's verdict on the file: the oracle is missing.
        pytest.skip(f"libxlutil could not be loaded: {out['unavailable']}")
    return out  # type: ignore[no-any-return]


@given(st.one_of(TEXTS, READABLE))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_files_read_the_same_by_xen_and_xenlab(text: str) -> None:
    data = text.encode("utf-8")
    theirs = xen_reads(data)
    try:
        doc = parse(data.decode("utf-8", "surrogateescape"), "gen.xl")
        mine = doc.resolved()
    except LabError:
        assert theirs in (None, "abort"), f"xenlab refused what Xen reads: {text!r} -> {theirs}"
        event("libxlutil aborted, xenlab refused" if theirs == "abort" else "both refused")
        return
    event("both read it")
    assert theirs not in (None, "abort"), f"xenlab read what Xen refuses ({theirs}): {text!r}"
    assert isinstance(theirs, dict)
    assert set(theirs) == {k for k in mine if k in KEYS}, text
    for key, (kind, value, number) in theirs.items():
        ours = mine[key]
        if isinstance(ours, Scalar):
            assert (kind, value) == ("string", ours.text), (text, key)
            assert number == doc.number(key), (text, key)
        else:
            assert kind == "list", (text, key)
            assert value == [i.text if isinstance(i, Scalar) else None for i in ours], (text, key)


def test_strings_with_a_nul_byte_are_refused(xen) -> None:
    """libxlutil aborts on them (xl crashes): xenlab must not accept a file xl cannot read."""
    assert xen_reads(b"name = 'a\0b'\n") == "abort"
    try:
        parse("name = 'a\0b'\n", "nul.xl")
    except LabError as exc:
        assert re.search(r"nul\.xl:1:\d+: a NUL byte inside a string", exc.message)
    else:
        raise AssertionError("accepted")


@given(st.one_of(TEXTS, READABLE))
@settings(max_examples=400, deadline=None)
def test_the_fast_reader_agrees_with_the_detailed_one(text: str) -> None:
    """Statements of the common shape are read by one regular expression, the rest by the token
    parser that edits use: a file must read the same, and fail at the same place, either way."""
    def read(reader):  # type: ignore[no-untyped-def]
        try:
            return reader()
        except XlSyntaxError as exc:
            return exc.message
    fast = read(lambda: _read_values(text, "gen.xl"))
    assert fast == read(lambda: _values(_statements(text, "gen.xl"), "gen.xl")), text
    event("refused" if isinstance(fast, str) else "read")
