"""Settings that end up verbatim in files on the lab host (dnsmasq's configuration, the
ssh-config, a GRUB file the shell sources as root, `ip` command lines) are held to the form their
destination reads safely, and anything else is refused with one `error:` line naming the setting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import XENLAB, xenlab
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import config
from lab.config import FIELDS, LabConfig

# What would break out of where the value goes: a line (ssh-config, dnsmasq.conf), a
# double-quoted shell string (GRUB's defaults), or an argument (ip, sudo).
BREAKOUT = set("\n\r\"'\\$`;&|<>*?!()#") | {"\x00", "\t"}


@pytest.mark.parametrize(("setting", "value"), [
    ("lease_time", "12h\ndhcp-script=/tmp/x"), ("lease_time", "forever"), ("lease_time", "0"),
    ("ssh_host", "xen1\nProxyCommand sh"), ("ssh_host", "-oProxyCommand=x"), ("ssh_user", "ops\nHost *"),
    ("ssh_user", "o ps"), ("xen_cmdline_extra", 'dom0_mem=1G" ; reboot "'), ("dom0_cmdline_extra", "a $(id)"),
    ("xen_cmdline_extra", "a  b"), ("bridge", "br 0"), ("bridge", ".."), ("bridge", "br:0"),
    ("bridge", "br0123456789abcd"), ("uplink_interface", "eno2\n"), ("host_netns", "../x"),
    ("ssh_key", "k\nIdentityFile /etc/shadow"), ("box", "debian bookworm64"),
])
def test_a_value_out_of_its_form_is_refused_in_one_line(tmp_path: Path, setting: str, value: str) -> None:
    toml_value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    (tmp_path / "xenlab.toml").write_text(f'{setting} = "{toml_value}"\n')
    r = xenlab("config", cwd=tmp_path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert f"{setting} = " in errors[0] and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # error and hint, the value's newline escaped


FORMS = {name: f.metadata["form"] for name, f in FIELDS.items() if f.metadata["form"] is not None}


@given(st.sampled_from(sorted(FORMS)), st.text(min_size=1, max_size=40))
@settings(max_examples=600, deadline=None)
def test_whatever_a_form_accepts_cannot_break_out(setting: str, value: str) -> None:
    form = FORMS[setting]
    if not form.holds(value):
        return
    if form is config.PATH:  # a local path, never written into a file of the lab host's
        assert not any(ord(c) < 0x20 or c == "\x7f" for c in value)
        return
    assert not BREAKOUT & set(value), (setting, value)
    assert value.isascii() and value.isprintable()
    assert not value.startswith("-") or form is config.WORDS  # never read as an option


def test_the_defaults_and_common_values_hold() -> None:
    defaults = LabConfig()
    for name, form in FORMS.items():
        value = getattr(defaults, name)
        assert not value or form.holds(value), name
    for value in ("console=com1 com1=115200,8n1", "iommu=no-intremap dom0_max_vcpus=1-2", "loglvl=all/all"):
        assert config.WORDS.holds(value)
    for value in ("xen1.example", "192.168.1.10", "fe80::1", "eno2", "enp0s8"):
        assert config.HOST.holds(value)
    assert all(config.LEASE.holds(v) for v in ("12h", "45m", "1d", "infinite", "3600"))


@pytest.mark.parametrize(("text", "expected"), [
    ('lab = "x"\n', "lab must be a table of settings"),
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ('provider = "ssh"\ninventory = "~nosuchuser-xenlab/h.ini"\n', "inventory = '~nosuchuser-xenlab/h.ini'"),
])
def test_a_settings_file_of_the_wrong_shape_is_refused_in_one_line(tmp_path: Path, text: str,
                                                                   expected: str) -> None:
    (tmp_path / "xenlab.toml").write_text(text)
    r = xenlab("config", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and expected in lines[0], r.stderr
    assert lines[1].startswith("hint: ")


def _bytes_run(*args: object, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI's streams as bytes, read back forgivingly: what it wrote is the question here."""
    r = subprocess.run([*XENLAB, *map(str, args)], cwd=cwd, capture_output=True, timeout=120,
                       env={**os.environ, "NO_COLOR": "1", **env})
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "utf-8"])
def test_names_and_values_print_whatever_the_locale_can_show(tmp_path: Path, encoding: str) -> None:
    """Data on stdout and errors on stderr, with characters the output cannot encode and bytes
    that are not UTF-8: escaped, never a UnicodeEncodeError half-way through a line."""
    (tmp_path / "xenlab.toml").write_text('state_dir = ".xenlab-\u00e9\u4e2d"\n', encoding="utf-8")
    env = {"PYTHONIOENCODING": encoding}
    code, out, err = _bytes_run("config", cwd=tmp_path, env=env)
    assert code == 0 and "Traceback" not in err, err
    assert "state_dir" in out and ".xenlab-" in out
    missing = os.fsencode(tmp_path) + b"/caf\xff.xl"  # a byte no UTF-8 decoder takes
    code, out, err = _bytes_run("xl", "show", os.fsdecode(missing), cwd=tmp_path, env=env)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "no such file" in errors[0], err
    assert "Traceback" not in err
