"""Hostile input, generated: settings, inventories, state files, option values and template texts
as a careless or hostile user writes them. For each one xenlab either accepts it or refuses it
the one way it refuses anything: exit 1 or 2, one `error:` line and a `hint:`, no traceback, and
nothing in the directory (or the home it would cache into) created or changed.

The command runs in this process through the executable's own entry (lab.entry.reported around
the click command line) so that hypothesis can try hundreds of inputs in seconds; test_entry and
the per-surface tests run the real process for the same paths.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import string
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lab.xl.syntax  # noqa: F401  (raises the recursion limit on import: before hypothesis runs)
from lab import ui
from lab.config import FIELDS, PER_HOST
from lab.entry import reported
from lab.inventory import hosts_of

KERNEL = b"\x7fELF" + bytes(60)
XL = "name = 'u'\nkernel = 'u.xen'\ntype = 'pvh'\nmemory = 32\n"
SETTINGS = settings(max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@contextlib.contextmanager
def lab_dir() -> Iterator[Path]:
    """A directory with a unikernel in it, and a home of its own (xenlab caches under it)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "home").mkdir()
        work = root / "work"
        work.mkdir()
        (work / "u.xen").write_bytes(KERNEL)
        (work / "u.xl").write_text(XL)
        yield work


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_mode, p.read_bytes() if p.is_file() and not
                                       p.is_symlink() else None, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def xenlab(work: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `xenlab ARGS` in WORK, run through the executable's entry."""
    home = work.parent / "home"
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    out, err = io.StringIO(), io.StringIO()
    os.environ.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                       "XDG_DATA_HOME": str(home / ".local/share"), "NO_COLOR": "1", **(env or {})})
    for name in [v for v in os.environ if v.startswith("XENLAB_") and v not in (env or {})]:
        del os.environ[name]
    os.chdir(work)
    sys.argv = ["xenlab", *args]
    ui.settings.json, ui.settings.verbose, ui.settings.depth = False, False, 0
    code: object = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            reported(_cli_run)
    except SystemExit as exc:
        code = exc.code
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return (code if isinstance(code, int) else 1), out.getvalue(), err.getvalue()


def _cli_run() -> None:
    from lab.cli import run

    run()


