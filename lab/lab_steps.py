"""The lab host's side of putting a domain on it: shell fragments, composed into one script per
round trip.

A round trip costs ~0.1 s on a lab under TCG, sudo ~0.13 s more, and every process dom0 starts
tens of milliseconds (the fragments use shell builtins where they can). So a deploy through the
shared folder makes room, prepares, writes the lab copy and runs `xl create` in one round trip
(LAUNCH); one that uploads over SSH needs the hashes of what is there first (PREPARE, then
CREATE); one that claims a static address in between makes room on its own (MAKE_ROOM).

Every fragment reads shell variables named in VARS, set from the script's positional arguments:
values are never spliced into the text. Each prints what the caller parses (Step.parse).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab import domain, lab_host
from lab import share as lab_share
from lab.errors import die
from lab.remote import Remote, ShellScript

VARS = ("name", "room", "dir", "owner", "hosts", "static", "keep_static", "share", "tag",
        "share_id", "expect_share", "log", "leases", "mac", "xl", "text")

# room = keep | replace: a running domain of that name stays (and the script stops: the caller
# refuses) unless replacing; one that runs and is replaced, or ended, goes. Xen's reason code,
# else the flags c (crashed), s (shut down), d (dying), tell an ended domain (the shell function
# `ended` of domain.SHELL_FUNCTIONS, as domain._ended).
ROOM = r"""
listing=$(xl list -v "$name" 2>/dev/null)
printf '@@xl\n%s\n@@end\n' "$listing"
if [ -n "$listing" ]; then
  nl='
