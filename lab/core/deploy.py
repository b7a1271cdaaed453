"""`xenlab deploy FILE.xl`: from MirageOS's generated .xl file to a guest answering on the lab network.

Phases: fix (lint + repair), images (build what is missing), upload (sha256-skipped, temp name +
rename), create (`xl create` of a lab copy of the file), then readiness: a DHCP lease, or a static
address answering ping, then the probe (optional). While it waits, the domain is watched: a guest
that powers off, reboots or crashes ends the wait at once. `xenlab run` shares everything up to
the create (`prepare`, `launch`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lab import bootargs, domain, lab_host, lab_steps, run, ui
from lab import share as lab_share
from lab.artifacts import Recipe, locate, mirage_recipes
from lab.config import LabConfig
from lab.errors import LabError, bad_input, die, no_lab
from lab.fix import fix_file
from lab.image import build_image
from lab.lab import Lab
from lab.probe import Probe
from lab.remote import Connecting, Remote, sha256_file
from lab.state import DomainRecord
from lab.xl.disk import parse_disk
from lab.xl.model import Domain, VifSpec
from lab.xl.syntax import XlFile, quote

# Block images deploy builds, under the state directory: they outlive a lab, as logs do.
IMAGES = "images"

# The lab copy keeps a domain that ended, so that xenlab can read how it ended (Xen's shutdown
# reason) and its console; Solo5 turns a unikernel's exit into a poweroff and an abort into a
# crash, and only `preserve` leaves that visible. `destroy NAME` (or --replace) removes it.
_KEEP_ENDED = ("on_poweroff", "on_reboot", "on_crash")
SHADOW_MEMORY = 8  # MiB, for PVH/HVM guests on a lab with paging = "shadow"


@dataclass(frozen=True)
class Request:
    """What the user asked for, as given on the command line."""

    xl: Path
    images: tuple[str, ...] = ()
    strict: bool = False
    replace: bool = False
    probe: str | None = None
    timeout: float = 180
    ip: str | None = None  # a DHCP reservation
    static: str | None = None  # "" : a free static address; an address: that one
    dialect: str | None = None  # boot-argument dialect for --static; None: from the binary
    args: tuple[str, ...] = ()
    network: bool | None = None  # --network / --no-network; None: from the file
    sha256: str | None = None

    def check(self) -> tuple[Probe | None, list[str], str | None]:
        """The options that need no lab and no host's settings, refused before any host is
        asked anything (placement among several reads every host): the probe, the boot
        arguments and the expected hash, as deploy uses them."""
        probe = Probe.parse(self.probe) if self.probe else None
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            bad_input(f"--timeout {self.timeout}: not a number of seconds above 0",
                      hint="--timeout 300 waits five minutes")
        args = [bootargs.check_arg(a) for a in self.args]
        if self.ip is not None and self.static is not None:
            bad_input("--ip and --static both given", hint="--ip reserves a DHCP address; --static "
                                                           "passes one as boot arguments: pick one")
        expected = None
        if self.sha256 is not None:
            expected = self.sha256.lower()
            if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
                bad_input(f"--sha256 {self.sha256!r}: not a sha256 (64 hexadecimal digits)",
                          hint="`sha256sum KERNEL` prints it")
        return probe, args, expected


@dataclass
class Prepared:
    """The local side, checked and ready: nothing has touched the lab yet."""

    request: Request
    doc: XlFile  # fixed
    name: str
    local: dict[str, Path]  # remote file name -> local path
    sha256: dict[str, str]  # file name -> hash, for the record
    boot_args: list[str]  # added by --arg (the file's own stay where they are)
    static: ipaddress.IPv4Interface | None  # from the file's own boot arguments
    dialect: str
    network: bool
    probe: Probe | None
    lab: Lab
    share_id: str  # this lab's shared folder's id, when deploy is to try it ("" not)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """How the guest gets its address: dhcp, static (--static or its own boot arguments),
        or none (no network)."""
        if not self.network:
            return "none"
        return "static" if self.static is not None or self.request.static is not None else "dhcp"


@dataclass
class Deployed:
    name: str
    mac: str | None
    ip: str | None
    address: str  # dhcp, static or none
    sent_bytes: int  # over SSH
    via: str  # how kernels and images reached the lab: "share" or "ssh"
    boot_args: str = ""
    sha256: dict[str, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "mac": self.mac, "ip": self.ip, "address": self.address,
                "sent_bytes": self.sent_bytes, "via": self.via, "boot_args": self.boot_args,
                "sha256": self.sha256, "phases_s": {k: round(v, 2) for k, v in self.phases.items()}}


def prepare(req: Request, lab: Lab) -> Prepared:
    """Every check that needs no lab, then the repairs and the images: bad input stops here."""
    config, state_dir = lab.config, lab.state_dir
    phases: dict[str, float] = {}
    xl_dir = req.xl.resolve().parent
    given = [Recipe.parse(s, Path.cwd()) for s in req.images]
    recipes = {**mirage_recipes(xl_dir), **{r.image: r for r in given}}
    the_probe, args, expected = req.check()
    if req.ip is not None:
        _check_address("--ip", req.ip, config, static=False)
    if req.static:
        _check_address("--static", req.static, config, static=True)

    with ui.step("fix", phases, "fix"):
        report = fix_file(req.xl, config, recipes, req.network)
        for f in report.findings:
            ui.info(f.render())
        if report.unrepaired:
            die(report.unrepaired[0].render(), hint="fix it by hand, or build the unikernel first")
        if req.strict and report.findings:
            die(f"{req.xl}: {len(report.findings)} problem(s) found and --strict given",
                hint=f"`xenlab fix {req.xl} --write` applies the repairs")
    doc = report.fixed
    dom = Domain(doc)
    name = dom.name
    assert name is not None  # XL001 guarantees a valid name

    with ui.step("images", phases, "images"):
        local: dict[str, Path] = {}
        kernel: Path | None = None
        for key in ("kernel", "ramdisk"):
            written = doc.string(key)
            if written:
                found = locate(written, xl_dir)
                if found is None:
                    die(f"{req.xl}: {key} {written!r} not found", hint="build the unikernel first")
                local[found.name] = found
                kernel = found if key == "kernel" else kernel
        hashes = {fname: sha256_file(path) for fname, path in local.items()}
        if expected is not None and kernel is not None and hashes[kernel.name] != expected:
            bad_input(f"{kernel}: sha256 is {hashes[kernel.name]}, not the {expected} given",
                      hint="this is not the unikernel you meant to deploy; check where it came from")
        has_lab = bool(lab.state.ssh)
        for disk in dom.disks():
            if not disk.target:
                continue
            found = locate(disk.target, xl_dir)
            if found is None:
                if not has_lab:
                    # Building an image for no lab is work for nothing, and files left behind.
                    no_lab(state_dir)
                recipe = recipes[Path(disk.target).name]
                out = state_dir / IMAGES / name / recipe.image
                out.parent.mkdir(parents=True, exist_ok=True)
                build_image(recipe.kind, recipe.data_dir, out)
                ui.info(f"built {recipe.kind} image {recipe.image} from {recipe.data_dir}")
                found = out
            local[found.name] = found
            hashes[found.name] = sha256_file(found)

    # After the repairs: XL005 has added a vif where the file's kind means one was left out.
    network = bool(dom.vifs()) if req.network is None else req.network
    static = bootargs.address_in(doc.string(bootargs.key(doc)) or "")
    if not network and (static is not None or req.static is not None or req.ip or the_probe):
        what = "a probe" if the_probe else "an address"
        why = ("--no-network" if req.network is False else
               "a PVH file without a vif: MirageOS 4's way of saying the unikernel has no network device")
        bad_input(f"{req.xl}: {what} for a guest without network ({why})",
                  hint="--network gives it a vif on the lab bridge")
    if static is not None and static.ip not in config.network():
        bad_input(f"{req.xl}: its boot arguments give the address {static}, outside the lab "
                  f"network {config.subnet}: nothing on the lab could reach it",
                  hint="remove it from the file and deploy with --static (a free lab address)")
    if static is not None and req.static:
        bad_input(f"--static {req.static}: the file's boot arguments already give {static}",
                  hint="drop one of them")
    dialect = req.dialect or (bootargs.detect_dialect(kernel) if kernel else None) or "mirage4"
    share_id = (lab_share.local_id(state_dir) or "") if config.share else ""
    return Prepared(request=req, doc=doc, name=name, local=local, sha256=hashes, boot_args=args,
                    static=static, dialect=dialect, network=network, probe=the_probe, lab=lab,
                    share_id=share_id, phases=phases)


def _check_address(flag: str, text: str, config: LabConfig, *, static: bool) -> None:
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError:
        bad_input(f"{flag} {text!r}: not an IPv4 address", hint=f"an address in the lab's subnet "
                  f"{config.subnet}, e.g. {config.static_start}")
    if static:
        low, high = (ipaddress.IPv4Address(config.static_start), ipaddress.IPv4Address(config.static_end))
        if not low <= addr <= high:
            bad_input(f"--static {text}: outside the lab's static range {low}-{high}",
                      hint="dnsmasq hands out the rest of the subnet; leave out the address and "
                           "xenlab picks a free one")
    elif (addr not in (net := config.network()) or text in (config.host_ip, config.lab_ip)
          or addr in (net.network_address, net.broadcast_address)):
        bad_input(f"{flag} {text}: not a free guest address in {config.subnet}",
                  hint="an address of the subnet other than its network and broadcast addresses, "
                       "yours and the lab host's")


@dataclass
class Launched:
    """A domain created on the lab from a prepared file (or an `xl create` that failed)."""

    name: str
    mac: str | None
    ip: str | None  # known at launch for a static guest
    lab_xl: str
    cmdline: str
    sent_bytes: int
    via: str
    created_at: float  # time.monotonic() when `xl create` returned
    created: lab_steps.Step

    def check(self) -> None:
        if self.created.rc != 0:
            die(f"xl create {self.name} failed: {run.tail(self.created.output, 4)}",
                hint=f"the lab copy is {self.lab_xl}")


def make_room(remote: Remote, p: Prepared) -> Launched | lab_steps.Step | None:
    """Refuse to replace a running domain of the same name without --replace; remove one that
    ended. Before this, nothing on the lab is xenlab's to remove on failure. In the same round
    trip: the lab host prepared for the uploads (returned, for launch), or, through the shared
    folder, the domain created (launch only checks it). An address to claim comes in between."""
    req, name = p.request, p.name
    if req.static is not None:
        _refuse_or_clear(lab_steps.make_room(remote, name, req.replace), p)
        return None
    # All at once only where the files it puts in the shared folder first cannot be those of a
    # running domain this deploy is to leave alone: one deployed from here is replaced or absent.
    if p.share_id and req.ip is None and (req.replace or name not in p.lab.state.domains):
        launched = _launch_shared(remote, p)
        # Not created: the lab host has not mounted this lab's folder; launch() uploads instead.
        return launched if launched.created.created else None
    step = lab_steps.prepare(remote, name, share=bool(p.share_id),
                             room="replace" if req.replace else "keep")
    _refuse_or_clear(step, p)
    return step


def _refuse_or_clear(step: lab_steps.Step, p: Prepared) -> None:
    before = step.before
    if before.running and not p.request.replace:
        die(f"a domain named {p.name!r} is already running on the lab",
            hint="`--replace` to replace it, or `xenlab destroy NAME`")
    if before.exists and not before.running:
        ui.info(f"removed the earlier {p.name}, which had ended ({before.ended})")


def _launch_shared(remote: Remote, p: Prepared) -> Launched:
    """The files into the shared folder, then one round trip: make room, prepare, create."""
    name = p.name
    mac = domain.guest_mac(name) if p.network else None
    ip = _address_in_file(p)
    with ui.step("upload", p.phases, "upload"):
        for fname, path in p.local.items():
            _into_share(p, fname, path)
    lab_doc, cmdline = _lab_copy(p, lab_share.lab_directory(name), mac, list(p.boot_args))
    lab_xl = f"{domain.directory(name)}/{name}.xl"
    with ui.step("create", p.phases, "create"):
        step = lab_steps.launch(remote, name, replace=p.request.replace, share_id=p.share_id,
                                mac=mac if ip is None else None, lab_xl=lab_xl, text=lab_doc.text)
        _refuse_or_clear(step, p)
    return Launched(name=name, mac=mac, ip=ip, lab_xl=lab_xl, cmdline=cmdline, sent_bytes=0,
                    via="share", created_at=time.monotonic(), created=step)


def _address_in_file(p: Prepared) -> str | None:
    if p.static is None:
        return None
    ui.info(f"static address from the file's boot arguments: {p.static}")
    return str(p.static.ip)


def _into_share(p: Prepared, fname: str, path: Path) -> None:
    copied = lab_share.place(p.lab.state_dir, p.name, fname, path, p.sha256[fname])
    ui.info(f"{fname}: {'copied into' if copied else 'unchanged in'} the shared folder")


def launch(remote: Remote, p: Prepared, there: Launched | lab_steps.Step | None) -> Launched:
    """Claim the address, upload, write the lab copy, `xl create`; or, when make_room created the
    domain already (there), check it. The caller removes the domain (domain.remove) if anything
    in here fails."""
    if isinstance(there, Launched):
        there.check()
        return there
    req, name, config = p.request, p.name, p.lab.config
    mac = domain.guest_mac(name) if p.network else None
    args = list(p.boot_args)
    directory = domain.directory(name)
    reservation = f"{lab_host.DHCP_HOSTS_DIR}/{name}"
    # The address first: an address in use stops the deploy before anything is sent.
    ip = _address_in_file(p)
    if req.static is not None:
        ip = domain.claim_static(remote, name, req.static or None, config)
        addr = bootargs.StaticAddress(ipaddress.IPv4Interface(f"{ip}/{config.prefixlen}"),
                                      config.lab_ip)
        args += addr.args(p.dialect)
        ui.info(f"static address {ip} ({p.dialect} boot arguments: {' '.join(addr.args(p.dialect))})")
    if there is None:
        there = lab_steps.prepare(remote, name, static=req.static is not None, share=bool(p.share_id))
    shared = bool(p.share_id) and there.share_id == p.share_id
    if p.share_id and not shared:
        ui.info("the lab host has not mounted this lab's shared folder: uploading over SSH")
    if req.ip is not None and mac is not None:
        # A fixed address is a dnsmasq reservation in its hosts directory.
        remote.write_text(f"{directory}/dhcp-host", f"{mac},{req.ip}\n")
        remote.run(["install", "-m", "0644", f"{directory}/dhcp-host", reservation], sudo=True,
                   what="dnsmasq reservation")
        # dnsmasq notices a new file there by itself (inotify), but a lab under load has given
        # the guest another address first (seen in CI): SIGHUP makes it reread the directory now.
        remote.run(["systemctl", "kill", "--kill-whom=main", "--signal=HUP", "dnsmasq"], sudo=True,
                   what="dnsmasq reread")

    sent = 0
    with ui.step("upload", p.phases, "upload"):
        for fname, path in p.local.items():
            if shared:
                _into_share(p, fname, path)
                continue
            size = path.stat().st_size
            start = time.monotonic()
            with ui.transfer(fname, size) as progress:
                done = remote.put(path, f"{directory}/{fname}", progress,
                                  remote_sha256=there.sha256.get(fname, ""), local_sha256=p.sha256[fname])
            sent += done
            took = time.monotonic() - start
            ui.info(f"{fname}: sent {size} bytes in {took:.1f} s ({size / max(took, 1e-3) / 1e6:.1f} MB/s)"
                    if done else f"{fname}: unchanged, not sent")

    files = lab_share.lab_directory(name) if shared else directory
    lab_doc, cmdline = _lab_copy(p, files, mac, args)
    lab_xl = f"{directory}/{name}.xl"
    with ui.step("create", p.phases, "create"):
        created = lab_steps.create(remote, name, mac if ip is None else None, lab_xl, lab_doc.text)
    launched = Launched(name=name, mac=mac, ip=ip, lab_xl=lab_xl, cmdline=cmdline, sent_bytes=sent,
                        via="share" if shared else "ssh", created_at=time.monotonic(), created=created)
    launched.check()
    return launched


def _lab_copy(p: Prepared, directory: str, mac: str | None, args: list[str]) -> tuple[XlFile, str]:
    """The file as the lab runs it: paths on the lab host (directory holds the kernel and the
    images), the vif on the lab bridge with its MAC, boot arguments added, ended domains kept.
    Returns it and the guest's command line."""
    doc, config = p.doc, p.lab.config
    for key in ("kernel", "ramdisk"):
        written = doc.string(key)
        if written:
            doc = doc.set(key, quote(f"{directory}/{Path(written).name}"))
    disks = [parse_disk(s) for s in p.doc.strings("disk") or []]
    doc = doc.set_list("disk", [
        d.with_target(f"{directory}/{Path(d.target).name}").render() if d.target else d.spec
        for d in disks])
    if mac is None:
        doc = doc.set_list("vif", [])
    else:
        vifs = Domain(p.doc).vifs() or [VifSpec.parse(f"bridge={config.bridge}")]
        first = vifs[0].with_("bridge", config.bridge).with_("mac", mac)
        doc = doc.set_list("vif", [first.spec] + [v.spec for v in vifs[1:]])
    key = bootargs.key(doc)
    cmdline = bootargs.join(doc.string(key) or "", args)
    if args:
        doc = doc.set(key, quote(cmdline))
    if len(cmdline.encode()) >= bootargs.SOLO5_CMDLINE_MAX:
        ui.warn(f"the command line is {len(cmdline.encode())} bytes: Solo5 truncates it at "
                f"{bootargs.SOLO5_CMDLINE_MAX - 1}")
    for key in _KEEP_ENDED:
        doc = doc.set(key, quote("preserve"))
    if config.paging == "shadow" and Domain(doc).type in ("pvh", "hvm") and doc.get("shadow_memory") is None:
        # libxl sizes the shadow pool from memory: for a 32 or 64 MiB PVH guest too small to map
        # shared_info, and Solo5 aborts at boot. 8 MiB was measured to be enough at 32 MiB.
        doc = doc.set("shadow_memory", str(SHADOW_MEMORY))
    return doc, cmdline


