"""What the lab host's Xen is: its version, how it pages PVH/HVM guests, its command line.

Read from `xl info` (sudo: xl is not on a login user's PATH); `xenlab status` and `xenlab check`
name it, so that a report says which Xen and which paging mode a unikernel ran on.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.errors import LabError
from lab.remote import Remote


@dataclass(frozen=True)
class XenInfo:
    version: str
    paging: str  # hap, shadow (hap=0 or no EPT/NPT), or "none" (no HVM: PV guests only)
    cmdline: str

    @classmethod
    def parse(cls, text: str) -> XenInfo:
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        caps = fields.get("virt_caps", "").split()
        cmdline = fields.get("xen_commandline", "")
        # HAP where the CPU has EPT/NPT (virt_caps: hap), unless Xen was told otherwise.
        told_off = any(w in ("hap=0", "hap=no", "hap=false", "hap=off", "no-hap") for w in cmdline.split())
        paging = ("none" if "hvm" not in caps else
                  "hap" if "hap" in caps and not told_off else "shadow")
        return cls(fields.get("xen_version", "unknown"), paging, cmdline)

    def summary(self) -> str:
        paging = {"none": "no HVM (PV guests only)", "hap": "HAP paging",
                  "shadow": "shadow paging"}[self.paging]
        return f"Xen {self.version}, {paging}"


def read(remote: Remote) -> XenInfo:
    r = remote.run(["xl", "info"], sudo=True, check=False, what="xl info")
    if r.rc != 0:
        raise LabError("the lab host's Xen does not answer `xl info`",
                       hint="is the lab host running Xen? `xenlab check` says more")
    return XenInfo.parse(r.out)
