"""`xenlab deploy FILE.xl`: from MirageOS's generated .xl file to a guest answering on the lab network.

Phases: fix (lint + repair), images (build what is missing), upload (sha256-skipped, temp name +
rename), create (`xl create` of a lab copy of the file), lease (the guest's MAC in dnsmasq's
leases), probe (optional: the guest answers on a port).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab import ui
from lab.artifacts import Recipe, locate, mirage_recipes
from lab.config import LabConfig
from lab.errors import LabError, bad_input, die
from lab.fix import fix_file
from lab.image import build_image
from lab.remote import Remote
from lab.state import LabState
from lab.xl.disk import parse_disk
from lab.xl.model import Domain, VifSpec
from lab.xl.syntax import XlFile, quote

DOMAINS_DIR = "/var/lib/xenlab/domains"
LEASES = "/var/lib/misc/dnsmasq.leases"
HOSTS_DIR = "/etc/xenlab/dhcp-hosts"  # lab_dhcp_hostsdir
CONSOLE_LOGS = "/var/log/xen/console"  # xen_hypervisor_console_log_dir

# Probe from the lab host: it is on the lab bridge whatever the user's side looks like.
_PROBE = """
import socket, sys, urllib.request
kind, ip, port, path = sys.argv[1:5]
try:
    if kind == "tcp":
        socket.create_connection((ip, int(port)), timeout=3).close()
        print("open")
    else:
        try:
            r = urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=3)
            print(r.status)
        except urllib.error.HTTPError as e:
            print(e.code)
except OSError as e:
    print("down", e)
    sys.exit(1)
"""


def console_log(name: str) -> str:
    """Where xenconsoled keeps the lab host's log of domain name's console."""
    return f"{CONSOLE_LOGS}/guest-{name}.log"


def guest_mac(name: str) -> str:
    """A stable MAC for a domain name, in Xen's 00:16:3e range (lower half of the fourth byte)."""
    d = hashlib.sha256(name.encode()).digest()
    return f"00:16:3e:{d[0] & 0x7F:02x}:{d[1]:02x}:{d[2]:02x}"


@dataclass(frozen=True)
class Probe:
    kind: str  # tcp or http
    port: int
    path: str = "/"

    @classmethod
    def parse(cls, text: str) -> Probe:
        if text.startswith("tcp:") and text[4:].isdigit():
            return cls("tcp", int(text[4:]))
        if text.startswith("http://:"):
            rest = text[len("http://:"):]
            port, _, path = rest.partition("/")
            if port.isdigit():
                return cls("http", int(port), "/" + path)
        bad_input(f"--probe {text!r}: expected tcp:PORT or http://:PORT/path")


@dataclass
class Deployed:
    name: str
    mac: str
    ip: str | None
    sent_bytes: int
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "mac": self.mac, "ip": self.ip, "sent_bytes": self.sent_bytes,
                "phases_s": {k: round(v, 2) for k, v in self.phases.items()}}


def deploy(xl: Path, config: LabConfig, state_dir: Path, images: tuple[str, ...] = (),
           strict: bool = False, replace: bool = False, probe: str | None = None,
           lease_timeout: float = 180, ip: str | None = None) -> Deployed:
    phases: dict[str, float] = {}
    xl_dir = xl.resolve().parent
    given = [Recipe.parse(s, Path.cwd()) for s in images]
    recipes = {**mirage_recipes(xl_dir), **{r.image: r for r in given}}
    the_probe = Probe.parse(probe) if probe else None
    if ip is not None:
        import ipaddress

        try:
            fixed = ipaddress.IPv4Address(ip)
        except ValueError:
            bad_input(f"--ip {ip!r}: not an IPv4 address")
        if fixed not in config.network() or str(fixed) in (config.host_ip, config.lab_ip):
            bad_input(f"--ip {ip}: not a free guest address in {config.subnet}")

    with ui.step("fix", phases, "fix"):
        report = fix_file(xl, config, recipes)
        for f in report.findings:
            ui.info(f.render())
        if report.unrepaired:
            die(report.unrepaired[0].render(), hint="fix it by hand, or build the unikernel first")
        if strict and report.findings:
            die(f"{xl}: {len(report.findings)} problem(s) found and --strict given",
                hint=f"`xenlab fix {xl} --write` applies the repairs")
    dom = Domain(report.fixed)
    name = dom.name
    assert name is not None  # XL001 guarantees a valid name

    with ui.step("images", phases, "images"):
        local: dict[str, Path] = {}  # remote file name -> local path
        for key in ("kernel", "ramdisk"):
            written = report.fixed.string(key)
            if written:
                found = locate(written, xl_dir)
                if found is None:
                    die(f"{xl}: {key} {written!r} not found", hint="build the unikernel first")
                local[found.name] = found
        for disk in dom.disks():
            if not disk.target:
                continue
            found = locate(disk.target, xl_dir)
            if found is None:
                recipe = recipes[Path(disk.target).name]
                out = state_dir / "images" / name / recipe.image
                out.parent.mkdir(parents=True, exist_ok=True)
                build_image(recipe.kind, recipe.data_dir, out)
                ui.info(f"built {recipe.kind} image {recipe.image} from {recipe.data_dir}")
                found = out
            local[found.name] = found

    remote = Remote.open(state_dir)
    try:
        return _on_lab(remote, report.fixed, dom, name, local, config, replace, the_probe,
                       lease_timeout, phases, state_dir, xl, ip)
    finally:
        remote.close()