def prepared_and_connected(req: Request, lab: Lab) -> tuple[Prepared, Remote]:
    """The local work (repairs, images, hashes) while the connection to the lab host opens."""
    connecting = Connecting(lab)
    try:
        p = prepare(req, lab)
    except BaseException:
        connecting.discard()
        raise
    return p, connecting.wait()


def deploy(req: Request, lab: Lab) -> Deployed:
    p, remote = prepared_and_connected(req, lab)
    with remote:
        there = make_room(remote, p)
        with _removed_on_failure(remote, p.name, lab):
            launched = launch(remote, p, there)
            ip = _wait_until_ready(remote, p, launched)
    with lab.changing_state() as state:
        state.domains[p.name] = DomainRecord(
            mac=launched.mac, ip=ip, address=p.address, xl=str(req.xl.resolve()),
            lab_xl=launched.lab_xl, probe=str(p.probe) if p.probe else None,
            boot_args=launched.cmdline, sha256=p.sha256)
    ui.info(f"{p.name}  {launched.mac or 'no network'}  {ip or '-'}")
    return Deployed(name=p.name, mac=launched.mac, ip=ip, address=p.address,
                    sent_bytes=launched.sent_bytes, via=launched.via, boot_args=launched.cmdline,
                    sha256=p.sha256, phases=p.phases)


