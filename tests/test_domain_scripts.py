"""Deploy's lab-side scripts (lab/lab_steps.py), run by this machine's /bin/sh (dash, as in the
lab's dom0) over temporary directories. Xen cannot run here: `xl` is a stand-in
that prints `xl list -v` as Xen 4.17 prints it (recorded from the QEMU lab) and logs what it is
asked; the QEMU tier runs the script on real Xen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab import lab_steps
from lab.remote import ShellScript

HEADER = ("Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID"
          "                            Reason-Code\tSecurity Label")
ROW = "web                                         17   128     1     {flags}       3.7 " \
      "d572934a-34c9-4abd-878c-7c7ea35536f9        {reason}                -"


def fake_xl(bin_dir: Path, listing: str) -> Path:
    log = bin_dir / "xl.log"
    (bin_dir / "xl").write_text(f"""#!/bin/sh
echo "$*" >> {log}
case "$1" in
  list) [ -n '{listing}' ] && printf '%s\\n' '{listing}' ;;
esac
exit 0
""")
    (bin_dir / "xl").chmod(0o755)
    return log


def run_script(tmp: Path, script: ShellScript, listing: str = "", mac: str | None = None,
               **values: str) -> tuple[subprocess.CompletedProcess[str], str, lab_steps.Step]:
    """script with values (lab_steps.VARS) and this test's directories; the stand-in xl's log."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = fake_xl(bin_dir, listing)
    for sub in ("hosts", "static"):
        (tmp / sub).mkdir(exist_ok=True)
    values = {"name": "web", "dir": str(tmp / "domains" / "web"), "owner": "root",
              "hosts": str(tmp / "hosts"), "static": str(tmp / "static"), "mac": mac or "", **values}
    r = subprocess.run(script(*(values.get(v, "") for v in lab_steps.VARS)).argv(), capture_output=True,
                       text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    step = lab_steps.Step.parse(r.stdout, r.stderr, r.returncode, "web", mac)
    return r, log.read_text() if log.exists() else "", step


@pytest.mark.parametrize("flags,reason,room,ended,destroyed", [
    ("-b----", "-", "keep", None, False),      # running, kept: nothing done
    ("-b----", "-", "replace", None, True),    # running, replaced
    ("---s--", "0", "keep", "poweroff", True),  # powered off: removed even when keeping
    ("--p--c", "-", "keep", "crash", True),    # crashed, no reason code yet
])
def test_make_room_reads_the_row_as_python_does(tmp_path: Path, flags: str, reason: str, room: str,
                                                ended: str | None, destroyed: bool) -> None:
    listing = HEADER + "\n" + ROW.format(flags=flags, reason=reason)
    r, log, there = run_script(tmp_path, lab_steps.PREPARE_ROOM, listing, room=room)
    assert r.returncode == 0, r.stderr
    assert there.before.exists and there.before.ended == ended
    assert ("destroy web" in log) == destroyed
    # A running domain that is kept stops the script before it touches anything else.
    assert (tmp_path / "domains" / "web").is_dir() == destroyed


def test_files_are_hashed_and_debris_removed(tmp_path: Path) -> None:
    d = tmp_path / "domains" / "web"
    d.mkdir(parents=True)
    (d / "web.xen").write_bytes(b"kernel")
    (d / "disk.img").write_bytes(b"image")
    (d / "web.xl").write_text("name = 'web'\n")  # the lab copy: rewritten, never hashed
    (d / "web.xen.partial-123").write_bytes(b"half")
    (tmp_path / "hosts").mkdir()
    (tmp_path / "hosts" / "web").write_text("00:16:3e:00:00:01,192.168.77.9\n")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "192.168.77.201").symlink_to("web")
    (tmp_path / "static" / "192.168.77.202").symlink_to("other")
    r, log, there = run_script(tmp_path, lab_steps.PREPARE_ROOM, room="keep")
    assert r.returncode == 0, r.stderr
    assert not there.before.exists and "destroy" not in log
    assert set(there.sha256) == {"web.xen", "disk.img"}
    assert there.sha256["web.xen"] == subprocess.run(["sha256sum", d / "web.xen"], capture_output=True,
                                                     text=True).stdout.split()[0]
    assert not (d / "web.xen.partial-123").exists()
    assert not (tmp_path / "hosts" / "web").exists()
    assert sorted(p.name for p in (tmp_path / "static").iterdir()) == ["192.168.77.202"]


