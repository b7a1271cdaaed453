"""A fake lab host, named as such: this machine's shell in a temporary directory, laid out as
lab/lab_host.py declares (moved under the directory, which is one edit there), with stand-ins for
what cannot run here: Xen (`xl`), dnsmasq handing out a lease, and the guests answering `ping` or
a probe. Everything else deploy does on a lab host (its scripts, find, install, sha256sum, the
dnsmasq reservation and static-claim files, the shared folder's id) runs for real.

The stand-in `xl` keeps each domain as a file; `xl create` reads the lab copy as Xen would need
to: the name, the vif's MAC (and then leases an address for it, as dnsmasq would for a guest that
asks), a static address from the boot arguments (which then answers ping), and the kernel's file
name, which scripts what the guest does: `*refused*` is refused by xl; `*crash*` crashes at boot
(printing Solo5's ABORT line); `*exit-N*` prints Solo5's `solo5_exit(N) called` and powers off
after `*-sleep-T*` tenths of a second (else at once); anything else runs until destroyed. `xl info`
reports FREE_MB of free memory; $xen.peak records how many domains ran at each create.
What the real lab adds (Xen, a bridge, a guest that boots): the QEMU tier.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab import lab_host
from lab.errors import die
from lab.remote import Result, ShellScript, sha256_file

HEADER = ("Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID"
          "                            Reason-Code\tSecurity Label")

XL = r"""#!/bin/sh
# Stand-in for Xen's xl (tests/fake_lab_host.py).
xen=@XEN@ leases=@LEASES@ reservations=@HOSTS@ consoles=@CONSOLES@
echo "$*" >> "$xen.log"
row() { # name state
  case $2 in
    running) flags=-b---- reason=- ;;
    crash) flags=--p--c reason=3 ;;
    *) flags=---s-- reason=0 ;;
  esac
  printf '%-43s %4s %5s %5s     %s       3.7 %s        %s                -\n' \
    "$1" 7 32 1 "$flags" d572934a-34c9-4abd-878c-7c7ea35536f9 "$reason"
}
case $1 in
  list)
    shift; [ "$1" = -v ] && shift
    if [ -n "$1" ]; then [ -f "$xen/$1" ] || { echo "invalid domain identifier" >&2; exit 1; }; set -- "$1"
    else set -- $(ls "$xen"); fi
    echo '@HEADER@'
    for n; do row "$n" "$(cat "$xen/$n")"; done ;;
  uptime) echo "Name ID Uptime"; for n in $(ls "$xen"); do echo "$n 7 0:00:05"; done ;;
  domid) [ -f "$xen/$2" ] ;;
  info) echo "free_memory            : $(cat "$xen.free" 2>/dev/null || echo 1024)" ;;
  destroy) [ -f "$xen/$2" ] || exit 1; rm -f "$xen/$2" "$xen"/ip-*."$2" ;;
  create)
    name=$(sed -n "s/^name = '\(.*\)'$/\1/p" "$2")
    kernel=$(sed -n "s/^kernel = '\(.*\)'$/\1/p" "$2")
    case $kernel in *refused*) echo "libxl: error: the stand-in refuses $kernel" >&2; exit 1 ;; esac
    [ -f "$kernel" ] || { echo "libxl: error: $kernel: no such file" >&2; exit 1; }
    [ -f "$xen/$name" ] && { echo "libxl: error: domain $name exists" >&2; exit 1; }
    console=$consoles/guest-$name.log
    case $kernel in *crash*)  # no lease, no answer
      echo "Solo5: ABORT: kernel.c:42: the stand-in aborts" > "$console"; echo crash > "$xen/$name"; exit 0 ;;
    esac
    echo running > "$xen/$name"
    grep -lx running "$xen"/* 2>/dev/null | wc -l >> "$xen.peak"
    case $kernel in *exit-*)
      status=${kernel##*exit-}; status=${status%%[!0-9]*}
      tenths=0; case $kernel in *-sleep-*) tenths=${kernel##*-sleep-}; tenths=${tenths%%[!0-9]*} ;; esac
      echo "Solo5: Xen console: the stand-in" > "$console"
      ( sleep "$((tenths / 10)).$((tenths % 10))"; echo "Solo5: solo5_exit($status) called" >> "$console"
        [ -f "$xen/$name" ] && echo poweroff > "$xen/$name" ) >/dev/null 2>&1 &
      ;;
    esac
    mac=$(sed -n "s/.*mac=\([0-9a-f:]*\).*/\1/p" "$2")
    ip=$(sed -n "s/.*ipv4=\([0-9.]*\)\/.*/\1/p" "$2")
    if [ -n "$ip" ]; then touch "$xen/ip-$ip.$name"
    elif [ -n "$mac" ]; then
      # dnsmasq's part: a reservation for the MAC (deploy --ip), else the address it had, else
      # the next free one; the lease replaces the MAC's old one, with a later expiry.
      reserved=$(cat "$reservations/$name" 2>/dev/null)
      old=$(grep " $mac " "$leases")
      address=${reserved#*,}
      [ -n "$address" ] || address=$(echo "$old" | awk '{ print $3 }')
      [ -n "$address" ] || address=192.168.77.$(( $(wc -l < "$leases") + 50 ))
      expiry=$(( $(date +%s) + 43200 )) before=$(echo "$old" | awk '{ print $1 }')
      [ "$expiry" -gt "${before:-0}" ] || expiry=$((before + 1))
      grep -v " $mac " "$leases" > "$leases.new"; mv "$leases.new" "$leases"
      echo "$expiry $mac $address * *" >> "$leases"
    fi ;;
esac
exit 0
"""

# A guest answers at an address while its domain runs there (static guests only: a leased one
# answers wherever its lease says).
PING = r"""#!/bin/sh
for ip; do :; done
for f in @XEN@/ip-"$ip".*; do [ -e "$f" ] && exit 0; done
exit 1
"""

# The probe runs `python3 -c ...` on the lab host: a guest that runs answers it.
PYTHON3 = "#!/bin/sh\nexit 0\n"
SYSTEMCTL = "#!/bin/sh\nexit 0\n"  # dnsmasq's SIGHUP: nothing to tell here


class _Follower:
    """remote.Follower's part: each line of a running command, on a thread, until stop()."""

    def __init__(self, proc: subprocess.Popen[str], on_line: Any) -> None:
        import threading

        self.proc = proc
        self.thread = threading.Thread(target=self._read, args=(on_line,), daemon=True)
        self.thread.start()

    def _read(self, on_line: Any) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            on_line(line.rstrip("\n"))

    def stop(self, linger: float = 0.0) -> None:
        self.proc.kill()
        self.proc.wait()
        self.thread.join(timeout=5)


class FakeLabHost:
    """The Remote deploy is handed; run() runs argv or a script here, as root (sudo's part)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.xen = root / "xen"
        self.xen.mkdir(parents=True)
        self.bin = root / "bin"
        self.bin.mkdir()
        layout = {"STATE_DIR": "var/lib/xenlab", "DOMAINS_DIR": "var/lib/xenlab/domains",
                  "STATIC_DIR": "var/lib/xenlab/static-ips", "SHARE_MOUNT": "var/lib/xenlab/share",
                  "DHCP_HOSTS_DIR": "etc/xenlab/dhcp-hosts", "DNSMASQ_LEASES": "var/lib/misc/leases",
                  "DNSMASQ_LOG": "var/log/dnsmasq.log", "CONSOLE_LOGS": "var/log/xen/console"}
        for const, rel in layout.items():
            monkeypatch.setattr(lab_host, const, str(root / rel))
        for d in ("DOMAINS_DIR", "DHCP_HOSTS_DIR", "CONSOLE_LOGS"):
            Path(getattr(lab_host, d)).mkdir(parents=True)
        Path(lab_host.DNSMASQ_LEASES).parent.mkdir(parents=True)
        Path(lab_host.DNSMASQ_LEASES).write_text("")
        where = {"@XEN@": str(self.xen), "@LEASES@": lab_host.DNSMASQ_LEASES,
                 "@HOSTS@": lab_host.DHCP_HOSTS_DIR, "@CONSOLES@": lab_host.CONSOLE_LOGS,
                 "@HEADER@": HEADER}
        for name, text in (("xl", XL), ("ping", PING), ("python3", PYTHON3), ("systemctl", SYSTEMCTL)):
            for mark, value in where.items():
                text = text.replace(mark, value)
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.target = type("Target", (), {"user": "root"})()

    # -- what the tests look at --
    def domains(self) -> dict[str, str]:
        return {p.name: p.read_text().strip() for p in self.xen.iterdir()
                if p.is_file() and not p.name.startswith("ip-")}

    def peak(self) -> int:
        """The most domains running at once."""
        peaks = self.xen.with_suffix(".peak")
        return max(map(int, peaks.read_text().split())) if peaks.exists() else 0

    def free_memory(self, mib: int) -> None:
        self.xen.with_suffix(".free").write_text(f"{mib}\n")

    def xl_log(self) -> str:
        log = self.xen.with_suffix(".log")
        return log.read_text() if log.exists() else ""

    # -- the Remote interface --
    def run(self, cmd: Any, *, sudo: bool = False, check: bool = True, timeout: float = 120,
            what: str | None = None, idempotent: bool = True) -> Result:
        argv = cmd.argv() if isinstance(cmd, ShellScript) else list(cmd)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           env={"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin"})
        if check and r.returncode != 0:
            die(f"{what or argv[0]} failed on the lab host: {r.stderr.strip() or r.returncode}")
        return Result(r.returncode, r.stdout, r.stderr)

    def write_text(self, remote: str, text: str) -> None:
        Path(remote).write_text(text)

    def put(self, local: Path, remote: str, progress: Any = None, remote_sha256: str | None = None,
            local_sha256: str | None = None) -> int:
        there = remote_sha256 if remote_sha256 is not None else (
            sha256_file(Path(remote)) if Path(remote).exists() else "")
        if there and there == (local_sha256 or sha256_file(local)):
            return 0
        shutil.copyfile(local, remote)
        return local.stat().st_size

    def follow(self, cmd: ShellScript, on_line: Any, *, sudo: bool = False) -> _Follower:
        return _Follower(subprocess.Popen(cmd.argv(), stdout=subprocess.PIPE, text=True,
                                          env={"PATH": f"{self.bin}:/usr/bin:/bin"}), on_line)

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeLabHost:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def lab_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeLabHost]:
    """A user's directory (tmp_path/work, the current one) with a lab recorded in it, whose lab
    host is a fake one (tmp_path/host): every connection xenlab opens to it is the fake's."""
    import json

    from lab.core import deploy
    from lab.remote import Remote

    host = FakeLabHost(tmp_path / "host", monkeypatch)
    work = tmp_path / "work"
    (work / ".xenlab").mkdir(parents=True)
    (work / ".xenlab" / "state.json").write_text(json.dumps(
        {"provider": "qemu", "provisioned": True,
         "ssh": {"host": "127.0.0.1", "port": 22, "user": "root", "identity": "/k"}}))

    class Connecting:  # the SSH connection deploy opens beside its local work
        def __init__(self, lab: object) -> None:
            pass

        def wait(self) -> FakeLabHost:
            return host

        def discard(self) -> None:
            pass

    monkeypatch.setattr(deploy, "Connecting", Connecting)
    monkeypatch.setattr(Remote, "open", classmethod(lambda cls, lab: host))
    monkeypatch.chdir(work)
    return work, host