def _on_lab(remote: Remote, doc: XlFile, dom: Domain, name: str, local: dict[str, Path],
            config: LabConfig, replace: bool, probe: Probe | None, lease_timeout: float,
            phases: dict[str, float], state_dir: Path, xl: Path, ip: str | None) -> Deployed:
    if remote.run(["xl", "domid", name], sudo=True, check=False).rc == 0:
        if not replace:
            die(f"a domain named {name!r} is already running on the lab",
                hint="`--replace` to replace it, or `xenlab destroy NAME`")
        remote.run(["xl", "destroy", name], sudo=True, what="xl destroy", idempotent=False)

    directory = f"{DOMAINS_DIR}/{name}"
    user = remote.run(["id", "-un"]).out.strip()
    remote.run(["install", "-d", "-m", "0755", "-o", user, directory], sudo=True, what="mkdir")
    # What an interrupted deploy left half-sent; never trusted, only in the way.
    remote.run(["find", directory, "-maxdepth", "1", "-name", "*.partial-*", "-delete"],
               what="removing partial uploads")
    sent = 0
    with ui.step("upload", phases, "upload"):
        for fname, path in local.items():
            size = path.stat().st_size
            start = time.monotonic()
            with ui.transfer(fname, size) as progress:
                done = remote.put(path, f"{directory}/{fname}", progress)
            sent += done
            took = time.monotonic() - start
            ui.info(f"{fname}: sent {size} bytes in {took:.1f} s ({size / max(took, 1e-3) / 1e6:.1f} MB/s)"
                    if done else f"{fname}: unchanged, not sent")

    mac = guest_mac(name)
    lab_doc = doc
    for key in ("kernel", "ramdisk"):
        written = doc.string(key)
        if written:
            lab_doc = lab_doc.set(key, quote(f"{directory}/{Path(written).name}"))
    disks = [parse_disk(s) for s in doc.strings("disk") or []]
    lab_doc = lab_doc.set_list("disk", [
        d.with_target(f"{directory}/{Path(d.target).name}").render() if d.target else d.spec
        for d in disks])
    vifs = dom.vifs() or [VifSpec.parse(f"bridge={config.bridge}")]
    first = vifs[0].with_("bridge", config.bridge).with_("mac", mac)
    lab_doc = lab_doc.set_list("vif", [first.spec] + [v.spec for v in vifs[1:]])
    lab_xl = f"{directory}/{name}.xl"
    remote.write_text(lab_xl, lab_doc.text)
    # A fixed address is a dnsmasq reservation in its hosts directory, which dnsmasq rereads
    # without a restart; without --ip any earlier reservation for this name goes.
    reservation = f"{HOSTS_DIR}/{name}"
    if ip is not None:
        remote.write_text(f"{directory}/dhcp-host", f"{mac},{ip}\n")
        remote.run(["install", "-m", "0644", f"{directory}/dhcp-host", reservation], sudo=True,
                   what="dnsmasq reservation")
    else:
        remote.run(["rm", "-f", reservation], sudo=True, check=False)

    # A lease left from an earlier run of this domain must not pass for the new guest's: wait for
    # one that was (re)issued after the create (dnsmasq's first field is the expiry time).
    before = _lease(remote, mac)
    try:
        with ui.step("create", phases, "create"):
            r = remote.run(["xl", "create", lab_xl], sudo=True, check=False, timeout=300,
                           idempotent=False)
            if r.rc != 0:
                reason = " / ".join(line for line in (r.err or r.out).strip().splitlines()[-4:])
                die(f"xl create {name} failed: {reason}", hint=f"the lab copy is {lab_xl}")
        ip = _wait_until_up(remote, name, mac, before, config, probe, lease_timeout, phases)
    except BaseException as exc:
        # Whatever stopped it (xl's own error, a timeout, Ctrl-C, a lost connection), no domain is
        # left half-deployed: the diagnosis in the error is what remains.
        with contextlib.suppress(Exception):
            remote.run(["xl", "destroy", name], sudo=True, check=False, idempotent=False)
        state = LabState.load(state_dir)  # a --replace'd guest of that name is gone as well
        if state.domains.pop(name, None) is not None:
            state.save(state_dir)
        if isinstance(exc, LabError):
            raise LabError(f"{exc.message}; {name} destroyed", hint=exc.hint, code=exc.code) from None
        raise

    state = LabState.load(state_dir)
    state.domains[name] = {"mac": mac, "ip": ip, "xl": str(xl.resolve()), "lab_xl": lab_xl,
                           "probe": f"{probe.kind}:{probe.port}{probe.path}" if probe else None}
    state.save(state_dir)
    ui.info(f"{name}  {mac}  {ip}")
    return Deployed(name, mac, ip, sent, phases)


