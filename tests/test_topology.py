"""`xenlab topology` offline: the graph and its drawings from readings recorded on a real QEMU lab
(tests/fixtures/topology/, each file says where it came from), and from those readings changed the
way real faults change them. The live lab is read in the QEMU tier."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.config import LabConfig
from lab.state import DomainRecord
from lab.topology import Topology, UserSide, build
from lab.topology_render import dot, tree, write_image

FIXTURES = Path(__file__).parent / "fixtures" / "topology"
UPLINK = "52:54:00:77:00:02"


def recorded() -> tuple[str, dict[str, DomainRecord], UserSide]:
    reading = (FIXTURES / "two_guests.txt").read_text()
    reading = reading.split("\n", 1)[1]  # the first line says where it was recorded
    side = json.loads((FIXTURES / "two_guests.json").read_text())
    known = {name: DomainRecord(**record) for name, record in side["domains"].items()}
    return reading, known, UserSide(**side["user"])


def graph(reading: str | None = None, user: UserSide | None = None) -> Topology:
    text, known, side = recorded()
    return build(text if reading is None else reading, LabConfig(), known, user or side, UPLINK)


def rendered(topo: Topology) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, no_color=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(tree(topo))
    return console.export_text()


def test_the_recorded_lab_is_drawn_whole_and_without_problems() -> None:
    topo = graph()
    nodes = {n.id: n for n in topo.nodes}
    edges = {(e.a, e.b) for e in topo.edges}
    assert topo.problems() == []
    assert ("user:xltap12345", "nic:eth1") in edges and ("nic:eth1", "bridge:br0") in edges
    guests = [n for n in topo.nodes if n.kind == "guest"]
    assert len(guests) == 2
    for g in guests:
        vifs = [b for a, b in edges if a == g.id]
        assert len(vifs) == 1 and (vifs[0], "bridge:br0") in edges
        assert nodes[vifs[0]].detail["mac"] == g.detail["mac"] and g.detail["ip"]
    text = rendered(topo)
    assert max(map(len, text.splitlines())) <= 100
    for g in guests:
        assert g.label in text and str(g.detail["ip"]) in text
    assert "no problems" in topo.summary() and "2 guests, 2 with an address" in topo.summary()


def test_a_fault_marks_exactly_its_node() -> None:
    text, _, _ = recorded()
    links_start = text.index("@@links\n") + len("@@links\n")
    links = json.loads(text[links_start:text.index("\n@@addrs")])
    next(link for link in links if link["ifname"] == "eth1")["flags"].remove("PROMISC")
    vif = next(link for link in links if link["ifname"].startswith("vif"))
    vif_off = vif["ifname"]
    del vif["master"]  # as `ip link set vifN.0 nomaster` leaves it
    faulty = text[:links_start] + json.dumps(links) + text[text.index("\n@@addrs"):]
    faulty = faulty.replace("@@forward\n1\n", "@@forward\n0\n")
    # What the facts print for those faults, in their sections.
    faulty = faulty.replace("@@fact:promiscuous\n", "@@fact:promiscuous\neth1 is not promiscuous\n")
    faulty = faulty.replace("@@fact:forwarding\n", "@@fact:forwarding\nIP forwarding is off\n")
    topo = graph(faulty)
    marked = {n.id: n.problems for n in topo.nodes if n.problems}
    assert set(marked) == {"nic:eth1", f"vif:{vif_off}", "service:forwarding"}, marked
    assert "not promiscuous" in marked["nic:eth1"][0]
    assert "not a port of br0" in marked[f"vif:{vif_off}"][0]
    text_out = rendered(topo)
    assert "✗ eth1 is not promiscuous" in text_out and "off the bridge" in text_out
    assert "3 problems" in topo.summary()


def test_a_lab_with_no_guests_and_no_user_side() -> None:
    text, _, _ = recorded()
    xl_end = text.index("@@uptime")
    header = text[:xl_end].splitlines()[:2]  # xl's header and Domain-0
    no_guests = "\n".join(header) + "\n" + text[xl_end:]
    topo = build(no_guests, LabConfig(), {}, None, UPLINK)
    assert [n.kind for n in topo.nodes if n.kind in ("guest", "vif", "user")] == []
    assert topo.problems() == [] and "0 guests" in topo.summary()
    assert "host-only network" in rendered(topo)


@pytest.mark.skipif(not shutil.which("dot"), reason="./install.sh installs graphviz")
def test_graphviz_draws_it_with_the_marks(tmp_path: Path) -> None:
    text, _, _ = recorded()
    topo = graph(text.replace("@@fact:promiscuous\n", "@@fact:promiscuous\neth1 is not promiscuous\n"))
    source = dot(topo)
    subprocess.run(["dot", "-Tcanon"], input=source, text=True, check=True, capture_output=True)
    svg, png = tmp_path / "lab.svg", tmp_path / "lab.png"
    write_image(topo, svg, "svg")
    write_image(topo, png, "png")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    drawn = ET.tostring(root, encoding="unicode")
    for g in (n for n in topo.nodes if n.kind == "guest"):
        assert g.label in drawn and str(g.detail["ip"]) in drawn
    assert "✗ eth1 is not promiscuous" in drawn and 'stroke="red"' in drawn
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_reading_runs_in_one_script_and_each_fact_marks_its_node(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """read_lab's script, composed as the lab host gets it, run by this machine's shell (the fake
    lab host: no Xen, no lab bridge): every section arrives, and what the network facts print
    about this machine lands on the node it is about."""
    from fake_lab_host import FakeLabHost

    from lab import domain
    from lab.topology import NETWORK_FACTS, read_lab

    config = LabConfig(bridge="xltestbr9")  # a bridge this machine does not have
    out = read_lab(FakeLabHost(tmp_path, monkeypatch), config)  # type: ignore[arg-type]
    section = domain.sections(out, "xl")
    assert {"links", "addrs", "forward", "dhcp", *(f"fact:{f}" for f in NETWORK_FACTS)} <= set(section)
    topo = build(out, config, {}, None)
    bridge = next(n for n in topo.nodes if n.id == "bridge:xltestbr9")
    assert "no such bridge on the lab host" in bridge.problems
    assert "xltestbr9 does not hold 192.168.77.2/24" in bridge.problems  # the bridge fact's line
