"""deploy's and run's bad input is refused before anything touches a lab: here there is no lab at
all, so any of these reaching the lab would say "no lab here yet" instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import xenlab
from hypothesis import given, settings
from hypothesis import strategies as st

PV = "name = 'u'\nkernel = 'u.xen'\ntype = 'pv'\nmemory = 64\nvif = [ 'bridge=br0' ]\n"
PVH_NO_VIF = "name = 'u'\nkernel = 'u.xen'\ntype = 'pvh'\nmemory = 64\nvif = [  ]\n"


@pytest.mark.parametrize(("verb", "text", "args", "expected"), [
    ("deploy", PV, ["--arg", "it's"], "cannot hold"),
    ("run", PV, ["--arg", "a b"], "cannot hold ' '"),
    ("deploy", PV, ["--static", "192.168.77.20"], "outside the lab's static range"),
    ("deploy", PV, ["--static", "nonsense"], "not an IPv4 address"),
    ("deploy", PV, ["--ip", "192.168.77.9", "--static"], "--ip and --static both given"),
    ("deploy", PV, ["--sha256", "ab" * 32], "sha256 is"),
    ("deploy", PV, ["--ip", "192.168.77.0"], "not a free guest address"),  # the network's own
    ("deploy", PV, ["--ip", "192.168.77.255"], "not a free guest address"),  # its broadcast
    ("deploy", PV, ["--probe", "tcp:0"], "PORT from 1 to 65535"),
    ("deploy", PV, ["--probe", "tcp:65536"], "PORT from 1 to 65535"),
    ("deploy", PV, ["--probe", "tcp:\u00b2"], "PORT from 1 to 65535"),  # a digit to isdigit(), not to int()
    ("deploy", PV, ["--probe", "http://:99999/"], "PORT from 1 to 65535"),
    ("deploy", PV, ["--timeout", "-1"], "not a number of seconds above 0"),
    ("run", PV, ["--timeout", "nan"], "not a number of seconds above 0"),
    ("run", PV, ["--timeout", "inf"], "not a number of seconds above 0"),
    ("run", PV, ["--timeout", "0"], "not a number of seconds above 0"),
    ("run", PV, ["--sha256", "xyz"], "not a sha256"),
    ("deploy", PVH_NO_VIF, ["--probe", "tcp:80"], "a probe for a guest without network"),
    ("deploy", PV, ["--no-network", "--static"], "an address for a guest without network"),
    ("deploy", PV.replace("vif", "extra = '--ipv4=10.0.0.2/24'\nvif"), [], "outside the lab network"),
    ("deploy", PV.replace("vif", "extra = 'ipv4=192.168.77.210/24'\nvif"), ["--static", "192.168.77.220"],
     "already give 192.168.77.210/24"),
])
def test_refused_before_the_lab(tmp_path: Path, verb: str, text: str, args: list[str], expected: str) -> None:
    (tmp_path / "u.xen").write_bytes(b"\x7fELF kernel")
    (tmp_path / "u.xl").write_text(text)
    r = xenlab(verb, "u.xl", *args, cwd=tmp_path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert expected in errors[0] and "no lab here" not in r.stderr


def test_good_input_gets_as_far_as_the_missing_lab(tmp_path: Path) -> None:
    (tmp_path / "u.xen").write_bytes(b"\x7fELF kernel")
    (tmp_path / "u.xl").write_text(PV)
    r = xenlab("deploy", "u.xl", "--static", "--arg", "--hello=world", cwd=tmp_path)
    assert r.returncode == 1 and "no lab here yet" in r.stderr and "hint: `xenlab up`" in r.stderr


def test_no_image_is_built_for_a_lab_that_is_not_there(tmp_path: Path) -> None:
    """The file and its recipe are good; the block image would be work (and files) for nothing."""
    (tmp_path / "u.xen").write_bytes(b"\x7fELF kernel")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "hello.txt").write_text("hi\n")
    (tmp_path / "u.xl").write_text(PV.replace("vif", "disk = [ 'format=raw, vdev=xvdb, access=rw, "
                                              "target=fat1.img' ]\nvif"))
    r = xenlab("deploy", "u.xl", "--image", "fat1.img=data", cwd=tmp_path)
    assert r.returncode == 1 and "no lab here yet" in r.stderr, r.stderr
    assert not (tmp_path / ".xenlab" / "images").exists() and not (tmp_path / "fat1.img").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--sha256", "xyz"], "not a sha256"),
    (["--probe", "tcp:0"], "PORT from 1 to 65535"),
    (["--arg", "a;b"], "cannot hold"),
])
def test_with_several_hosts_options_are_refused_before_any_host_is_asked(tmp_path: Path, args: list[str],
                                                                         expected: str) -> None:
    """Placement reads every host: a bad option must not turn into "no host can take FILE"."""
    (tmp_path / "u.xen").write_bytes(b"\x7fELF kernel")
    (tmp_path / "u.xl").write_text(PV)
    (tmp_path / "xenlab.toml").write_text(
        'provider = "ssh"\nssh_user = "ops"\nssh_key = "k"\nuplink_interface = "eno2"\n'
        '[hosts.a]\nssh_host = "127.0.0.1"\nssh_port = 9\n'
        'dhcp_start = "192.168.77.3"\ndhcp_end = "192.168.77.100"\n'
        'static_start = "192.168.77.201"\nstatic_end = "192.168.77.225"\n'
        '[hosts.b]\nssh_host = "127.0.0.2"\nssh_port = 9\n'
        'dhcp_start = "192.168.77.101"\ndhcp_end = "192.168.77.200"\n'
        'static_start = "192.168.77.226"\nstatic_end = "192.168.77.254"\n')
    r = xenlab("deploy", "u.xl", *args, cwd=tmp_path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and expected in errors[0], r.stderr
    assert "no host can take" not in r.stderr and "Traceback" not in r.stderr
    # And a listing of hosts none of which has a lab is no success (as topology says).
    listed = xenlab("list", cwd=tmp_path)
    assert listed.returncode == 1 and "a: " in listed.stderr and "b: " in listed.stderr, listed.stderr


@given(st.one_of(st.text(max_size=20), st.builds(lambda p, n, rest: f"{p}{n}{rest}",
                                                  st.sampled_from(["tcp:", "http://:", "udp:", ""]),
                                                  st.integers(-5, 70000), st.text(max_size=6))))
@settings(max_examples=400, deadline=None)
def test_any_probe_text_is_a_probe_of_a_real_port_or_one_clean_refusal(text: str) -> None:
    from lab.errors import LabError
    from lab.probe import Probe

    try:
        probe = Probe.parse(text)
    except LabError as exc:
        assert exc.message.startswith("--probe ") and "\n" not in exc.message.replace(repr(text), "")
        return
    assert probe.kind in ("tcp", "http") and 1 <= probe.port <= 65535
    assert str(probe).startswith(f"{probe.kind}:{probe.port}")