def _wait_until_up(remote: Remote, name: str, mac: str, before: tuple[int, str] | None,
                   config: LabConfig, probe: Probe | None, lease_timeout: float,
                   phases: dict[str, float]) -> str:
    """The guest's leased address, once it answers the probe (when one is given)."""
    ip = None
    with ui.step(f"lease for {mac}", phases, "lease"), \
            ui.live_status(f"waiting for dnsmasq to lease {mac} (up to {lease_timeout:.0f} s)"):
        deadline = time.monotonic() + lease_timeout
        while ip is None and time.monotonic() < deadline:
            lease = _lease(remote, mac)
            if lease is not None and (before is None or lease[0] > before[0]):
                ip = lease[1]
            else:
                time.sleep(1)
        if ip is None:
            die(f"{name} got no DHCP lease within {lease_timeout:.0f} s",
                hint=_diagnose(remote, name, mac, config))

    if probe is not None:
        with ui.step(f"probe {probe.kind}:{probe.port}", phases, "probe"), \
                ui.live_status(f"waiting for {ip} to answer on {probe.kind}:{probe.port}"):
            deadline = time.monotonic() + lease_timeout
            while True:
                r = remote.run(["python3", "-c", _PROBE, probe.kind, ip, str(probe.port), probe.path],
                               check=False)
                if r.rc == 0:
                    break
                if time.monotonic() > deadline:
                    die(f"{name} at {ip} does not answer on {probe.kind}:{probe.port}",
                        hint=_diagnose(remote, name, mac, config))
                time.sleep(1)
    return ip


def _lease(remote: Remote, mac: str) -> tuple[int, str] | None:
    """(expiry, ip) of the lease dnsmasq holds for mac, if any."""
    for line in remote.run(["cat", LEASES], sudo=True, check=False).out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].lower() == mac and parts[0].isdigit():
            return int(parts[0]), parts[2]
    return None


def _diagnose(remote: Remote, name: str, mac: str, config: LabConfig) -> str:
    """Why a guest is not reachable: its console, its vif on the bridge, dnsmasq's view of it."""
    facts = []
    console = remote.run(["tail", "-n", "5", console_log(name)],
                         sudo=True, check=False).out.strip()
    facts.append(f"console: {' | '.join(console.splitlines()) or 'no console log'}")
    domid = remote.run(["xl", "domid", name], sudo=True, check=False).out.strip()
    ports = remote.run(["ls", f"/sys/class/net/{config.bridge}/brif"], check=False).out.split()
    vif = f"vif{domid}.0"
    facts.append(f"{vif} {'is' if vif in ports else 'is NOT'} a port of {config.bridge}")
    log = remote.run(["grep", "-i", mac, "/var/log/xenlab-dnsmasq.log"], sudo=True, check=False).out
    facts.append(f"dnsmasq: {' | '.join(log.strip().splitlines()[-3:]) or 'never heard from ' + mac}")
    return "; ".join(facts)


def destroy_domain(state_dir: Path, name: str) -> None:
    remote = Remote.open(state_dir)
    try:
        if remote.run(["xl", "domid", name], sudo=True, check=False).rc != 0:
            die(f"no domain named {name!r} on the lab", hint="`xenlab list` shows what runs")
        remote.run(["xl", "destroy", name], sudo=True, what="xl destroy", idempotent=False)
    finally:
        remote.close()
    state = LabState.load(state_dir)
    state.domains.pop(name, None)
    state.save(state_dir)


def list_domains(state_dir: Path) -> list[dict[str, object]]:
    """Domains as the lab host sees them (xl list), with MAC and IP from the leases."""
    remote = Remote.open(state_dir)
    try:
        listing = remote.run(["xl", "list"], sudo=True, what="xl list").out
        leases = remote.run(["cat", LEASES], sudo=True, check=False).out
    finally:
        remote.close()
    known = LabState.load(state_dir).domains
    by_mac = {p[1].lower(): p[2] for p in (line.split() for line in leases.splitlines()) if len(p) >= 3}
    out = []
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 6 or parts[0] == "Domain-0":
            continue
        name = parts[0]
        mac = known.get(name, {}).get("mac") or guest_mac(name)
        out.append({"name": name, "id": int(parts[1]), "memory": int(parts[2]), "state": parts[4],
                    "uptime_s": float(parts[5]), "mac": mac, "ip": by_mac.get(mac)})
    return out