def refused_cleanly_or_accepted(work: Path, *args: str, accepted: tuple[int, ...] = (0,),
                                env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run it; assert the one clean way of refusing (or an accepted exit) and nothing touched.
    Returns (exit status, the error line)."""
    before = snapshot(work.parent)
    code, _, err = xenlab(work, *args, env=env)
    assert snapshot(work.parent) == before, f"{args}: the directory changed\n{err}"
    if code in accepted:
        return code, ""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code in (1, 2), f"{args}: exit {code}\n{err}"
    assert len(errors) == 1, f"{args}: not one error line\n{err}"
    assert "hint: " in err, f"{args}: no hint\n{err}"
    assert "xenlab's bug" not in err, f"{args}: reached the last resort\n{err}"
    return code, errors[0]


# --- settings ----------------------------------------------------------------------------------

def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) \
            else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return str(value)


HOSTILE_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=string.ascii_letters + string.digits + " \t\n\"'$`;|&<>()-./:~\\", max_size=20),
    st.sampled_from(["br 0", "..", "br:0", "-x", "a\nb", "$(reboot)", "\"", "eth0 ", "~nosuchuser/x",
                     "/dev/null", "0x10", "-1", "1e999", "999999999999999999999", "²", "\x00"]))
SCALAR = st.one_of(HOSTILE_TEXT, st.integers(), st.floats(), st.booleans())
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3))


@SETTINGS
@given(values=st.dictionaries(st.sampled_from(sorted(FIELDS)) | st.text(max_size=6), VALUE,
                              min_size=1, max_size=3),
       in_table=st.booleans())
def test_any_settings_file_is_accepted_or_refused_in_one_line(values: dict[str, object],
                                                              in_table: bool) -> None:
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in values.items()]
    with lab_dir() as work:
        (work / "xenlab.toml").write_text(("[lab]\n" if in_table else "") + "\n".join(lines) + "\n")
        code, error = refused_cleanly_or_accepted(work, "config")
        if code:
            assert "xenlab.toml" in error or "inventory" in error


@SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_as_a_settings_file_is_accepted_or_refused_in_one_line(text: str) -> None:
    with lab_dir() as work:
        (work / "xenlab.toml").write_bytes(text.encode("utf-8", "surrogateescape"))
        code, error = refused_cleanly_or_accepted(work, "config")
        if code:
            assert "xenlab.toml" in error


@SETTINGS
@given(name=st.sampled_from(sorted(FIELDS)), value=HOSTILE_TEXT)
def test_any_environment_setting_is_accepted_or_refused_in_one_line(name: str, value: str) -> None:
    with lab_dir() as work:
        variable = f"XENLAB_{name.upper()}"
        code, error = refused_cleanly_or_accepted(work, "config", env={variable: value.replace("\x00", "")})
        if code:
            assert variable in error


# --- inventories -------------------------------------------------------------------------------
# Ansible turns the file into JSON (`ansible-inventory --list`, run for real in test_hosts); what
# xenlab makes of that JSON is generated here, with every value type YAML can give a variable.

YAML_VALUE = st.recursive(SCALAR | st.none(), lambda inner: st.lists(inner, max_size=2)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=4)
HOST_VARS = st.dictionaries(
    st.sampled_from(["ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file",
                     *(f"xenlab_{s}" for s in sorted(PER_HOST)), "xenlab_provider", "xenlab_nonsense"]),
    YAML_VALUE, max_size=3)


@SETTINGS
@given(hosts=st.dictionaries(HOSTILE_TEXT | st.sampled_from(["alpha", "beta"]), HOST_VARS,
                             min_size=1, max_size=3))
def test_any_inventory_is_accepted_or_refused_in_one_line(hosts: dict[str, dict[str, object]]) -> None:
    listing = {"_meta": {"hostvars": hosts}, "all": {"children": ["ungrouped"]},
               "ungrouped": {"hosts": list(hosts)}}
    with lab_dir() as work:
        (work / "xenlab.toml").write_text('provider = "ssh"\ninventory = "hosts.yml"\n')
        (work / "hosts.yml").write_text("all: {}\n")
        # The JSON Ansible would have printed for the generated inventory, through the real reader.
        import lab.inventory

        real_read = lab.inventory.read
        lab.inventory.read = lambda path, named_by: hosts_of(listing, str(path))  # type: ignore[assignment]
        try:
            code, error = refused_cleanly_or_accepted(work, "config")
        finally:
            lab.inventory.read = real_read
        if code:
            assert "hosts.yml" in error or "hosts " in error


# --- state files -------------------------------------------------------------------------------

STATE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["provider", "provisioned", "provider_data", "ssh",
                                                        "domains", "host", "port", "user", "identity",
                                                        "u", "mac", "ip", "xl", "lab_xl"]), inner,
                                       max_size=4), max_leaves=10)


@SETTINGS
@given(state=STATE, verb=st.sampled_from([["list"], ["destroy", "u"], ["status"], ["deploy", "u.xl"],
                                          ["run", "u.xl"]]))
def test_any_state_file_is_read_or_refused_in_one_line_and_left_as_it_was(state: object,
                                                                           verb: list[str]) -> None:
    with lab_dir() as work:
        (work / ".xenlab").mkdir()
        (work / ".xenlab" / "state.json").write_text(json.dumps(state))
        # A well-formed one lets the verb go on: to a lab host that is not there (its own error),
        # or to say what it holds (status, list); the file must not change either way.
        refused_cleanly_or_accepted(work, *verb)


# --- option values -----------------------------------------------------------------------------

OPTION = st.sampled_from(["--probe", "--ip", "--timeout", "--static", "--sha256", "--arg", "--host",
                          "--arg-style", "--image", "--junit-xml", "--jobs", "--expect-status",
                          "--expect-ended", "--expect-console"])


@SETTINGS
@given(verb=st.sampled_from(["deploy", "run"]),
       options=st.lists(st.tuples(OPTION, HOSTILE_TEXT), min_size=1, max_size=3))
def test_any_option_value_is_refused_in_one_line_before_anything_is_built(
        verb: str, options: list[tuple[str, str]]) -> None:
    args = [part for option, value in options for part in (option, value.replace("\x00", ""))]
    with lab_dir() as work:
        (work / "data").mkdir()
        _, error = refused_cleanly_or_accepted(work, verb, "u.xl", *args, accepted=())
        assert error, "no lab here: every run ends in an error"


# --- expectation sidecars ---------------------------------------------------------------------

@SETTINGS
@given(values=st.dictionaries(st.sampled_from(["ended", "status", "console", "timeout"])
                              | st.text(max_size=6), VALUE, max_size=3),
       raw=st.none() | st.text(max_size=60))
def test_any_expectation_sidecar_is_read_or_refused_in_one_line(values: dict[str, object],
                                                                raw: str | None) -> None:
    text = raw if raw is not None else "\n".join(f"{json.dumps(k)} = {toml_value(v)}"
                                                 for k, v in values.items())
    with lab_dir() as work:
        (work / "u.expect").write_text(text + "\n")
        (work / "v.xl").write_text(XL.replace("'u'", "'v'"))
        for files in (["u.xl"], ["u.xl", "v.xl"]):  # one run, and a suite
            _, error = refused_cleanly_or_accepted(work, "run", *files, accepted=())
            assert "u.expect" in error or "no lab here yet" in error, error


# --- template texts ----------------------------------------------------------------------------

TEMPLATE_LINE = st.one_of(
    st.sampled_from(["name = '@NAME@'", "kernel = '@KERNEL@'", "memory = @MEMORY@", "type = 'pvh'",
                     "disk = [ 'format=raw, vdev=xvdb, access=rw, target=@BLOCK:data.img@' ]",
                     "vif = [ 'bridge=@NETWORK:service@' ]", "memory = '@MEMORY@'", "@NAME@",
                     "on_crash = 'preserve'", "name = \"@NAME\"", "extra = '@NOPE@'", "memory += 64",
                     "disk = [ '@BLOCK:@' ]", "vif = [ 'bridge=@NETWORK@' ]", "\ufeffname = 'x'"]),
    HOSTILE_TEXT.map(lambda s: s.replace("\n", " ")))


@SETTINGS
@given(lines=st.lists(TEMPLATE_LINE, max_size=8), mode=st.sampled_from(["--write", "--check", "--diff"]))
def test_any_template_is_filled_in_or_refused_in_one_line(lines: list[str], mode: str) -> None:
    with lab_dir() as work:
        (work / "u.xl").unlink()
        (work / "u.xl.in").write_text("\n".join(lines) + "\n")
        before = snapshot(work.parent)
        code, _, err = xenlab(work, "fix", mode, "u.xl.in")
        if mode == "--write" and code == 0:
            written = snapshot(work.parent)
            assert set(written) - set(before) <= {"work/u.xl"}, err
            return
        assert snapshot(work.parent) == before, err
        if code in (0, 1) and "error: " not in err:
            return  # --check found something to repair (1) or nothing (0); --diff showed it
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code in (1, 2) and len(errors) == 1 and "hint: " in err, err
        assert "u.xl.in" in errors[0] and "xenlab's bug" not in err, err


@pytest.mark.parametrize("lang", ["C.UTF-8", "C"])
@pytest.mark.parametrize("name", [b"caf\xe9.xl", b"\xff\xfe.xl", "caf\u00e9.xl".encode()])
def test_a_file_name_no_locale_can_show_is_named_escaped(tmp_path: Path, name: bytes, lang: str) -> None:
    """Bytes that are not UTF-8, or characters the locale lacks: the error still names the file."""
    from helpers import xenlab as xenlab_process

    (Path(os.fsdecode(bytes(tmp_path) + b"/" + name))).write_text("name = 'u'\nkernel = 'nosuch.xen'\n")
    r = xenlab_process("fix", "--check", os.fsdecode(name), cwd=tmp_path,
                       env={"LANG": lang, "LC_ALL": lang, "PYTHONIOENCODING": ""})
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
    assert "nosuch.xen" in r.stdout and ".xl:2:" in r.stdout, r.stdout


# --- files that are not files ------------------------------------------------------------------

SPECIAL = {"a directory": lambda p: p.mkdir(), "a FIFO": lambda p: os.mkfifo(p),
           "a device": lambda p: p.symlink_to("/dev/zero")}
PLACES = {"xenlab.toml": ["config"], ".xenlab/state.json": ["status"], "u.xl": ["fix", "u.xl"],
          "v.xl": ["deploy", "v.xl"]}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_special_file_where_a_file_is_read_is_refused_not_waited_on(tmp_path: Path, place: str,
                                                                      kind: str) -> None:
    """A FIFO would hold read() forever, /dev/zero would fill the memory: a real process, so that
    a hang is the timeout's failure, not the test run's."""
    from helpers import xenlab as xenlab_process

    (tmp_path / "u.xen").write_bytes(KERNEL)
    (tmp_path / ".xenlab").mkdir()
    if place != "u.xl":
        (tmp_path / "u.xl").write_text(XL)
    SPECIAL[kind](tmp_path / place)
    r = xenlab_process(*PLACES[place], cwd=tmp_path, timeout=30)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode in (1, 2) and len(errors) == 1 and "hint: " in r.stderr, r.stderr
    assert f"{place}: cannot read: not a regular file ({kind})" in errors[0], r.stderr
