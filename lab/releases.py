"""The Debian releases a lab host may run, and everything that differs between them, in one table.

The QEMU base image, the Vagrant box, admission of an existing host, install.sh (through
`python3 -m lab.releases`), the tests' Xen parser and the contract tests all read this table:
supporting a new release is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    version: str  # as /etc/os-release's VERSION_ID says it
    suite: str
    xen: str  # the Xen series the release's security suite maintains
    vagrant_box: str
    # Where the machine that runs the lab VM gets QEMU 10 from ("": the release's own). One QEMU
    # on every supported host: 10.0 is what Debian 13 has, and its TCG gives RDSEED, which
    # Unikraft needs and 7.2 lacks (bench/boot_table.md has the boot measurements behind it).
    qemu_suite: str = ""

    @property
    def name(self) -> str:
        return f"Debian {self.version} ({self.suite})"

    @property
    def security_suite(self) -> str:
        return f"{self.suite}-security"

    @property
    def xen_parser_package(self) -> str:
        """Xen's own .xl parser (libxlutil), the oracle of the tests."""
        return f"libxenmisc{self.xen}"

    @property
    def xen_parser_library(self) -> str:
        return f"libxlutil.so.{self.xen}"

    @property
    def xen_light_library(self) -> str:
        return f"libxenlight.so.{self.xen}"

    def apt_sources(self, mirror: str, security_mirror: str) -> str:
        """A lab host's sources: the release, its point-release updates and its security suite
        (Debian's security-supported Xen lives only there)."""
        return "".join(f"deb {url} {suite} main\n" for url, suite in (
            (mirror, self.suite), (mirror, f"{self.suite}-updates"),
            (security_mirror, self.security_suite)))


RELEASES = {r.version: r for r in (
    Release("12", "bookworm", "4.17", "debian/bookworm64", qemu_suite="bookworm-backports"),
    # The current stable release: a new lab is made of it.
    Release("13", "trixie", "4.20", "debian/trixie64"),
)}
DEFAULT = "13"


def by_os(os_id: str) -> Release | None:
    """The release of a host whose os-release reads `debian VERSION_ID` (admission's form)."""
    distro, _, version = os_id.partition(" ")
    return RELEASES.get(version) if distro == "debian" else None


def supported() -> str:
    return " and ".join(r.name for r in RELEASES.values())


if __name__ == "__main__":
    # install.sh asks what depends on the release it runs on: `python3 -m lab.releases
    # VERSION_ID` prints the Xen parser package and QEMU's suite ("-": the release's own), or fails.
    import sys

    release = RELEASES.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if release is None:
        sys.exit(f"xenlab supports {supported()}")
    print(release.xen_parser_package, release.qemu_suite or "-")
