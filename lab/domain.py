"""What a guest domain is on the lab host: where its files live, its MAC, its address (a dnsmasq
lease or a static claim), whether it runs or how it ended, its console log; listing and removal.

The lab host is the truth for all of it: the state file only remembers what deploy decided.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab import lab_host
from lab import share as lab_share
from lab.config import LabConfig
from lab.errors import bad_input, die
from lab.remote import Follower, Remote, ShellScript
from lab.state import DomainRecord

if TYPE_CHECKING:
    from lab.lab import Lab

# Xen's shutdown reason codes (xen/include/public/sched.h), as `xl list -v` prints them.
REASONS = {0: "poweroff", 1: "reboot", 2: "suspend", 3: "crash", 4: "watchdog", 5: "soft_reset"}


def console_log(name: str) -> str:
    """Where xenconsoled keeps the lab host's log of domain name's console (this boot only)."""
    return f"{lab_host.CONSOLE_LOGS}/guest-{name}.log"


def directory(name: str) -> str:
    return f"{lab_host.DOMAINS_DIR}/{name}"


def guest_mac(name: str) -> str:
    """A stable MAC for a domain name, in Xen's 00:16:3e range (lower half of the fourth byte)."""
    d = hashlib.sha256(name.encode()).digest()
    return f"00:16:3e:{d[0] & 0x7F:02x}:{d[1]:02x}:{d[2]:02x}"


@dataclass(frozen=True)
class Status:
    """A domain as Xen has it: running, ended (and why), or not there at all."""

    exists: bool
    domid: int | None = None
    ended: str | None = None  # poweroff, reboot, crash, ... once the domain has shut down

    @property
    def running(self) -> bool:
        return self.exists and self.ended is None


def status(remote: Remote, name: str) -> Status:
    """From `xl list -v NAME`: its Reason-Code column holds Xen's shutdown reason once the domain
    has shut down (kept by on_poweroff/on_crash/on_reboot = 'preserve'), '-' while it runs."""
    r = remote.run(["xl", "list", "-v", name], sudo=True, check=False)
    return status_in(r.out if r.rc == 0 else "", name)


def status_in(listing: str, name: str) -> Status:
    rows = [line.split() for line in listing.splitlines()[1:] if line.split()[:1] == [name]]
    return Status(True, int(rows[0][1]), _ended(rows[0])) if rows else Status(False)


def _ended(row: list[str]) -> str | None:
    """How the domain of one `xl list -v` row ended, None while it runs: the Reason-Code column,
    else the state flags (c: crashed, s: shut down, d: dying)."""
    flags, reason = row[4], row[7] if len(row) > 7 else "-"
    if reason.isdigit():
        return REASONS.get(int(reason), f"shutdown code {reason}")
    if "c" in flags:
        return "crash"
    if "s" in flags or "d" in flags:
        return "shutdown"
    return None


# Shell functions the lab-side scripts share. `ended FLAGS REASON`: whether an `xl list -v` row's
# state flags and Reason-Code say the domain has shut down (as _ended reads them). `leases_of MAC
# FILE`: dnsmasq's lease lines for MAC (lower case, as dnsmasq and guest_mac write it), read by
# the shell itself. `drop_claims DIR NAME`: remove NAME's static-address claims (symlinks IP ->
# NAME), running find only when there is a claim at all (every process dom0 starts costs tens of
# milliseconds).
SHELL_FUNCTIONS = r"""
ended() { case "$1" in *[csd]*) return 0 ;; esac; case "$2" in [0-9]*) return 0 ;; esac; return 1; }
leases_of() {
  [ -r "$2" ] || return 0
  while read -r line; do case " $line " in *" $1 "*) echo "$line" ;; esac; done < "$2"
}
drop_claims() {
  for claim in "$1"/*; do
    [ -L "$claim" ] && { find "$1" -maxdepth 1 -type l -lname "$2" -delete 2>/dev/null; return 0; }
  done
}
"""