'
  set -f; set -- ${listing#*"$nl"}; set +f  # the domain's row, after the header line
  ended "$5" "$8" || [ "$room" = replace ] || exit 0
  xl destroy "$name" || exit 1
fi
"""

# Drop what an earlier deploy of name set up (its dnsmasq reservation, its static claim unless
# it has just claimed one, half-sent files) and make its directory.
FILES = r"""
[ -e "$hosts/$name" ] && rm -f "$hosts/$name"
[ "$keep_static" = 1 ] || drop_claims "$static" "$name"
[ -d "$dir" ] || install -d -m 0755 -o "$owner" "$dir" || exit 1
for f in "$dir"/*.partial-*; do [ -e "$f" ] && rm -f -- "$f"; done
"""

# What an upload may skip: the sha256 of the kernels and images there (the lab copy and the
# reservation are rewritten every time).
HASHES = r"""
cd "$dir" || exit 1
set --
for f in *; do
  case $f in *.xl | dhcp-host) continue ;; esac
  [ -f "$f" ] && set -- "$@" "$f"
done
[ $# -eq 0 ] || sha256sum -- "$@"
cd /
"""

# Mount the shared folder if it is not, and say whose it is (its id file).
SHARE = r"""
id=
if [ -n "$share" ]; then
  mounted=
  while read -r _ point _; do [ "$point" = "$share" ] && mounted=1; done < /proc/mounts
  [ -n "$mounted" ] || { mkdir -p "$share" &&
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$tag" "$share"; } >/dev/null 2>&1
  { read -r id < "$share_id"; } 2>/dev/null
  printf '@@share %s\n' "$id"
fi
"""

# Only this lab's folder holds the files the lab copy names: another's, or none, stops here.
SHARED_ONLY = r"""
[ -n "$id" ] && [ "$id" = "$expect_share" ] || exit 0
"""

# Write the lab copy (unless it went by SFTP: too long for an argument), give this boot a fresh
# console log (the previous one kept as .1), print the lease mac holds before, and create.
CREATE = r"""
if [ -n "$text" ]; then printf '%s' "$text" > "$xl.new" && mv -f "$xl.new" "$xl" || exit 1; fi
if [ -e "$log" ]; then mv -f "$log" "$log.1"; fi
[ -z "$mac" ] || leases_of "$mac" "$leases"
echo @@create
exec xl create "$xl"
"""


def _script(name: str, *fragments: str) -> ShellScript:
    return ShellScript("\n".join([ShellScript.naming(VARS), domain.SHELL_FUNCTIONS, *fragments,
                                  "exit 0\n"]), name=name)


MAKE_ROOM = _script("xenlab-make-room", ROOM)
PREPARE = _script("xenlab-prepare", FILES, HASHES, SHARE)
PREPARE_ROOM = _script("xenlab-prepare", ROOM, FILES, HASHES, SHARE)
CREATE_ONLY = _script("xenlab-create", CREATE)
LAUNCH = _script("xenlab-launch", ROOM, FILES, SHARE, SHARED_ONLY, CREATE)

# An argument longer than this goes by SFTP instead (Linux refuses one over 128 KiB).
ARGUMENT_MAX = 64 * 1024


@dataclass(frozen=True)
class Step:
    """What a round trip found and did."""

    before: domain.Status = field(default_factory=lambda: domain.Status(False))  # before (ROOM)
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> hash (HASHES)
    share_id: str = ""  # the id of the shared folder the lab host has mounted (SHARE)
    created: bool = False  # xl create ran (CREATE)
    lease_before: tuple[int, str] | None = None  # the lease mac held before the create
    rc: int = 0  # the script's exit status: xl create's, once it ran
    output: str = ""  # what xl create said

    @classmethod
    def parse(cls, out: str, err: str, rc: int, name: str, mac: str | None) -> Step:
        head, created, after = out.partition("@@create\n")
        listing, _, rest = head.partition("@@end\n") if "@@xl\n" in head else ("", "", head)
        hashes, share_id = {}, ""
        for line in rest.splitlines():
            parts = line.split()
            if parts[:1] == ["@@share"]:
                share_id = parts[1] if len(parts) == 2 else ""
            elif len(parts) == 2:
                hashes[parts[1].lstrip("*")] = parts[0]
        return cls(domain.status_in(listing.partition("@@xl\n")[2], name), hashes, share_id,
                   bool(created), domain.lease_in(rest, mac) if mac else None, rc, after + err)


def _run(remote: Remote, script: ShellScript, **values: str) -> Step:
    r = remote.run(script(*(values.get(v, "") for v in VARS)), sudo=True, check=False,
                   timeout=300, what=script.name, idempotent=script is PREPARE)
    step = Step.parse(r.out, r.err, r.rc, values["name"], values.get("mac") or None)
    if r.rc != 0 and not step.created:
        die(f"{script.name} failed on the lab host: {r.err.strip() or f'exit {r.rc}'}")
    return step


def _files(remote: Remote, name: str, static: bool) -> dict[str, str]:
    return {"dir": domain.directory(name), "owner": remote.target.user, "hosts": lab_host.DHCP_HOSTS_DIR,
            "static": lab_host.STATIC_DIR, "keep_static": "1" if static else ""}


def _shared(share: bool) -> dict[str, str]:
    return {"share": lab_host.SHARE_MOUNT, "tag": lab_share.TAG, "share_id": lab_share.id_file()} \
        if share else {}


def _created(remote: Remote, name: str, mac: str | None, lab_xl: str, text: str) -> dict[str, str]:
    if len(text.encode()) > ARGUMENT_MAX:
        remote.write_text(lab_xl, text)
        text = ""
    return {"log": domain.console_log(name), "leases": lab_host.DNSMASQ_LEASES, "mac": mac or "",
            "xl": lab_xl, "text": text}


def make_room(remote: Remote, name: str, replace: bool) -> Step:
    """Only make room (`xl destroy` inside: never run twice)."""
    return _run(remote, MAKE_ROOM, name=name, room="replace" if replace else "keep")


def prepare(remote: Remote, name: str, *, static: bool = False, share: bool = False,
            room: str = "") -> Step:
    """Before uploads over SSH: (room: make room first) the files, their hashes, the share."""
    return _run(remote, PREPARE_ROOM if room else PREPARE, name=name, room=room,
                **_files(remote, name, static), **_shared(share))


def create(remote: Remote, name: str, mac: str | None, lab_xl: str, text: str) -> Step:
    """Write the lab copy (text) and `xl create` it (never run twice)."""
    return _run(remote, CREATE_ONLY, name=name, **_created(remote, name, mac, lab_xl, text))


def launch(remote: Remote, name: str, *, replace: bool, share_id: str, mac: str | None,
           lab_xl: str, text: str) -> Step:
    """Everything in one round trip, for a lab copy whose files are in the shared folder: make
    room, prepare, check the share is this lab's (share_id), write the lab copy, create. Not
    created when a running domain is kept, or when the share is not this lab's."""
    return _run(remote, LAUNCH, name=name, room="replace" if replace else "keep",
                expect_share=share_id, **_files(remote, name, False), **_shared(True),
                **_created(remote, name, mac, lab_xl, text))
