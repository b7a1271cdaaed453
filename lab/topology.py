"""The lab's network as a graph, read from the live lab: the user's side of the host-only network,
the lab NIC, the bridge with its ports, each guest's vif with its MAC and address, dnsmasq,
forwarding and NAT; with the problems that break it marked on the node they belong to (a NIC
that is not promiscuous, a vif off the bridge, a guest without an address, forwarding off).

Reading is one SSH round trip for the lab side and one `ip` call for the user's side; drawing is
lab/topology_render.py's. The graph is plain data: tests build it from recorded readings.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field

from lab import domain, lab_host
from lab.checks import facts
from lab.config import LabConfig
from lab.lab import Lab
from lab.remote import Remote
from lab.state import DomainRecord

# After the guests' listing ("$1" leases, "$2" static claims): the network as the lab host has it,
# for the graph and what it shows; what is wrong with it is the facts' to say (NETWORK_FACTS,
# after this in the same script, with the facts' variables: $dnsmasq_conf, $nat_table...).
_NETWORK = r"""
echo @@links; ip -j link show
echo @@addrs; ip -j -4 addr show
echo @@forward; cat /proc/sys/net/ipv4/ip_forward
echo @@nat; if nft list table ip "$nat_table" >/dev/null 2>&1; then echo loaded; else echo missing; fi
echo @@dhcp; sed -n 's/^dhcp-range=//p' "$dnsmasq_conf" 2>/dev/null
echo @@dnsmasq; if pgrep -x dnsmasq >/dev/null; then echo running; else echo stopped; fi
echo @@vifmacs; xenstore-ls -f /local/domain/0/backend/vif 2>/dev/null | grep '/mac = '
"""
# The facts (lab/checks/facts.py) whose lines mark the network's nodes, and which node each marks.
NETWORK_FACTS = {"bridge": "bridge", "promiscuous": "nic", "dnsmasq": "service:dnsmasq",
                 "forwarding": "service:forwarding", "nat": "service:forwarding"}


@dataclass
class Node:
    id: str
    kind: str  # user, nic, bridge, vif, guest, service
    label: str
    detail: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Edge:
    a: str
    b: str
    label: str = ""


@dataclass
class Topology:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def problems(self) -> list[str]:
        return [f"{n.label}: {p}" for n in self.nodes for p in n.problems]

    def summary(self) -> str:
        guests = [n for n in self.nodes if n.kind == "guest"]
        addressed = [n for n in guests if n.detail.get("ip")]
        problems = self.problems()
        return (f"{len(guests)} guest{'s' * (len(guests) != 1)}, {len(addressed)} with an address; "
                + (f"{len(problems)} problem{'s' * (len(problems) != 1)}: {'; '.join(problems)}"
                   if problems else "no problems"))

    def to_json(self) -> dict[str, object]:
        return {"nodes": [asdict(n) for n in self.nodes], "edges": [asdict(e) for e in self.edges],
                "problems": self.problems()}


@dataclass(frozen=True)
class UserSide:
    """The user's end of the host-only network, as this machine has it."""

    interface: str
    addresses: list[str]
    up: bool
    netns: str = ""


def read_lab(remote: Remote, config: LabConfig) -> str:
    script = facts.script([facts.BY_ID[f] for f in NETWORK_FACTS],
                          (*facts.values(config), lab_host.DNSMASQ_LEASES, lab_host.STATIC_DIR),
                          domain.LIST_SCRIPT + _NETWORK, "xenlab-topology", marked=True)
    return remote.run(script, sudo=True, what="reading the lab's network").out


def read_user_side(interface: str, netns: str) -> UserSide | None:
    ip = ["ip", "-n", netns] if netns else ["ip"]
    r = subprocess.run([*ip, "-j", "-4", "addr", "show", "dev", interface], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    link = json.loads(r.stdout)[0]
    return UserSide(interface, [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])],
                    "UP" in link.get("flags", []), netns)


