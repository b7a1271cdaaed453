"""The lab's settings, declared once.

Every setting is a field of `LabConfig`; its default, its type and its help live there and nowhere
else. Values are layered: defaults < `xenlab.toml` in the working directory < `XENLAB_<NAME>`
environment variables < CLI flags, and `Resolved.sources` remembers which layer won.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import bad_input
from lab.releases import DEFAULT as DEFAULT_RELEASE
from lab.releases import RELEASES

CONFIG_FILE = "xenlab.toml"
ENV_PREFIX = "XENLAB_"
PROVIDERS = ("auto", "virtualbox", "qemu", "ssh")
ACCELS = ("auto", "kvm", "tcg")
PAGING = ("hap", "shadow")


@dataclass(frozen=True)
class Form:
    """What a text setting may hold, for where it ends up: settings reach dnsmasq's configuration,
    an ssh-config, a GRUB file the shell sources as root and `ip` command lines, so each is held
    to the shape its destination reads safely (no quote, newline or shell character gets
    through)."""

    what: str
    pattern: re.Pattern[str]

    def holds(self, value: str) -> bool:
        return self.pattern.fullmatch(value) is not None


_WORD = r"[A-Za-z0-9_.,:=+/@%~^{}\[\]-]+"
IFNAME = Form("a network interface name: 1 to 15 of A-Z a-z 0-9 _ . - (not first), not . or ..",
              re.compile(r"(?!\.\.?\Z)[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}"))
NETNS = Form("a network namespace name: letters, digits, _ . -",
             re.compile(r"(?!\.\.?\Z)[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}"))
HOST = Form("a host name or an IP address",
            re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f:.]+"))
USER = Form("a user name: a letter or _, then letters, digits, _ . -",
            re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"))
LEASE = Form("a dnsmasq lease time: a number with s, m, h, d or w, or infinite",
             re.compile(r"[1-9][0-9]{0,8}[smhdw]?|infinite"))
WORDS = Form("kernel command-line words separated by single spaces, without quotes, backslashes, "
             "$ or backticks", re.compile(rf"({_WORD}( {_WORD})*)?"))
PATH = Form("a path without control characters", re.compile(r"[^\x00-\x1f\x7f]*"))
BOX = Form("a Vagrant box name, OWNER/NAME", re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+)?"))


def _setting(default: Any, help: str, choices: tuple[str, ...] = (), flag: bool = False,
             per_host: bool = False, form: Form | None = None) -> Any:
    """One setting: its default, its help, its allowed values (or the form of its text), whether
    the lab verbs take it as a flag (--name), and whether one host of several may set it for
    itself (a `[hosts.NAME]` table, an inventory host variable); the CLI, `xenlab config`, the
    host tables, the inventory and validation all read it from here."""
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag,
                                            "per_host": per_host, "form": form})


@dataclass(frozen=True)
class LabConfig:
    provider: str = _setting("auto", "where the lab runs: a VM xenlab makes (virtualbox, qemu; auto: "
                             "VirtualBox if usable, else QEMU) or an existing Debian 12 or 13 host (ssh)",
                             PROVIDERS, flag=True)
    ssh_host: str = _setting("", "provider ssh: the existing host's name or address", per_host=True,
                             form=HOST)
    ssh_port: int = _setting(22, "provider ssh: its SSH port", per_host=True)
    ssh_user: str = _setting("", "provider ssh: the user xenlab logs in as (needs sudo without a "
                             "password)", per_host=True, form=USER)
    ssh_key: str = _setting("", "provider ssh: the private key that user logs in with", per_host=True,
                            form=PATH)
    uplink_interface: str = _setting("", "provider ssh: the host's NIC the lab bridge takes over, by "
                                     "name (not the one you reach the host through)", per_host=True,
                                     form=IFNAME)
    xen_cmdline_extra: str = _setting("", "extra Xen command-line arguments the lab host needs "
                                      "(a serial console, a CPU quirk)", per_host=True, form=WORDS)
    dom0_cmdline_extra: str = _setting("", "extra dom0 kernel command-line arguments", per_host=True,
                                       form=WORDS)
    inventory: str = _setting("", "provider ssh: an Ansible inventory file of several existing hosts "
                              "(instead of [hosts.NAME] tables in xenlab.toml)", form=PATH)
    subnet: str = _setting("192.168.77.0/24", "the host-only lab network", per_host=True)
    host_ip: str = _setting("192.168.77.1", "your machine's address on the lab network", per_host=True)
    lab_ip: str = _setting("192.168.77.2", "the lab host's address, held by the bridge", per_host=True)
    dhcp_start: str = _setting("192.168.77.3", "first address dnsmasq hands to guests", per_host=True)
    dhcp_end: str = _setting("192.168.77.200", "last address dnsmasq hands to guests", per_host=True)
    static_start: str = _setting("192.168.77.201", "first address `deploy --static` gives out", per_host=True)
    static_end: str = _setting("192.168.77.254", "last address `deploy --static` gives out", per_host=True)
    lease_time: str = _setting("12h", "dnsmasq lease time", per_host=True, form=LEASE)
    bridge: str = _setting("br0", "the lab bridge guests' vifs join", per_host=True, form=IFNAME)
    nat: bool = _setting(True, "masquerade guest traffic out of the NAT NIC", per_host=True)
    release: str = _setting(DEFAULT_RELEASE, "the Debian release of a lab VM xenlab makes (QEMU, "
                            "VirtualBox); an existing host keeps its own", tuple(RELEASES))
    box: str = _setting("", "Vagrant box of the lab VM (empty: the release's debian/SUITE64)", form=BOX)
    vm_memory: int = _setting(2048, "lab VM memory, MiB")
    vm_cpus: int = _setting(2, "lab VM virtual CPUs")
    dom0_memory: int = _setting(768, "memory pinned to dom0, MiB", per_host=True)
    pvh: bool = _setting(True, "run PVH guests (needs nested virtualization on VirtualBox)", per_host=True)
    paging: str = _setting("hap", "how Xen pages PVH and HVM guests: hap (hardware-assisted, "
                           "what unikernels are tested on) or shadow (only where the host's Xen "
                           "was built with it; Debian's security-supported builds are not)", PAGING,
                           per_host=True)
    guest_memory_min: int = _setting(32, "smallest guest memory `fix` accepts, MiB")
    guest_memory_max: int = _setting(0, "largest guest memory `fix` accepts, MiB (0: no bound of "
                                     "its own; the lab host's free memory decides at `xl create`)")
    state_dir: str = _setting(".xenlab", "where xenlab keeps what it made for this lab", form=PATH)
    host_netns: str = _setting("", "QEMU: network namespace for the host side of the lab network",
                               form=NETNS)
    share: bool = _setting(True, "deploy: hand kernels and images to the lab through the shared "
                           "folder when the lab host has it mounted (QEMU), else over SSH")
    accel: str = _setting("auto", "QEMU's accelerator (auto: KVM only if a probe guest runs on it)",
                          ACCELS, flag=True)

    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet, strict=False)

    @property
    def vagrant_box(self) -> str:
        return self.box or RELEASES[self.release].vagrant_box

    @property
    def netmask(self) -> str:
        return str(self.network().netmask)

    @property
    def prefixlen(self) -> int:
        return self.network().prefixlen


FIELDS = {f.name: f for f in dataclasses.fields(LabConfig)}


PER_HOST = tuple(name for name, f in FIELDS.items() if f.metadata["per_host"])
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True)
class Resolved:
    config: LabConfig
    sources: Mapping[str, str]
    # Several existing hosts, by name: each one's settings are the directory's, then its own.
    hosts: Mapping[str, LabConfig] = field(default_factory=dict)


def _coerce(name: str, raw: Any, origin: str) -> Any:
    kind: type = type(FIELDS[name].default)
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
        elif kind is int:
            try:
                return int(text, 0)
            except ValueError:
                pass
    bad_input(
        f"{origin}: {name} must be {kind.__name__}, got {raw!r}",
        hint=f"{name}: {FIELDS[name].metadata['help']}",
    )


def load(
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Resolved:
    cwd = cwd or Path.cwd()
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources = {name: "default" for name in FIELDS}
    host_tables: dict[str, tuple[str, Mapping[str, Any]]] = {}

    path = cwd / CONFIG_FILE
    if path.exists():
        import tomllib  # only when there is a xenlab.toml to read

        from lab import files

        try:
            data = tomllib.loads(files.read_text(path))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            bad_input(f"{path}: {exc}", hint="fix the TOML syntax or remove the file")
        except RecursionError:
            bad_input(f"{path}: nested too deeply to read", hint="settings are flat: key = value")
        except OSError as exc:
            bad_input(f"{path}: cannot read: {exc.strerror}", hint="it should be a text file of "
                      "settings: check its permissions, or move it aside")
        table = data.get("lab", data)
        if not isinstance(table, dict):
            bad_input(f"{path}: lab must be a table of settings", hint='a [lab] table of key = value lines')
        table = dict(table)
        tables = table.pop("hosts", None)
        if tables is not None:
            if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
                bad_input(f"{path}: hosts must be tables of settings, one per host",
                          hint='[hosts.alpha]\nssh_host = "alpha.example"')
            host_tables = {name: (f"{path} [hosts.{name}]", t) for name, t in tables.items()}
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name not in FIELDS:
                bad_input(f"{path}: unknown setting {key!r}", hint=f"known: {', '.join(FIELDS)}")
            values[name] = _coerce(name, raw, str(path))
            sources[name] = str(path)

    for name in FIELDS:
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = _coerce(name, env[var], f"environment {var}")
            sources[name] = f"env {var}"

    for name, raw in (flags or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw, f"--{name.replace('_', '-')}")
            sources[name] = f"flag --{name.replace('_', '-')}"

    config = LabConfig(**values)
    if config.inventory:
        if host_tables:
            bad_input(f"{sources['inventory']}: hosts given twice, as an inventory and as "
                      "[hosts.NAME] tables", hint="keep one of the two")
        from lab.inventory import read

        try:
            inventory = Path(config.inventory).expanduser()
        except RuntimeError as exc:  # ~user of a user this system does not have
            bad_input(f"{sources['inventory']}: inventory = {config.inventory!r}: {exc}",
                      hint="give the inventory's path, relative to this directory or absolute")
        host_tables = read(cwd / inventory, sources['inventory'])
    hosts = {name: _host(name, origin, table, config, values, sources)
             for name, (origin, table) in host_tables.items()}
    validate(config, sources, one_host=not hosts)
    _apart(hosts)
    return Resolved(config, sources, hosts)


def _host(name: str, origin: str, table: Mapping[str, Any], config: LabConfig,
          values: Mapping[str, Any], sources: Mapping[str, str]) -> LabConfig:
    """One host's settings: the directory's, then the ones its table or inventory entry sets."""
    if config.provider != "ssh":
        bad_input(f"{origin}: several hosts are existing hosts, but provider is {config.provider!r}",
                  hint='set provider = "ssh"')
    if not HOST_NAME.fullmatch(name):
        bad_input(f"{origin}: {name!r} is not a host name xenlab can use",
                  hint="letters, digits, '.', '-', '_' (it names a directory and an SSH alias)")
    own, own_sources = dict(values), dict(sources)
    for key, raw in table.items():
        setting = key.replace("-", "_")
        if setting not in PER_HOST:
            bad_input(f"{origin}: {key!r} is not a setting one host may have for itself",
                      hint=f"per host: {', '.join(PER_HOST)}")
        own[setting], own_sources[setting] = _coerce(setting, raw, origin), origin
    host = LabConfig(**own)
    validate(host, own_sources, host=origin)
    return host


def _apart(hosts: Mapping[str, LabConfig]) -> None:
    """No two hosts hand out the same address, and no host is named twice."""
    def ranges(c: LabConfig) -> list[tuple[str, int, int]]:
        return [(kind, int(ipaddress.IPv4Address(a)), int(ipaddress.IPv4Address(b)))
                for kind, a, b in (("DHCP", c.dhcp_start, c.dhcp_end),
                                   ("static", c.static_start, c.static_end))]

    names = list(hosts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ca, cb = hosts[a], hosts[b]
            if (ca.ssh_host, ca.ssh_port) == (cb.ssh_host, cb.ssh_port):
                bad_input(f"hosts {a} and {b} are the same host ({ca.ssh_host}:{ca.ssh_port})",
                          hint="one entry per host")
            for kind_a, lo_a, hi_a in ranges(ca):
                for kind_b, lo_b, hi_b in ranges(cb):
                    if lo_a <= hi_b and lo_b <= hi_a:
                        bad_input(f"hosts {a} and {b}: {a}'s {kind_a} range "
                                  f"{ipaddress.IPv4Address(lo_a)}-{ipaddress.IPv4Address(hi_a)} overlaps "
                                  f"{b}'s {kind_b} range {ipaddress.IPv4Address(lo_b)}-"
                                  f"{ipaddress.IPv4Address(hi_b)}: a guest address could be given twice",
                                  hint="give each host its own dhcp_start..dhcp_end and "
                                       "static_start..static_end")


def validate(config: LabConfig, sources: Mapping[str, str], one_host: bool = True,
             host: str | None = None) -> None:
    """one_host: the settings name the lab host themselves (not only [hosts.NAME] tables);
    host: where one host of several was declared (a setting it lacks is named there)."""
    def fail(name: str, why: str) -> None:
        bad_input(f"{sources[name]}: {name} = {getattr(config, name)!r}: {why}",
                  hint=f"{name}: {FIELDS[name].metadata['help']}")

    def either(name: str, why: str, other: str, why_other: str) -> None:
        """Two settings that disagree: named by the one that was set, not the default."""
        if sources[name] == "default" and sources[other] != "default":
            fail(other, why_other)
        fail(name, why)

    for name, f in FIELDS.items():
        choices, form, value = f.metadata["choices"], f.metadata["form"], getattr(config, name)
        if choices and value not in choices:
            fail(name, f"must be one of {', '.join(choices)}")
        if form is not None and value and not form.holds(value):
            fail(name, f"not {form.what}")
    try:
        net = config.network()
    except ValueError as exc:
        fail("subnet", str(exc))
    addrs = {}
    for name in ("host_ip", "lab_ip", "dhcp_start", "dhcp_end", "static_start", "static_end"):
        try:
            addrs[name] = ipaddress.IPv4Address(getattr(config, name))
        except ValueError:
            fail(name, "not an IPv4 address")
        if addrs[name] not in net or addrs[name] in (net.network_address, net.broadcast_address):
            fail(name, f"not a host address in {net}")
    if addrs["dhcp_start"] > addrs["dhcp_end"]:
        either("dhcp_start", "after dhcp_end", "dhcp_end", "before dhcp_start")
    for name in ("host_ip", "lab_ip"):
        if addrs["dhcp_start"] <= addrs[name] <= addrs["dhcp_end"]:
            either(name, "inside the DHCP range; dnsmasq would hand it to a guest",
                   "dhcp_start", f"the DHCP range holds {name}; dnsmasq would hand it to a guest")
    if addrs["static_start"] > addrs["static_end"]:
        either("static_start", "after static_end", "static_end", "before static_start")
    if addrs["static_start"] <= addrs["dhcp_end"] and addrs["dhcp_start"] <= addrs["static_end"]:
        either("static_start", "the static range overlaps the DHCP range: an address could be given "
               "twice", "dhcp_start", "the DHCP range overlaps the static range: an address could be "
               "given twice")
    for name in ("host_ip", "lab_ip"):
        if addrs["static_start"] <= addrs[name] <= addrs["static_end"]:
            either(name, "inside the static range; `deploy --static` would hand it to a guest",
                   "static_start", f"the static range holds {name}; `deploy --static` would hand it "
                   "to a guest")
    if addrs["host_ip"] == addrs["lab_ip"]:
        either("lab_ip", "same as host_ip", "host_ip", "same as lab_ip")
    if not config.bridge:
        fail("bridge", f"not {IFNAME.what}")
    if config.dom0_memory < 32:
        fail("dom0_memory", "must be at least 32")
    if config.dom0_memory >= config.vm_memory:
        either("dom0_memory", f"must be below vm_memory ({config.vm_memory})",
               "vm_memory", f"must be above dom0_memory ({config.dom0_memory})")
    if config.vm_cpus < 1:
        fail("vm_cpus", "must be at least 1")
    if config.guest_memory_min <= 0:
        fail("guest_memory_min", "must be at least 1")
    if config.guest_memory_max and config.guest_memory_max < config.guest_memory_min:
        either("guest_memory_max", "must be 0 (no bound) or at least guest_memory_min",
               "guest_memory_min", f"must be at most guest_memory_max ({config.guest_memory_max})")
    if config.provider == "ssh" and one_host:
        for name in ("ssh_host", "ssh_user", "ssh_key", "uplink_interface"):
            if not getattr(config, name):
                bad_input(f"{host or sources['provider']}: provider ssh needs {name}",
                          hint=f"set {name} {'for this host' if host else 'in ' + CONFIG_FILE}: "
                               f"{FIELDS[name].metadata['help']}")
        if not 0 < config.ssh_port < 65536:
            fail("ssh_port", "not a TCP port")
        if config.uplink_interface == config.bridge or "/" in config.uplink_interface:
            fail("uplink_interface", f"not a NIC name other than the bridge {config.bridge}")
