"""Drawing lab/topology.py's graph: a tree for the terminal, Graphviz's layout for SVG and PNG.
Problems are marked on the node they belong to, in red where there is colour."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lab import run

if TYPE_CHECKING:
    from rich.tree import Tree

    from lab.topology import Node, Topology

MARK = "✗"


def _describe(node: Node) -> str:
    d = node.detail
    if node.kind == "user":
        where = f" (netns {d['netns']})" if d.get("netns") else ""
        return f"{node.label} {' '.join(d['addresses']) or 'no address'}{where}"  # type: ignore[arg-type]
    if node.kind == "nic":
        return f"{node.label} {d.get('mac')}{' promiscuous' if d.get('promiscuous') else ''}"
    if node.kind == "bridge":
        return f"{node.label} {' '.join(d['addresses']) or 'no address'}"  # type: ignore[arg-type]
    if node.kind == "vif":
        return f"{node.label} {d.get('mac')}"
    if node.kind == "guest":  # its MAC is its vif's
        where = str(d.get("ip") or ("no address" if d.get("mac") else "no network"))
        return f"{node.label} {where} ({d.get('address')}, {d.get('state')})"
    if node.id == "service:dnsmasq":
        return f"dnsmasq {'-'.join(d['range']) or 'no range'}"  # type: ignore[arg-type]
    if node.id == "service:forwarding":
        nat = {True: ", NAT", False: ", no NAT", None: ""}[d.get("nat")]  # type: ignore[index]
        return f"forwarding {'on' if d.get('ip_forward') else 'off'}{nat}"
    return node.label


def _linked(topo: Topology, node_id: str, kind: str) -> list[Node]:
    ids = {e.b for e in topo.edges if e.a == node_id} | {e.a for e in topo.edges if e.b == node_id}
    return [n for n in topo.nodes if n.id in ids and n.kind == kind]


def tree(topo: Topology) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    def label(node: Node) -> str:
        marks = "".join(f" [red]{MARK} {escape(p)}[/red]" for p in node.problems)
        return escape(_describe(node)) + marks

    users = [n for n in topo.nodes if n.kind == "user"]
    root = Tree(f"your machine: {label(users[0])}" if users else "your machine: host-only network")
    bridges = [n for n in topo.nodes if n.kind == "bridge"]
    for nic in (n for n in topo.nodes if n.kind == "nic"):
        branch = root.add(f"lab NIC {label(nic)}")
        for bridge in _linked(topo, nic.id, "bridge"):
            _bridge_branch(topo, branch.add(f"bridge {label(bridge)}"), bridge, label)
    for bridge in bridges:
        if not any(_linked(topo, bridge.id, "nic")):  # a bridge with no way to the user's side
            _bridge_branch(topo, root.add(f"bridge {label(bridge)}"), bridge, label)
    loose = [v for v in topo.nodes if v.kind == "vif" and not _linked(topo, v.id, "bridge")]
    lost = [g for g in topo.nodes if g.kind == "guest"
            if all(v in loose for v in _linked(topo, g.id, "vif"))]
    if lost:
        off = root.add("[red]off the bridge[/red]" if loose else "without a network")
        for guest in lost:
            g = off.add(f"guest {label(guest)}")
            for vif in _linked(topo, guest.id, "vif"):
                g.add(f"{label(vif)}")
    return root


def _bridge_branch(topo: Topology, branch: Tree, bridge: Node, label: Callable[[Node], str]) -> None:
    for service in (n for n in topo.nodes if n.kind == "service"):
        branch.add(label(service))
    for vif in _linked(topo, bridge.id, "vif"):
        for guest in _linked(topo, vif.id, "guest"):
            branch.add(f"{label(vif)} ── guest {label(guest)}")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(topo: Topology, title: str = "xenlab") -> str:
    """The graph in Graphviz's language: the user's machine, the lab host and the guests as
    clusters; a problem makes its node red and names itself in the label."""
    def node_line(n: Node) -> str:
        text = _describe(n) + "".join(f"\n{MARK} {p}" for p in n.problems)
        colour = ', color="red", fontcolor="red", penwidth=2' if n.problems else ""
        shape = {"guest": "component", "service": "ellipse", "bridge": "box3d"}.get(n.kind, "box")
        return f"    {_quote(n.id)} [label={_quote(text)}, shape={shape}{colour}];"

    groups = {"your machine": ["user"], "lab host (Xen dom0)": ["nic", "bridge", "vif", "service"],
              "guests": ["guest"]}
    lines = [f"graph {_quote(title)} {{", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9];']
    for i, (name, kinds) in enumerate(groups.items()):
        members = [n for n in topo.nodes if n.kind in kinds]
        if members:
            lines += [f"  subgraph cluster_{i} {{", f"    label={_quote(name)};",
                      *map(node_line, members), "  }"]
    for e in topo.edges:
        label = f" [label={_quote(e.label)}]" if e.label else ""
        lines.append(f"  {_quote(e.a)} -- {_quote(e.b)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_image(topo: Topology, path: Path, fmt: str) -> None:
    """SVG or PNG, laid out by Graphviz's dot."""
    run.run(["dot", f"-T{fmt}", "-o", str(path)], input=dot(topo), what=f"dot -T{fmt}",
            hint="apt-get install graphviz (./install.sh installs it)")