@contextlib.contextmanager
def _removed_on_failure(remote: Remote, name: str, lab: Lab) -> Iterator[None]:
    """Whatever stops a deploy after the lab was touched (xl's own error, a guest that ended, a
    timeout, Ctrl-C, a lost connection), no domain is left half-deployed: the diagnosis in the
    error is what remains."""
    try:
        yield
    except BaseException as exc:
        created = False
        with contextlib.suppress(Exception):
            created = domain.status(remote, name).exists
            domain.remove(remote, name)
        if name in lab.state.domains:  # a --replace'd guest of that name is gone as well
            with lab.changing_state() as state:
                state.domains.pop(name, None)
        if isinstance(exc, LabError) and created:
            raise LabError(f"{exc.message}; {name} destroyed", hint=exc.hint, code=exc.code) from None
        raise


def _ended(remote: Remote, launched: Launched, st: domain.Status | None = None) -> None:
    """Stop waiting at once for a guest that is no longer running (st: its status, when the
    caller has just read it)."""
    st = st or domain.status(remote, launched.name)
    if not st.running:
        took = time.monotonic() - launched.created_at
        how = st.ended or "vanished"
        die(f"{launched.name} ended ({how}) {took:.1f} s after it started, before it was ready",
            hint=f"console: {domain.console_tail(remote, launched.name) or 'no console output'}")


