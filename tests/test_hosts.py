"""Several existing hosts in one lab directory: `[hosts.NAME]` tables and Ansible inventories (read
by the real ansible-inventory), ranges that must not overlap, placement on recorded `xl info`
readings, and the verbs' --host. Real hosts: tests/integration/test_provision.py, test_qemu_lab.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from helpers import xenlab

from lab import hosts, placement
from lab.config import load
from lab.errors import LabError

BASE = 'provider = "ssh"\nssh_user = "ops"\nssh_key = "id_ed25519"\nuplink_interface = "eno2"\n'
ALPHA = ('[hosts.alpha]\nssh_host = "alpha.example"\n'
         'dhcp_start = "192.168.77.3"\ndhcp_end = "192.168.77.100"\n'
         'static_start = "192.168.77.201"\nstatic_end = "192.168.77.225"\n')
BETA = ('[hosts.beta]\nssh_host = "beta.example"\nssh_port = 2222\nuplink_interface = "enp3s0"\n'
        'dhcp_start = "192.168.77.101"\ndhcp_end = "192.168.77.200"\n'
        'static_start = "192.168.77.226"\nstatic_end = "192.168.77.254"\nlab_ip = "192.168.77.2"\n')


def write(d: Path, text: str) -> Path:
    (d / "xenlab.toml").write_text(text)
    return d


def test_each_host_has_the_directorys_settings_then_its_own(tmp_path: Path) -> None:
    r = load(cwd=write(tmp_path, BASE + ALPHA + BETA), env={})
    alpha, beta = r.hosts["alpha"], r.hosts["beta"]
    assert (alpha.ssh_host, alpha.ssh_port, alpha.ssh_user, alpha.uplink_interface) == (
        "alpha.example", 22, "ops", "eno2")
    assert (beta.ssh_host, beta.ssh_port, beta.uplink_interface, beta.dhcp_start) == (
        "beta.example", 2222, "enp3s0", "192.168.77.101")
    shown = json.loads(xenlab("config", "--json", cwd=tmp_path).stdout)["hosts"]
    assert shown["beta"]["ssh_port"] == 2222 and "ssh_port" not in shown["alpha"]
    assert "[hosts.beta] ssh_host = 'beta.example', ssh_port = 2222" in xenlab("config", cwd=tmp_path).stdout
    lab_hosts = hosts.all_of(r, tmp_path / ".xenlab")
    assert [(h.name, h.state_dir.relative_to(tmp_path)) for h in lab_hosts] == [
        ("alpha", Path(".xenlab/hosts/alpha")), ("beta", Path(".xenlab/hosts/beta"))]
    assert [h.name for h in hosts.chosen(r, tmp_path, "beta")] == ["beta"]
    with pytest.raises(LabError, match="--host gamma: no such host"):
        hosts.chosen(r, tmp_path, "gamma")
    with pytest.raises(LabError, match="2 hosts; say which"):
        hosts.one(r, tmp_path, None, "ssh")


@pytest.mark.parametrize("text,match", [
    (BASE + ALPHA + BETA.replace('"192.168.77.101"', '"192.168.77.90"'),
     "alpha's DHCP range 192.168.77.3-192.168.77.100 overlaps beta's DHCP range 192.168.77.90"),
    (BASE + ALPHA + BETA.replace('static_start = "192.168.77.226"', 'static_start = "192.168.77.220"'),
     "alpha's static range .* overlaps beta's static range"),
    (BASE + ALPHA + BETA.replace('"beta.example"\nssh_port = 2222', '"alpha.example"\nssh_port = 22'),
     "hosts alpha and beta are the same host"),
    (BASE + ALPHA + '[hosts.beta]\nvm_memory = 4096\n', "'vm_memory' is not a setting one host may"),
    (BASE.replace('"ssh"', '"qemu"') + ALPHA, "provider is 'qemu'"),
    (BASE + '[hosts."a b"]\nssh_host = "x"\n', "not a host name"),
    (BASE + ALPHA.replace('ssh_host = "alpha.example"', 'ssh_port = "many"'), "ssh_port must be int"),
    (BASE + "hosts = 3\n", "hosts must be tables"),
])
def test_bad_host_tables_are_refused_before_anything_runs(tmp_path: Path, text: str, match: str) -> None:
    write(tmp_path, text)
    with pytest.raises(LabError, match=match) as err:
        load(cwd=tmp_path, env={})
    assert err.value.code == 2
    r = xenlab("up", cwd=tmp_path)  # the CLI: one line, nothing created
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert not (tmp_path / ".xenlab").exists()


INVENTORY = """\
# Ansible's own format, as a team keeps it
[xen_servers]
alpha ansible_host=10.0.0.5 xenlab_dhcp_start=192.168.77.3 xenlab_dhcp_end=192.168.77.100
beta ansible_host=10.0.0.6 ansible_port=2222

[xen_servers:vars]
ansible_user=ops
xenlab_uplink_interface=eno2