# Waits on the lab host, up to "$5" seconds, for a lease of mac ("$2") newer than expiry "$4",
# looking every 0.2 s (and at the domain "$1" every second: one that ended stops the wait); then
# prints the lease file's lines for mac and `xl list -v` of the domain. A round trip under TCG
# costs ~0.4 s: polling from this side would add most of a second to every deploy.
_WAIT_LEASE = ShellScript(SHELL_FUNCTIONS + r"""
name=$1 mac=$2 leases=$3 after=$4 ticks=$(($5 * 5)) i=0
while [ $i -lt $ticks ]; do
  set -- $(leases_of "$mac" "$leases")
  [ -n "$1" ] && [ "$1" -gt "$after" ] 2>/dev/null && break
  if [ $((i % 5)) -eq 4 ]; then
    flags=$(xl list "$name" 2>/dev/null | awk 'NR == 2 { print $5 }')
    if [ -z "$flags" ] || ended "$flags" ""; then break; fi
  fi
  sleep 0.2; i=$((i + 1))
done
leases_of "$mac" "$leases"
echo @@xl; xl list -v "$name" 2>/dev/null
exit 0
""", name="xenlab-wait-lease")


def wait_lease(remote: Remote, name: str, mac: str, after: int,
               seconds: int) -> tuple[tuple[int, str] | None, Status]:
    """The lease for mac newer than expiry `after`, once dnsmasq gives one (None after `seconds`,
    or as soon as the domain has ended), and the domain's status."""
    out = remote.run(_WAIT_LEASE(name, mac, lab_host.DNSMASQ_LEASES, str(after), str(seconds)),
                     sudo=True,
                     timeout=seconds + 60).out
    leases, _, listing = out.partition("@@xl\n")
    found = lease_in(leases, mac)
    return (found if found and found[0] > after else None), status_in(listing, name)


def lease_in(leases: str, mac: str) -> tuple[int, str] | None:
    for line in leases.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].lower() == mac and parts[0].isdigit():
            return int(parts[0]), parts[2]
    return None


_FOLLOW = ShellScript('exec tail -n +1 -F "$1" 2>/dev/null', name="xenlab-follow")


def follow_console(remote: Remote, name: str, on_line: Callable[[str], None]) -> Follower:
    """Every line of this boot's console, from its first byte (the create made the log fresh),
    then each new one as it comes: starting after the create misses nothing, even from a guest
    that is already gone."""
    return remote.follow(_FOLLOW(console_log(name)), on_line, sudo=True)


def console_tail(remote: Remote, name: str, lines: int = 5) -> str:
    out = remote.run(["tail", "-n", str(lines), console_log(name)], sudo=True, check=False).out
    return " | ".join(line.strip() for line in out.strip().splitlines() if line.strip())


def diagnose(remote: Remote, name: str, mac: str, config: LabConfig) -> str:
    """Why a guest is not reachable: its console, its vif on the bridge, dnsmasq's view of it."""
    facts = [f"console: {console_tail(remote, name) or 'no console output'}"]
    st = status(remote, name)
    if st.ended:
        facts.append(f"the domain ended ({st.ended})")
    ports = remote.run(["ls", f"/sys/class/net/{config.bridge}/brif"], check=False).out.split()
    vif = f"vif{st.domid}.0"
    facts.append(f"{vif} {'is' if vif in ports else 'is NOT'} a port of {config.bridge}")
    log = remote.run(["grep", "-i", mac, lab_host.DNSMASQ_LOG], sudo=True, check=False).out
    facts.append(f"dnsmasq: {' | '.join(log.strip().splitlines()[-3:]) or 'never heard from ' + mac}")
    return "; ".join(facts)


# -- static addresses --------------------------------------------------------------------------
def static_range(config: LabConfig) -> list[ipaddress.IPv4Address]:
    start, end = ipaddress.IPv4Address(config.static_start), ipaddress.IPv4Address(config.static_end)
    return [ipaddress.IPv4Address(n) for n in range(int(start), int(end) + 1)]


