from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="session")
def xen():
    """libxlutil, Xen's own .xl parser: the oracle. CI installs it; a dev box without it skips."""
    from xen_oracle import Unavailable, Xen

    try:
        return Xen()
    except Unavailable as exc:
        from lab.releases import RELEASES

        names = " or ".join(r.xen_parser_package for r in RELEASES.values())
        pytest.skip(f"libxlutil not installed (./install.sh, or apt-get install {names}): {exc}")