def build(out: str, config: LabConfig, known: dict[str, DomainRecord], user: UserSide | None,
          uplink_mac: str = "") -> Topology:
    """The graph from the lab host's reading (read_lab's output) and the user's side."""
    section = domain.sections(out, "xl")
    links = json.loads("\n".join(section.get("links", [])) or "[]")
    addrs = {a["ifname"]: [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])]
             for a in json.loads("\n".join(section.get("addrs", [])) or "[]")}
    by_name = {link["ifname"]: link for link in links}
    topo = Topology()
    bridge_id = f"bridge:{config.bridge}"
    bridge = by_name.get(config.bridge)
    b = topo.add(Node(bridge_id, "bridge", config.bridge,
                      {"addresses": addrs.get(config.bridge, []), "up": bridge is not None and _up(bridge)}))
    if bridge is None:
        b.problems.append("no such bridge on the lab host")
    elif not _up(bridge):
        b.problems.append("down")
    ports = [link for link in links if link.get("master") == config.bridge]
    nics = [link for link in ports if not link["ifname"].startswith("vif")]
    if uplink_mac and not any(link.get("address", "").lower() == uplink_mac.lower() for link in nics):
        # The host-only NIC is known by its MAC: find it even when it is off the bridge.
        nics += [link for link in links if link.get("address", "").lower() == uplink_mac.lower()]
    for link in nics:
        nic = topo.add(Node(f"nic:{link['ifname']}", "nic", link["ifname"],
                            {"mac": link.get("address"), "promiscuous": "PROMISC" in link.get("flags", []),
                             "up": _up(link)}))
        if link.get("master") == config.bridge:
            topo.edges.append(Edge(nic.id, bridge_id, "port"))
        else:
            nic.problems.append(f"not a port of {config.bridge}")
    if user is not None:
        u = topo.add(Node(f"user:{user.interface}", "user", user.interface,
                          {"addresses": user.addresses, "netns": user.netns, "up": user.up}))
        if f"{config.host_ip}/{config.prefixlen}" not in user.addresses:
            u.problems.append(f"does not hold {config.host_ip}/{config.prefixlen}")
        for nic_node in (n for n in topo.nodes if n.kind == "nic"):
            topo.edges.append(Edge(u.id, nic_node.id, "host-only network"))
    _services(topo, section, bridge_id, config.nat)
    _guests(topo, section, config, known, by_name, bridge_id)
    _marked(topo, section, bridge_id)
    return topo


def _marked(topo: Topology, section: dict[str, list[str]], bridge_id: str) -> None:
    """Each line a network fact printed, on the node it is about: a NIC's on that NIC (its line
    starts with its name), the rest on the fact's node."""
    nodes = {n.id: n for n in topo.nodes}
    for fact, where in NETWORK_FACTS.items():
        for line in filter(str.strip, section.get(f"fact:{fact}", [])):
            node = nodes.get(f"nic:{line.split()[0]}") if where == "nic" else nodes.get(where)
            (node or nodes[bridge_id]).problems.append(line.strip())


def _up(link: dict[str, object]) -> bool:
    return "UP" in link.get("flags", [])  # type: ignore[operator]


def _services(topo: Topology, section: dict[str, list[str]], bridge_id: str, nat_wanted: bool) -> None:
    dhcp = (section.get("dhcp") or [""])[0]
    running = (section.get("dnsmasq") or [""])[0] == "running"
    d = topo.add(Node("service:dnsmasq", "service", "dnsmasq",
                      {"range": dhcp.split(",")[:2], "running": running}))
    topo.edges.append(Edge(d.id, bridge_id, "DHCP"))
    forwarding = (section.get("forward") or [""])[0] == "1"
    nat = (section.get("nat") or [""])[0] == "loaded"
    f = topo.add(Node("service:forwarding", "service", "forwarding",
                      {"ip_forward": forwarding, "nat": nat if nat_wanted else None}))
    topo.edges.append(Edge(bridge_id, f.id, "out"))


def _guests(topo: Topology, section: dict[str, list[str]], config: LabConfig,
            known: dict[str, DomainRecord], by_name: dict[str, dict[str, object]], bridge_id: str) -> None:
    macs: dict[tuple[int, int], str] = {}
    for line in section.get("vifmacs", []):
        # /local/domain/0/backend/vif/DOMID/DEVID/mac = "00:16:3e:..."
        path, _, value = line.partition(" = ")
        parts = path.strip().split("/")
        if len(parts) >= 3 and parts[-3].isdigit() and parts[-2].isdigit():
            macs[(int(parts[-3]), int(parts[-2]))] = value.strip().strip('"').lower()
    for row in domain.guests(section, known):
        g = topo.add(Node(f"guest:{row['name']}", "guest", str(row["name"]),
                          {"id": row["id"], "state": row["state"], "mac": row["mac"], "ip": row["ip"],
                           "address": row["address"]}))
        if row["state"] != "running":
            g.problems.append(f"ended ({row['state']})")
        vifs = sorted((devid, mac) for (domid, devid), mac in macs.items() if domid == row["id"])
        for devid, mac in vifs:
            name = f"vif{row['id']}.{devid}"
            link = by_name.get(name)
            master = link.get("master") if link else None
            v = topo.add(Node(f"vif:{name}", "vif", name, {"mac": mac, "master": master}))
            topo.edges.append(Edge(g.id, v.id))
            if link is None:
                v.problems.append("no such interface in dom0")
            elif link.get("master") == config.bridge:
                topo.edges.append(Edge(v.id, bridge_id, "port"))
            else:
                v.problems.append(f"not a port of {config.bridge}")
        if row["address"] != "none" and row["state"] == "running" and not row["ip"]:
            g.problems.append("no address: no lease for its MAC, no static claim")


def read(lab: Lab, remote: Remote | None = None) -> Topology:
    """The live lab's graph (the lab VM must be running); over remote when the caller has one
    open for more than this."""
    facts = lab.provider.facts()
    tap = facts.user_side_interface
    user = read_user_side(tap, lab.config.host_netns) if tap else None
    if remote is None:
        with Remote.open(lab) as own:
            out = read_lab(own, lab.config)
    else:
        out = read_lab(remote, lab.config)
    return build(out, lab.config, lab.state.domains, user, facts.uplink_mac)