def static_claims(remote: Remote) -> dict[str, str]:
    """Claimed static addresses on the lab host: ip -> domain name."""
    r = remote.run(["find", lab_host.STATIC_DIR, "-maxdepth", "1", "-type", "l", "-printf",
                    r"%f %l\n"],
                   sudo=True, check=False)
    return _claims_in(r.out)


def _claims_in(text: str) -> dict[str, str]:
    """find's "%f %l" lines (the symlink's own name, where it points) as ip -> domain name."""
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def claim_static(remote: Remote, name: str, wanted: str | None, config: LabConfig) -> str:
    """Claim a static address for name: wanted, or the first free one of the static range. A claim
    is a symlink (created atomically: two deploys never get one address); a claim whose domain is
    gone is stale and may be taken over."""
    remote.run(["install", "-d", "-m", "0755", lab_host.STATIC_DIR], sudo=True, what="mkdir")
    claims = static_claims(remote)
    for old, holder in list(claims.items()):  # an earlier deploy of name: its address is free again
        if holder == name and old != wanted:
            remote.run(["rm", "-f", f"{lab_host.STATIC_DIR}/{old}"], sudo=True)
            del claims[old]
    candidates: list[str] = [wanted] if wanted else [str(a) for a in static_range(config)]
    for ip in candidates:
        owner = claims.get(ip)
        if owner is not None and owner != name:
            if status(remote, owner).exists:
                if wanted:
                    bad_input(f"--static {ip}: in use by the guest {owner!r}",
                              hint="leave out the address and xenlab picks a free one")
                continue
            remote.run(["rm", "-f", f"{lab_host.STATIC_DIR}/{ip}"], sudo=True)  # stale: its guest is gone
        if owner != name:
            r = remote.run(["ln", "-s", name, f"{lab_host.STATIC_DIR}/{ip}"], sudo=True, check=False)
            if r.rc != 0:  # another deploy claimed it a moment ago
                if wanted:
                    die(f"--static {ip}: claimed by another deploy just now", hint="try again")
                continue
        # Something outside xenlab may hold it (a guest someone started by hand with this address).
        if answers_ping(remote, ip):
            remote.run(["rm", "-f", f"{lab_host.STATIC_DIR}/{ip}"], sudo=True)
            if wanted:
                bad_input(f"--static {ip}: something on the lab network already answers at it",
                          hint="leave out the address and xenlab picks a free one")
            continue
        return ip
    die(f"no free address left in the static range {config.static_start}-{config.static_end}",
        hint="`xenlab destroy NAME` a static guest, or widen static_start/static_end")


def answers_ping(remote: Remote, ip: str) -> bool:
    # As root: Debian 13's ping has neither setuid nor a capability, and a login user may only
    # ping where ping_group_range allows it (not on the lab host: every static guest timed out).
    return remote.run(["ping", "-c", "1", "-W", "1", ip], sudo=True, check=False).rc == 0


# -- listing and removal -----------------------------------------------------------------------
_REMOVE = ShellScript(SHELL_FUNCTIONS + r"""
name=$1 hosts=$2 static=$3 files=$4
xl destroy "$name"; rc=$?
drop_claims "$static" "$name"
rm -f "$hosts/$name"
case $name in */* | . | .. | '') ;; *) [ -z "$files" ] || rm -rf -- "$files/$name" ;; esac
exit $rc
""", name="xenlab-remove")


def remove(remote: Remote, name: str, check: bool = False, files: bool = False) -> None:
    """The domain and what xenlab set up for it (its static claim, its dnsmasq reservation), in
    one round trip. Never repeated on a dropped connection: `xl destroy` is not safe to repeat.
    files: its uploaded kernel and images too; kept otherwise, so that the next deploy or run of
    the same build finds them by sha256 and sends nothing."""
    remote.run(_REMOVE(name, lab_host.DHCP_HOSTS_DIR, lab_host.STATIC_DIR,
                       lab_host.DOMAINS_DIR if files else ""), sudo=True,
               check=check, what="xl destroy", idempotent=False)


