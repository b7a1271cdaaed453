"""provider = "ssh" without a host: its settings, the admission rules on recorded inspections, the
host-key vouching, and the verbs that must never touch a host (halt) or must say it is gone.
The real host runs in the slow tiers (tests/integration/test_provision.py, test_qemu_lab.py)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import xenlab

from lab import admission
from lab.config import LabConfig, load
from lab.errors import LabError
from lab.playbook import lab_vars
from lab.providers import ProviderFacts
from lab.releases import RELEASES
from lab.ssh import SshFiles, SshTarget, fingerprint, write_files
from lab.state import LabState

SSH = {"provider": "ssh", "ssh_host": "lab.example", "ssh_user": "ops", "ssh_key": "id_ed25519",
       "uplink_interface": "eno2"}


def toml(settings: dict[str, object]) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())


@pytest.mark.parametrize("missing", ["ssh_host", "ssh_user", "ssh_key", "uplink_interface"])
def test_provider_ssh_names_each_missing_setting(tmp_path: Path, missing: str) -> None:
    (tmp_path / "xenlab.toml").write_text(toml({k: v for k, v in SSH.items() if k != missing}))
    with pytest.raises(LabError, match=f"provider ssh needs {missing}") as err:
        load(cwd=tmp_path, env={})
    assert err.value.code == 2 and "xenlab.toml" in (err.value.hint or "")


@pytest.mark.parametrize("bad,match", [
    ({"uplink_interface": "br0"}, "other than the bridge"),
    ({"ssh_port": 70000}, "not a TCP port"),
])
def test_provider_ssh_bad_values(tmp_path: Path, bad: dict[str, object], match: str) -> None:
    (tmp_path / "xenlab.toml").write_text(toml({**SSH, **bad}))
    with pytest.raises(LabError, match=match):
        load(cwd=tmp_path, env={})


def test_the_users_cmdline_extras_follow_the_providers() -> None:
    config = LabConfig(xen_cmdline_extra="iommu=no-intremap", dom0_cmdline_extra="")
    v = lab_vars(config, ProviderFacts(xen_cmdline_extra="console=com1", dom0_cmdline_extra="quiet"))
    assert v["xen_hypervisor_cmdline_extra"] == "console=com1 iommu=no-intremap"
    assert v["xen_hypervisor_dom0_cmdline_extra"] == "quiet"
    # Unset, they change nothing: the provisioning fingerprint of existing labs stays the same.
    assert lab_vars(LabConfig(), ProviderFacts()) == lab_vars(LabConfig(), ProviderFacts())
    assert lab_vars(LabConfig(), ProviderFacts(xen_cmdline_extra="x"))["xen_hypervisor_cmdline_extra"] == "x"


# What the inspection script printed on hosts of each kind (its output format, recorded).
XEN_HOST = """os debian 12
sudo yes
hypervisor xen
virt xen
nic yes
nics br0 eno1 eno2 lo
via eno1
"""
BARE_HOST = XEN_HOST.replace("hypervisor xen", "hypervisor ").replace("virt xen", "virt cpu")
OLD_HOST = """os debian 11
sudo no
hypervisor
virt none
nic no
nics eno1 lo
via eno1
"""
CONFIG = LabConfig(**SSH)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", list(RELEASES))
def test_a_xen_host_of_each_supported_release_is_admitted(version: str) -> None:
    host = admission.Host.parse(XEN_HOST.replace("os debian 12", f"os debian {version}"))
    assert (host.os, host.sudo, host.xen, host.virt, host.nic, host.via) == (
        f"debian {version}", True, True, True, True, "eno1")
    assert admission.problems(host, CONFIG, allow_reboot=False) == []


@pytest.mark.parametrize("os_id", ["debian 11", "debian 14", "ubuntu 24.04", "debian", "unknown"])
def test_a_host_of_another_release_is_refused_naming_the_supported_ones(os_id: str) -> None:
    host = admission.Host.parse(XEN_HOST.replace("os debian 12", f"os {os_id}"))
    [(what, todo)] = admission.problems(host, CONFIG, allow_reboot=False)
    assert f"it runs {os_id}, not Debian 12 (bookworm) and Debian 13 (trixie)" in what
    assert "Debian 13 (trixie)" in todo


def test_every_shortcoming_is_named_with_what_to_do() -> None:
    found = admission.problems(admission.Host.parse(OLD_HOST), CONFIG, allow_reboot=False)
    whats = " | ".join(what for what, _ in found)
    for expected in ("not Debian 12 (bookworm) and Debian 13", "ops cannot sudo", "no CPU virtualisation",
                     "no NIC named eno2", "not running Xen"):
        assert expected in whats
    assert len(found) == 5 and all(todo for _, todo in found)
    assert "eno1" in whats  # the NICs it does have
    # PV only: virtualisation no longer matters.
    pv = admission.problems(admission.Host.parse(OLD_HOST), LabConfig(**{**SSH, "pvh": False}),  # type: ignore[arg-type]
                            allow_reboot=False)
    assert not any("virtualisation" in what for what, _ in pv)


def test_a_reboot_into_xen_needs_consent() -> None:
    bare = admission.Host.parse(BARE_HOST)
    assert [w for w, _ in admission.problems(bare, CONFIG, allow_reboot=False)] == [
        "it is not running Xen: becoming a lab host means installing Xen and rebooting into it"]
    assert admission.problems(bare, CONFIG, allow_reboot=True) == []
    assert admission.problems(bare, CONFIG, allow_reboot=False, reboot=False) == []


def test_bridging_the_nic_ssh_comes_through_is_refused() -> None:
    host = admission.Host.parse(XEN_HOST.replace("via eno1", "via eno2"))
    (what, todo), = admission.problems(host, CONFIG, allow_reboot=False)
    assert "cut the connection" in what and "uplink_interface" in todo


@pytest.fixture
def host_key(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")], check=True)
    return " ".join((tmp_path / "hk.pub").read_text().split()[:2])


def test_an_existing_hosts_key_is_pinned_only_when_vouched_for(tmp_path: Path, host_key: str) -> None:
    files = SshFiles.in_dir(tmp_path / "state")
    target = SshTarget("lab.example", 22, "ops", tmp_path / "id", host_key, vouched=True)
    seen = fingerprint(host_key)
    with pytest.raises(LabError) as err:
        write_files(target, files)
    assert seen in err.value.message and f"--trust-host-key {seen}" in (err.value.hint or "")
    assert "ssh_host_ed25519_key.pub" in (err.value.hint or "")
    with pytest.raises(LabError, match="as you vouched: nothing pinned"):
        write_files(target, files, trust=("SHA256:" + "A" * 43,))
    assert not files.known_hosts.exists() and not files.config.exists()
    write_files(target, files, trust=(seen,))
    assert files.known_hosts.read_text() == f"lab.example {host_key}\n"
    # A VM xenlab made is trusted on first use, as before.
    vm = SshFiles.in_dir(tmp_path / "vm")
    write_files(SshTarget("127.0.0.1", 2222, "vagrant", tmp_path / "id", host_key), vm)
    assert vm.known_hosts.exists()


def _project(tmp_path: Path, port: int) -> Path:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "xenlab.toml").write_text(toml({**SSH, "ssh_host": "127.0.0.1", "ssh_port": port,
                                                "ssh_key": str(key)}))
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns: nothing listens


def test_up_of_an_unreachable_host_is_one_line(tmp_path: Path) -> None:
    r = xenlab("up", cwd=_project(tmp_path, _closed_port()))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: cannot reach" in r.stderr and "127.0.0.1" in r.stderr
    assert not (tmp_path / ".xenlab" / "known_hosts").exists()


def test_a_public_key_given_as_ssh_key_is_refused(tmp_path: Path) -> None:
    d = _project(tmp_path, 22)
    config = (d / "xenlab.toml").read_text().replace("id_ed25519\"", "id_ed25519.pub\"")
    (d / "xenlab.toml").write_text(config)
    r = xenlab("up", cwd=d)
    assert r.returncode == 2 and "not a private key" in r.stderr and "hint:" in r.stderr


def test_halt_and_status_never_touch_an_existing_host(tmp_path: Path) -> None:
    d = _project(tmp_path, _closed_port())
    LabState(provider="ssh", ssh={"host": "127.0.0.1", "port": 9, "user": "ops", "identity": "k"}).save(
        d / ".xenlab")
    r = xenlab("halt", cwd=d)
    assert r.returncode == 0 and "never powers it off" in r.stderr, r.stderr
    status = json.loads(xenlab("status", "--json", cwd=d).stdout)
    assert status["state"] == "unreachable" and "127.0.0.1" in status["detail"], status


VIRT_CAPS = {  # `xl info`'s line as Xen 4.17 prints it with VT-x/AMD-V (the QEMU lab's) and without
    "hvm": "virt_caps              : pv hvm hvm_directio pv_directio hap shadow gnttab-v1",
    "none": "virt_caps              : pv pv_directio gnttab-v1",
}


@pytest.mark.parametrize("case", ["hvm", "none", "no xl"])
def test_xens_own_word_on_hvm(tmp_path: Path, case: str) -> None:
    """The one reading of Xen's virt_caps (checks.facts.xen_hvm; admission and check use it), run
    by dash and this machine's awk (mawk, as in dom0) over a stand-in `xl` printing the line."""
    from lab.checks.facts import xen_hvm

    xl = tmp_path / "xl"
    xl.write_text("#!/bin/sh\nexit 1\n" if case == "no xl" else
                  f"#!/bin/sh\necho 'host                   : xenlab'\necho '{VIRT_CAPS[case]}'\n")
    xl.chmod(0o755)
    out = subprocess.run(["/bin/sh", "-c", xen_hvm(str(xl))], capture_output=True, text=True).stdout
    assert out.strip() == ("" if case == "no xl" else case)