def _wait_until_ready(remote: Remote, p: Prepared, launched: Launched) -> str | None:
    """The guest's address, once it has one and answers the probe (when one is given). A guest
    without network is ready when it runs."""
    name, mac, timeout, config = launched.name, launched.mac, p.request.timeout, p.lab.config
    if mac is None:
        _ended(remote, launched)
        return None
    ip = launched.ip
    if ip is None:
        ip = _wait_for_lease(remote, launched, config, timeout, p.phases)
    else:
        with ui.step(f"{ip} answers", p.phases, "address"), \
                ui.live_status(f"waiting for {ip} to answer ping (up to {timeout:.0f} s)"):
            deadline = time.monotonic() + timeout
            while not domain.answers_ping(remote, ip):
                _ended(remote, launched)
                if time.monotonic() > deadline:
                    die(f"{name} does not answer at its static address {ip} within {timeout:.0f} s",
                        hint=domain.diagnose(remote, name, mac, config)
                        + f"; boot arguments: {launched.cmdline or 'none'}")
    if p.probe is not None:
        probe = p.probe
        with ui.step(f"probe {probe.kind}:{probe.port}", p.phases, "probe"), \
                ui.live_status(f"waiting for {ip} to answer on {probe.kind}:{probe.port}"):
            deadline = time.monotonic() + timeout
            while True:
                # From the lab host: it is on the lab bridge whatever the user's side looks like.
                r = remote.run(probe.argv("python3", ip), check=False)
                if r.rc == 0:
                    break
                _ended(remote, launched)
                if time.monotonic() > deadline:
                    die(f"{name} at {ip} does not answer on {probe.kind}:{probe.port}",
                        hint=domain.diagnose(remote, name, mac, config))
                time.sleep(1)
    return ip


def _wait_for_lease(remote: Remote, launched: Launched, config: LabConfig, timeout: float,
                    phases: dict[str, float]) -> str:
    name, mac, before = launched.name, launched.mac, launched.created.lease_before
    assert mac is not None
    with ui.step(f"lease for {mac}", phases, "lease"), \
            ui.live_status(f"waiting for dnsmasq to lease {mac} (up to {timeout:.0f} s)"):
        deadline = time.monotonic() + timeout
        while True:
            left = max(1, min(10, int(deadline - time.monotonic())))
            lease, st = domain.wait_lease(remote, name, mac, before[0] if before else -1, left)
            if lease is not None:
                return lease[1]
            _ended(remote, launched, st)
            if time.monotonic() > deadline:
                die(f"{name} got no DHCP lease within {timeout:.0f} s",
                    hint=domain.diagnose(remote, name, mac, config)
                    + "; a unikernel with a static address needs `--static`")
