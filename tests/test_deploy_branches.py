"""Deploy's branches against a fake lab host (tests/fake_lab_host.py: this machine's shell in a
temporary directory, with stand-ins for Xen, dnsmasq and the guests): over SSH or the shared
folder, DHCP, a reserved or a static address or no network, a running domain kept or replaced,
and a failure after the lab was touched leaving nothing behind. The QEMU tier proves the same on
real Xen; this tier proves the logic, in seconds."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from fake_lab_host import FakeLabHost, lab_directory

from lab import lab_host
from lab import share as lab_share
from lab.config import LabConfig
from lab.core import deploy as deploying
from lab.errors import LabError
from lab.lab import Lab
from lab.remote import sha256_file

KERNEL = b"\x7fELF" + bytes(4096)
PV = "name = '{name}'\ntype = 'pv'\nkernel = '{kernel}'\nmemory = 32\nvif = [ 'bridge=br0' ]\n"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeLabHost]:
    return lab_directory(tmp_path, monkeypatch)


def unikernel(work: Path, name: str = "u", kernel: str = "u.xen", text: str = PV) -> Path:
    (work / kernel).write_bytes(KERNEL + name.encode())
    xl = work / f"{name}.xl"
    xl.write_text(text.format(name=name, kernel=kernel))
    return xl


def deploy(work: Path, xl: Path, share: bool = False, **options: object) -> deploying.Deployed:
    lab = Lab("", LabConfig(share=share), work / ".xenlab")
    return deploying.deploy(deploying.Request(xl, timeout=5, **options), lab)  # type: ignore[arg-type]


def recorded(work: Path) -> dict[str, dict[str, object]]:
    return json.loads((work / ".xenlab" / "state.json").read_text())["domains"]


def test_dhcp_over_ssh(setup: tuple[Path, FakeLabHost]) -> None:
    work, host = setup
    out = deploy(work, unikernel(work))
    assert (out.via, out.address, out.ip) == ("ssh", "dhcp", "192.168.77.50")
    assert out.sent_bytes == len(KERNEL) + 1
    uploaded = Path(lab_host.DOMAINS_DIR) / "u" / "u.xen"
    assert sha256_file(uploaded) == sha256_file(work / "u.xen")
    lab_copy = (Path(lab_host.DOMAINS_DIR) / "u" / "u.xl").read_text()
    assert f"kernel = '{uploaded}'" in lab_copy and f"mac={out.mac}" in lab_copy
    assert "on_crash = 'preserve'" in lab_copy  # kept when it ends, to read how
    assert host.domains() == {"u": "running"}
    assert recorded(work)["u"]["ip"] == "192.168.77.50" and recorded(work)["u"]["address"] == "dhcp"


def test_a_running_domain_is_kept_unless_replaced_and_the_same_kernel_is_not_sent_again(
        setup: tuple[Path, FakeLabHost]) -> None:
    work, host = setup
    xl = unikernel(work)
    deploy(work, xl)
    with pytest.raises(LabError, match="already running"):
        deploy(work, xl)
    assert host.domains() == {"u": "running"} and host.xl_log().count("create") == 1
    again = deploy(work, xl, replace=True)
    assert again.sent_bytes == 0  # the same bytes are there already (sha256)
    assert host.xl_log().count("destroy u") == 1 and host.xl_log().count("create") == 2
    assert host.domains() == {"u": "running"}


def test_a_reserved_address_is_a_dnsmasq_reservation(setup: tuple[Path, FakeLabHost]) -> None:
    work, _ = setup
    out = deploy(work, unikernel(work), ip="192.168.77.99")
    assert out.ip == "192.168.77.99"
    assert (Path(lab_host.DHCP_HOSTS_DIR) / "u").read_text() == f"{out.mac},192.168.77.99\n"


def test_static_addresses_are_claimed_one_per_guest_and_given_as_boot_arguments(
        setup: tuple[Path, FakeLabHost]) -> None:
    work, _ = setup
    first = deploy(work, unikernel(work, "a", "a.xen"), static="", dialect="mirage4")
    second = deploy(work, unikernel(work, "b", "b.xen"), static="", dialect="mirage3")
    assert (first.ip, second.ip) == ("192.168.77.201", "192.168.77.202")
    assert first.address == "static" and "--ipv4=192.168.77.201/24" in first.boot_args
    assert "ipv4=192.168.77.202/24" in second.boot_args and "--ipv4" not in second.boot_args
    claims = {p.name: p.readlink().name for p in Path(lab_host.STATIC_DIR).iterdir()}
    assert claims == {"192.168.77.201": "a", "192.168.77.202": "b"}
    with pytest.raises(LabError, match="in use by the guest 'a'"):
        deploy(work, unikernel(work, "c", "c.xen"), static="192.168.77.201")


def test_no_network_is_no_vif_and_no_wait_for_an_address(setup: tuple[Path, FakeLabHost]) -> None:
    work, host = setup
    out = deploy(work, unikernel(work), network=False)
    assert (out.mac, out.ip, out.address) == (None, None, "none")
    assert "vif = [ ]" in (Path(lab_host.DOMAINS_DIR) / "u" / "u.xl").read_text()
    assert host.domains() == {"u": "running"} and Path(lab_host.DNSMASQ_LEASES).read_text() == ""


@pytest.mark.parametrize(("kernel", "error"), [
    ("crash.xen", "ended (crash)"),  # booted, then crashed before it had an address
    ("refused.xen", "xl create u failed"),  # Xen refused the file
])
@pytest.mark.parametrize("address", ["dhcp", "static"])
def test_a_failure_after_the_lab_was_touched_leaves_nothing_behind(
        setup: tuple[Path, FakeLabHost], kernel: str, error: str, address: str) -> None:
    work, host = setup
    with pytest.raises(LabError, match=re.escape(error)):
        deploy(work, unikernel(work, "u", kernel), static="" if address == "static" else None)
    assert host.domains() == {}
    assert not list(Path(lab_host.STATIC_DIR).glob("*")) if Path(lab_host.STATIC_DIR).exists() else True
    assert not (Path(lab_host.DHCP_HOSTS_DIR) / "u").exists()
    assert "domains" not in json.loads((work / ".xenlab" / "state.json").read_text()) or not recorded(work)


def test_a_failed_replace_forgets_the_guest_it_replaced(setup: tuple[Path, FakeLabHost]) -> None:
    work, host = setup
    deploy(work, unikernel(work))
    assert "u" in recorded(work)
    unikernel(work, "u", "crash.xen")
    with pytest.raises(LabError, match="u destroyed"):
        deploy(work, work / "u.xl", replace=True)
    assert host.domains() == {} and recorded(work) == {}


@pytest.mark.root
def test_through_the_shared_folder_nothing_is_sent(setup: tuple[Path, FakeLabHost]) -> None:
    """The lab host sees this lab's share/ at SHARE_MOUNT (a bind mount here, 9p on the QEMU
    lab): deploy copies the kernel there, sends nothing, and creates in one round trip."""
    work, host = setup
    local = lab_share.ensure(work / ".xenlab")
    mount = Path(lab_host.SHARE_MOUNT)
    mount.mkdir(parents=True)
    subprocess.run(["mount", "--bind", local, mount], check=True)
    try:
        out = deploy(work, unikernel(work), share=True)
        assert (out.via, out.sent_bytes, out.ip) == ("share", 0, "192.168.77.50")
        lab_copy = (Path(lab_host.DOMAINS_DIR) / "u" / "u.xl").read_text()
        assert f"kernel = '{mount}/domains/u/u.xen'" in lab_copy
        assert not (Path(lab_host.DOMAINS_DIR) / "u" / "u.xen").exists()
        assert sha256_file(local / "domains" / "u" / "u.xen") == sha256_file(work / "u.xen")
        assert host.domains() == {"u": "running"}
    finally:
        subprocess.run(["umount", mount], check=True)


def test_destroy_forgets_a_guest_that_is_gone_already(setup: tuple[Path, FakeLabHost]) -> None:
    """Destroyed behind xenlab's back (or the lab host rebooted): `destroy NAME` still frees its
    claim and forgets it, or every `check` after would fail; a name never deployed is an error."""
    from lab import domain

    work, host = setup
    lab = Lab("", LabConfig(share=False), work / ".xenlab")
    deploy(work, unikernel(work), static="")
    host.run(["xl", "destroy", "u"])  # behind xenlab's back
    domain.destroy(lab, "u")
    assert recorded(work) == {} and not list(Path(lab_host.STATIC_DIR).iterdir())
    assert not (Path(lab_host.DOMAINS_DIR) / "u").exists()
    with pytest.raises(LabError, match="no domain named 'u'"):
        domain.destroy(Lab("", LabConfig(share=False), work / ".xenlab"), "u")