def destroy(lab: Lab, name: str) -> None:
    """The domain, and what xenlab keeps for it on both sides. One this lab deployed that is gone
    already (destroyed by hand, or the lab host rebooted) is forgotten, its leftovers removed:
    a record of it would fail every `xenlab check` from then on."""
    with Remote.open(lab) as remote:
        exists = status(remote, name).exists
        if not exists and name not in lab.state.domains:
            die(f"no domain named {name!r} on the lab", hint="`xenlab list` shows what runs")
        remove(remote, name, check=exists, files=True)
    lab_share.forget(lab.state_dir, name)
    with lab.changing_state() as state:
        state.domains.pop(name, None)
    if not exists:
        from lab import ui

        ui.info(f"{name} was no longer on the lab host: forgotten, its files and address freed")


# What `list` reads, in one round trip ("$1" leases, "$2" static claims); topology reads more
# after it in the same script.
LIST_SCRIPT = r"""
xl list -v
echo @@uptime; xl uptime
echo @@leases; cat "$1" 2>/dev/null
echo @@static; find "$2" -maxdepth 1 -type l -printf '%f %l\n' 2>/dev/null
"""
_LIST = ShellScript(LIST_SCRIPT + "exit 0\n", name="xenlab-list")


def listing(lab: Lab) -> list[dict[str, object]]:
    """Domains as the lab host sees them (one round trip), with MAC, address, uptime, and what
    deploy recorded (address mode, boot arguments, artifact hashes)."""
    with Remote.open(lab) as remote:
        out = remote.run(_LIST(lab_host.DNSMASQ_LEASES, lab_host.STATIC_DIR), sudo=True,
                         what="xl list").out
    return guests(sections(out, "xl"), lab.state.domains)


def sections(out: str, first: str) -> dict[str, list[str]]:
    """A script's output split at its `@@name` lines; what comes before the first is `first`."""
    section: dict[str, list[str]] = {first: []}
    current = first
    for line in out.splitlines():
        if line.startswith("@@"):
            current = line[2:]
            section[current] = []
        else:
            section[current].append(line)
    return section


def guests(section: dict[str, list[str]], known: dict[str, DomainRecord]) -> list[dict[str, object]]:
    uptimes = {p[0]: _seconds(" ".join(p[2:])) for p in map(str.split, section.get("uptime", []))
               if len(p) >= 3 and p[1].isdigit()}
    by_mac = {p[1].lower(): p[2] for p in map(str.split, section.get("leases", [])) if len(p) >= 3}
    static = {owner: ip for ip, owner in _claims_in("\n".join(section.get("static", []))).items()}
    rows = []
    for p in map(str.split, section["xl"][1:]):
        if len(p) < 6 or p[0] == "Domain-0" or not p[1].isdigit():
            continue
        name = p[0]
        record = known.get(name, DomainRecord())
        mac = None if record.address == "none" else record.mac or guest_mac(name)
        rows.append({"name": name, "id": int(p[1]), "memory": int(p[2]),
                     "state": _ended(p) or "running",
                     "uptime_s": uptimes.get(name), "cpu_s": float(p[5]), "mac": mac,
                     "ip": static.get(name) or (by_mac.get(mac) if mac else None),
                     "address": "static" if name in static else record.address,
                     "boot_args": record.boot_args, "sha256": record.sha256})
    return rows


def _seconds(text: str) -> float | None:
    """`xl uptime`'s "1 day, 2:03:04" or "0:01:02" as seconds."""
    days = 0
    if "day" in text:
        head, _, text = text.partition(",")
        with contextlib.suppress(ValueError):
            days = int(head.split()[0])
    try:
        nums = [int(float(x)) for x in text.strip().split(":")]
    except ValueError:
        return None
    h, m, s = [0, 0, 0, *nums][-3:]
    return float(days * 86400 + h * 3600 + m * 60 + s)


def wait_ended(remote: Remote, name: str, timeout: float, poll: float = 0.5,
               stop: threading.Event | None = None) -> Status | None:
    """The status once the domain has ended (or vanished), None after timeout or once stop is
    set (a suite interrupted: its runs stop waiting, and remove their domains)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        st = status(remote, name)
        if not st.running:
            return st
        time.sleep(poll)
    return None
