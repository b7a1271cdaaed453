"""What `xenlab status` and `check` say of the lab host's Xen, from `xl info` as Xen prints it."""

from __future__ import annotations

import pytest

from lab.xen_info import XenInfo

# Recorded from labs of this project: Debian 13's Xen under QEMU/TCG (qemu64,+svm,+npt), and
# Debian 12's with the shadow paging the lab used to ask for.
TRIXIE = """\
xen_version            : 4.20.5-pre
virt_caps              : pv hvm hap gnttab-v1 gnttab-v2
xen_commandline        : placeholder dom0_mem=768M,max:768M console=com1 com1=115200,8n1
"""
BOOKWORM_SHADOW = """\
xen_version            : 4.17.5-pre
virt_caps              : pv hvm hvm_directio pv_directio hap shadow gnttab-v1
xen_commandline        : placeholder dom0_mem=768M,max:768M console=com1 com1=115200,8n1 hap=0
"""
NO_HVM = "xen_version            : 4.17.5-pre\nvirt_caps              : pv pv_directio\n"


@pytest.mark.parametrize(("text", "version", "paging", "summary"), [
    (TRIXIE, "4.20.5-pre", "hap", "Xen 4.20.5-pre, HAP paging"),
    (BOOKWORM_SHADOW, "4.17.5-pre", "shadow", "Xen 4.17.5-pre, shadow paging"),
    (NO_HVM, "4.17.5-pre", "none", "Xen 4.17.5-pre, no HVM (PV guests only)"),
    ("", "unknown", "none", "Xen unknown, no HVM (PV guests only)"),
])
def test_version_and_paging_as_xl_info_says(text: str, version: str, paging: str, summary: str) -> None:
    info = XenInfo.parse(text)
    assert (info.version, info.paging, info.summary()) == (version, paging, summary)


def test_the_command_line_is_kept_whole() -> None:
    assert XenInfo.parse(TRIXIE).cmdline == "placeholder dom0_mem=768M,max:768M console=com1 com1=115200,8n1"
