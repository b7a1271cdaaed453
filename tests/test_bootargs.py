"""Boot arguments and static addresses: what reaches the unikernel's command line, read back by
Xen's own parser (libxlutil) from the lab copy deploy writes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import bootargs
from lab.config import LabConfig
from lab.core.deploy import Prepared, Request, _lab_copy
from lab.errors import LabError
from lab.lab import Lab
from lab.xl import syntax

SAFE = st.text(st.sampled_from("abcXYZ019_.,:/=+@%^~-[]{}"), min_size=1, max_size=40)


@given(st.lists(SAFE, min_size=1, max_size=6), st.sampled_from(["", "console=hvc0 quiet"]))
@settings(max_examples=60, deadline=None)
def test_args_reach_the_command_line_as_given(xen, tmp_path_factory, args: list[str], extra: str) -> None:
    """Whatever --arg accepts, Xen reads back word for word from the lab copy's `extra`."""
    for a in args:
        assert bootargs.check_arg(a) == a
    text = "name = 'u'\nkernel = 'u.xen'\ntype = 'pvh'\n" + (f"extra = '{extra}'\n" if extra else "")
    doc, cmdline = _lab_copy(_prepared(text, args), "/var/lib/xenlab/domains/u", None, args)
    path = tmp_path_factory.mktemp("xl") / "u.xl"
    path.write_text(doc.text)
    res = xen.parse(str(path))
    assert res.rc == 0, res.error
    assert xen.get(res.cfg, "extra") == ("string", cmdline)
    assert cmdline.split() == extra.split() + args
    for key in ("on_poweroff", "on_reboot", "on_crash"):
        assert xen.get(res.cfg, key) == ("string", "preserve")
    assert xen.get(res.cfg, "vif") == ("list", [])  # no network: no vif at all


def test_cmdline_wins_over_extra(xen, tmp_path: Path) -> None:
    """xl ignores `extra` when `cmdline` is set: the arguments go where the guest will see them."""
    text = "name = 'u'\nkernel = 'u.xen'\ncmdline = '--a=1'\nextra = 'ignored'\n"
    doc, cmdline = _lab_copy(_prepared(text, ["--b=2"]), "/d", None, ["--b=2"])
    path = tmp_path / "u.xl"
    path.write_text(doc.text)
    res = xen.parse(str(path))
    assert xen.get(res.cfg, "cmdline") == ("string", "--a=1 --b=2") and cmdline == "--a=1 --b=2"
    assert xen.get(res.cfg, "extra") == ("string", "ignored")


@given(st.text(min_size=0, max_size=20).filter(
    lambda s: any(c in s for c in " '\"\\;`$\n\t\x00&|<>()!*?#") or s == ""))
@settings(max_examples=200, deadline=None)
def test_unsafe_args_are_refused(arg: str) -> None:
    with pytest.raises(LabError) as exc:
        bootargs.check_arg(arg)
    assert exc.value.code == 2 and "--arg" in exc.value.message and exc.value.hint


@pytest.mark.parametrize(("dialect", "expected"), [
    ("mirage4", ["--ipv4=192.168.77.201/24", "--ipv4-gateway=192.168.77.2"]),
    ("mirage3", ["ipv4=192.168.77.201/24", "ipv4-gateway=192.168.77.2"]),
])
def test_static_address_dialects(dialect: str, expected: list[str]) -> None:
    addr = bootargs.StaticAddress(ipaddress.IPv4Interface("192.168.77.201/24"), "192.168.77.2")
    assert addr.args(dialect) == expected
    # Either dialect's address is recognised when a file already carries it.
    assert bootargs.address_in(" ".join(["console=hvc0", *expected])) == addr.interface


def test_address_in_ignores_other_keys() -> None:
    assert bootargs.address_in("--ipv4-gateway=10.0.0.1 --ipv6=fe80::1 ipv4only=1") is None
    assert bootargs.address_in("ipv4=10.0.0.2") == ipaddress.IPv4Interface("10.0.0.2/24")


def test_dialect_from_the_binary(tmp_path: Path) -> None:
    """Mini-OS's banner marks a MirageOS <= 3.8 PV kernel (key=value); found across a chunk edge."""
    minios = tmp_path / "minios.xen"
    minios.write_bytes(b"\0" * ((1 << 20) - 5) + b"Xen Minimal OS!" + b"\0" * 100)
    other = tmp_path / "solo5.xen"
    other.write_bytes(b"\x7fELF" + b"Solo5: Xen console" + b"\0" * 4096)
    assert bootargs.detect_dialect(minios) == "mirage3"
    assert bootargs.detect_dialect(other) is None
    assert bootargs.detect_dialect(tmp_path / "missing") is None


def _prepared(text: str, args: list[str], config: LabConfig | None = None) -> Prepared:
    return Prepared(request=Request(Path("u.xl")), doc=syntax.parse(text, "u.xl"), name="u", local={},
                    sha256={}, boot_args=args, static=None, dialect="mirage4", network=False, probe=None,
                    lab=Lab("", config or LabConfig(), Path(".xenlab")), share_id="")


@pytest.mark.parametrize(("paging", "text", "expected"), [
    ("shadow", "type = 'pvh'\nmemory = 32\n", 8),  # Solo5's 32 MiB guests abort with libxl's default
    ("shadow", "type = 'hvm'\nmemory = 32\n", 8),
    ("shadow", "type = 'pvh'\nmemory = 32\nshadow_memory = 16\n", 16),  # the file's own wins
    ("shadow", "type = 'pv'\nmemory = 32\n", None),  # PV guests are not shadow-paged by Xen
    ("hap", "type = 'pvh'\nmemory = 32\n", None),  # HAP has no shadow pool to size
])
def test_shadow_paging_gets_a_pool_small_pvh_guests_boot_with(xen, tmp_path: Path, paging: str, text: str,
                                                              expected: int | None) -> None:
    text = "name = 'u'\nkernel = 'u.xen'\n" + text
    doc, _ = _lab_copy(_prepared(text, [], LabConfig(paging=paging)), "/d", None, [])
    path = tmp_path / "u.xl"
    path.write_text(doc.text)
    res = xen.parse(str(path))
    assert res.rc == 0, res.error
    if expected is None:
        assert xen.get(res.cfg, "shadow_memory") == ("missing", None)
    else:
        assert xen.get_long(res.cfg, "shadow_memory") == expected