[racks:children]
xen_servers
"""


def test_an_ansible_inventory_names_the_hosts(tmp_path: Path) -> None:
    (tmp_path / "lab-hosts.ini").write_text(INVENTORY)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "beta.yml").write_text(
        "xenlab_dhcp_start: 192.168.77.101\nxenlab_dhcp_end: 192.168.77.200\n"
        "xenlab_static_start: 192.168.77.226\nxenlab_static_end: 192.168.77.254\n"
        "xenlab_ssh_key: beta_key\n")
    write(tmp_path, 'provider = "ssh"\nssh_key = "id"\ninventory = "lab-hosts.ini"\n'
                    'static_start = "192.168.77.201"\nstatic_end = "192.168.77.225"\n')
    r = load(cwd=tmp_path, env={})
    assert sorted(r.hosts) == ["alpha", "beta"]
    alpha, beta = r.hosts["alpha"], r.hosts["beta"]
    assert (alpha.ssh_host, alpha.ssh_user, alpha.uplink_interface, alpha.dhcp_end, alpha.ssh_key) == (
        "10.0.0.5", "ops", "eno2", "192.168.77.100", "id")
    assert (beta.ssh_host, beta.ssh_port, beta.dhcp_start, beta.ssh_key) == (
        "10.0.0.6", 2222, "192.168.77.101", "beta_key")


def test_an_inventory_ansible_cannot_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("all:\n  hosts: [unclosed\n")
    write(tmp_path, BASE + 'inventory = "broken.yml"\n')
    r = xenlab("status", cwd=tmp_path)
    assert r.returncode == 2 and "Ansible cannot read it" in r.stderr and "Traceback" not in r.stderr
    write(tmp_path, BASE + 'inventory = "nosuch.ini"\n')
    assert "no such file" in xenlab("status", cwd=tmp_path).stderr


# `xl info` as Xen 4.17 prints it on the QEMU lab (trimmed), and what placement reads of it.
XL_INFO = """host                   : xenlab
release                : 6.1.0-27-amd64
xen_version            : 4.17.5-pre
total_memory           : 2047
free_memory            : {free}
sharing_freed_memory   : 0
virt_caps              : pv hvm hvm_directio pv_directio hap shadow
"""


def reading(free: int, bridge: bool = True) -> placement.Reading:
    out = "\n".join(line.split(":")[1].strip() for line in XL_INFO.format(free=free).splitlines()
                    if line.startswith("free_memory"))
    return placement.Reading.parse(out + ("\nbridge\n" if bridge else "\nno-bridge\n"))


def test_placement_takes_the_host_with_the_most_free_memory_that_fits() -> None:
    readings = {"alpha": reading(900), "beta": reading(1100), "gamma": reading(4000, bridge=False),
                "delta": placement.Reading(error="cannot SSH to the lab host: timed out")}
    name, unfit = placement.choose(readings, memory_mb=64)
    assert name == "beta"
    assert unfit == {"gamma": "its lab bridge is not up", "delta": "cannot SSH to the lab host: timed out"}
    assert placement.choose(readings, memory_mb=1000)[0] == "beta"
    name, unfit = placement.choose(readings, memory_mb=2000)
    assert name is None and unfit["beta"] == "1100 MiB free, the guest needs 2000 MiB"
    # Ties: the first named, so placement is repeatable.
    assert placement.choose({"a": reading(500), "b": reading(500)}, None)[0] == "a"
    assert placement.Reading.parse("") == placement.Reading(None, False)


def test_the_guests_memory_is_read_from_its_file(tmp_path: Path) -> None:
    xl = tmp_path / "g.xl"
    xl.write_text("name = 'g'\n  memory = 96\nkernel = 'g.xen'\n")
    assert placement.guest_memory(xl) == 96
    xl.write_text("name = 'g'\n")
    assert placement.guest_memory(xl) is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_verbs_over_hosts_that_are_not_there(tmp_path: Path) -> None:
    """Two hosts, neither up yet: every verb answers per host, none hangs or tracebacks."""
    (tmp_path / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    write(tmp_path, BASE.replace('"id_ed25519"', f'"{tmp_path / "id_ed25519"}"')
          + ALPHA.replace('"alpha.example"', f'"127.0.0.1"\nssh_port = {_closed_port()}')
          + BETA.replace('"beta.example"\nssh_port = 2222', f'"127.0.0.1"\nssh_port = {_closed_port()}'))
    status = json.loads(xenlab("status", "--json", cwd=tmp_path).stdout)
    assert {name: s["state"] for name, s in status["hosts"].items()} == {"alpha": "absent", "beta": "absent"}
    r = xenlab("up", "--json", cwd=tmp_path)
    assert r.returncode == 1 and "2 of 2 hosts not ready: alpha: cannot reach" in r.stderr, r.stderr
    assert set(json.loads(r.stdout)["hosts"]) == {"alpha", "beta"}
    r = xenlab("topology", "--json", cwd=tmp_path)
    assert r.returncode == 1 and "warning: alpha:" in r.stderr and "warning: beta:" in r.stderr, r.stderr
    assert json.loads(r.stdout) == {"hosts": {}} and "Traceback" not in r.stderr
    r = xenlab("list", cwd=tmp_path)
    assert r.returncode == 1 and "warning: alpha:" in r.stderr and r.stdout == ""  # as topology
    r = xenlab("ssh", cwd=tmp_path)
    assert r.returncode == 2 and "--host alpha | --host beta" in r.stderr
    r = xenlab("destroy", "nosuch", cwd=tmp_path)
    assert r.returncode == 1 and "no domain named 'nosuch' on any host" in r.stderr
    r = xenlab("up", "--host", "gamma", cwd=tmp_path)
    assert r.returncode == 2 and "hosts: alpha, beta" in r.stderr
