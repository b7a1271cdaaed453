"""A state file of the wrong shape (.xenlab/state.json edited by hand, truncated, another tool's)
is one `error:` naming the file and what to do, for every verb that reads it; never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import xenlab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.state import LabState

GOOD = {"provider": "qemu", "provisioned": True, "provider_data": {},
        "ssh": {"host": "127.0.0.1", "port": 2222, "user": "xenlab", "identity": "/k"},
        "domains": {"u": {"mac": "00:16:3e:00:00:01", "ip": None, "address": "dhcp", "xl": "u.xl",
                          "lab_xl": "/l/u.xl", "probe": None, "boot_args": "", "sha256": {}}}}


def bad(**change: object) -> bytes:
    return json.dumps({**GOOD, **change}).encode()


CASES = {
    "ssh is a list": bad(ssh=["127.0.0.1", 22]),
    "ssh port is text": bad(ssh={**GOOD["ssh"], "port": "x"}),  # type: ignore[dict-item]
    "ssh port is true": bad(ssh={**GOOD["ssh"], "port": True}),  # type: ignore[dict-item]
    "ssh without a host": bad(ssh={"port": 22, "user": "u", "identity": "/k"}),
    "domains is a list": bad(domains=["u"]),
    "a domain is text": bad(domains={"u": "running"}),
    "a domain's mac is a number": bad(domains={"u": {"mac": 7}}),
    "provisioned is text": bad(provisioned="yes"),
    "the file is a list": b"[1, 2]",
    "nested too deeply": b"[" * 100000 + b"]" * 100000,
    "not UTF-8": b'{"provider": "\xff"}',
    "truncated": bad()[:40],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("verb", [["list"], ["destroy", "u"], ["deploy", "u.xl"], ["run", "u.xl"],
                                  ["status"]])
def test_every_verb_refuses_a_malformed_state_file_in_one_line(tmp_path: Path, case: str,
                                                               verb: list[str]) -> None:
    (tmp_path / ".xenlab").mkdir()
    (tmp_path / ".xenlab" / "state.json").write_bytes(CASES[case])
    (tmp_path / "u.xen").write_bytes(b"\x7fELF")
    (tmp_path / "u.xl").write_text("name = 'u'\nkernel = 'u.xen'\ntype = 'pvh'\nmemory = 32\n")
    r = xenlab(*verb, cwd=tmp_path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(errors) == 1 and "state.json: not a state file xenlab can read" in errors[0], r.stderr[-2000:]
    assert "hint: move it aside" in r.stderr


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=3), max_leaves=8)


@given(st.sampled_from(["provider", "ssh", "provider_data", "provisioned", "domains"]), JSON)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_field_of_any_shape_loads_or_is_refused_cleanly(tmp_path: Path, field: str,
                                                            value: object) -> None:
    """Whatever the file holds, loading it ends in a LabState whose fields have their types, or
    in one LabError: never in another exception, here or in the verbs that use it."""
    d = tmp_path / "s"
    d.mkdir(exist_ok=True)
    (d / "state.json").write_text(json.dumps({**GOOD, field: value}))
    try:
        state = LabState.load(d)
    except LabError as exc:
        assert "not a state file xenlab can read" in exc.message
        return
    assert isinstance(state.provider, str) and isinstance(state.provisioned, bool)
    assert isinstance(state.ssh, dict) and isinstance(state.domains, dict)
    if state.ssh:
        assert isinstance(state.ssh["host"], str) and type(state.ssh["port"]) is int
    assert all(isinstance(r.address, str) for r in state.domains.values())