LEASES = "1795376579 00:16:3e:72:af:79 192.168.77.51 * 01:00:16:3e:72:af:79\n" \
         "1795376000 00:16:3e:00:00:02 192.168.77.52 * *\n"


@pytest.mark.parametrize("mounted_id,created", [("abc123", True), ("another-lab", False), ("", False)])
def test_one_round_trip_creates_only_from_this_labs_folder(tmp_path: Path, mounted_id: str,
                                                           created: bool) -> None:
    share_id = tmp_path / "share-id"
    if mounted_id:
        share_id.write_text(mounted_id + "\n")
    (tmp_path / "leases").write_text(LEASES)
    (tmp_path / "console.log").write_text("the previous boot\n")
    xl = tmp_path / "domains" / "web" / "web.xl"
    # "/proc" is mounted here already: the script must not try to mount anything.
    r, log, step = run_script(tmp_path, lab_steps.LAUNCH, mac="00:16:3e:72:af:79", room="keep",
                              share="/proc", tag="unused", share_id=str(share_id),
                              expect_share="abc123", log=str(tmp_path / "console.log"),
                              leases=str(tmp_path / "leases"), xl=str(xl), text="name = 'web'\n")
    assert r.returncode == 0, r.stderr
    assert step.share_id == mounted_id and step.created == created
    assert ("create " + str(xl)) in log if created else "create" not in log
    if created:
        assert xl.read_text() == "name = 'web'\n"
        assert (tmp_path / "console.log.1").read_text() == "the previous boot\n"
        assert step.lease_before == (1795376579, "192.168.77.51")


class ThisMachine:
    """The lab host's shell, here: the transport is the only thing stood in for (the commands
    run as they would after `sudo -n`); the scripts and their parsing are lab_steps' own."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.target = type("Target", (), {"user": "root"})()

    def run(self, cmd: ShellScript, **kw: object) -> object:
        from lab.remote import Result

        r = subprocess.run(cmd.argv(), capture_output=True, text=True,
                           env={"PATH": f"{self.bin_dir}:/usr/bin:/bin"})
        return Result(r.returncode, r.stdout, r.stderr)

    def write_text(self, path: str, text: str) -> None:  # SFTP's part: a long lab copy
        Path(path).write_text(text)


def test_launch_and_create_through_the_python_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import lab_host

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = fake_xl(bin_dir, "")
    # The lab host's layout moved under tmp_path: one module says where everything is.
    for const, value in (("DHCP_HOSTS_DIR", tmp_path / "hosts"), ("STATIC_DIR", tmp_path / "static"),
                         ("DOMAINS_DIR", tmp_path / "domains"), ("DNSMASQ_LEASES", tmp_path / "leases"),
                         ("CONSOLE_LOGS", tmp_path)):
        monkeypatch.setattr(lab_host, const, str(value))
    (tmp_path / "leases").write_text(LEASES)
    monkeypatch.setattr(lab_host, "SHARE_MOUNT", "/proc")  # mounted: nothing to mount
    monkeypatch.setattr(lab_steps.lab_share, "id_file", lambda: str(tmp_path / "id"))
    (tmp_path / "id").write_text("abc123\n")
    remote = ThisMachine(bin_dir)
    xl = f"{tmp_path}/domains/web/web.xl"
    step = lab_steps.launch(remote, "web", replace=False, share_id="abc123",  # type: ignore[arg-type]
                            mac="00:16:3e:72:af:79", lab_xl=xl, text="name = 'web'\n")
    assert step.created and step.rc == 0 and step.lease_before == (1795376579, "192.168.77.51")
    assert f"create {xl}" in log.read_text()
    again = lab_steps.create(remote, "web", None, xl, "x" * (lab_steps.ARGUMENT_MAX + 1))  # type: ignore[arg-type]
    assert again.created and again.lease_before is None
    assert Path(xl).read_text() == "x" * (lab_steps.ARGUMENT_MAX + 1)  # written, not passed
