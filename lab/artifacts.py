"""Finding the files an .xl file names, and the image recipes MirageOS leaves next to it.

MirageOS writes absolute build-host paths (`/home/alice/src/app/app.xen`); on the user's machine the
same file usually sits next to the .xl file. The rule everywhere: the path as written if it exists,
else the same name next to the .xl file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_KINDS = ("fat", "tar")


def is_file(p: Path) -> bool:
    """Path.is_file, with a name the system refuses (a component over 255 bytes, a NUL) as no
    file rather than an error: .xl files carry paths from other machines."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def locate(written: str, xl_dir: Path) -> Path | None:
    p = Path(written)
    candidates = [p] if p.is_absolute() else [xl_dir / p]
    candidates.append(xl_dir / p.name)
    for c in candidates:
        if is_file(c):
            return c
    return None


@dataclass(frozen=True)
class Recipe:
    """An image to build: its file name, FAT or tar, and the directory of data it holds."""

    image: str
    kind: str
    data_dir: Path

    @classmethod
    def parse(cls, spec: str, cwd: Path) -> Recipe:
        """`fat_block1.img=data/` or `fat:disk.img=data/` (the kind from the prefix or the name)."""
        from lab.errors import bad_input

        image, sep, directory = spec.partition("=")
        if not sep or not image or not directory:
            bad_input(f"--image {spec!r}: expected IMAGE=DIRECTORY",
                      hint="for example --image fat_block1.img=data/")
        kind, colon, name = image.partition(":")
        if colon and kind in IMAGE_KINDS:
            image = name
        else:
            kind = kind_from_name(image) or ""
            if not kind:
                bad_input(f"--image {spec!r}: cannot tell FAT from tar by the name {image!r}",
                          hint=f"prefix it: --image fat:{image}={directory}")
        return cls(Path(image).name, kind, (cwd / directory).resolve())


def kind_from_name(image: str) -> str | None:
    name = Path(image).name.lower()
    for kind in IMAGE_KINDS:
        if name.startswith(kind) or f"{kind}_" in name or f"_{kind}" in name:
            return kind
    return None


_IMG = re.compile(r"^\s*IMG=\$\(pwd\)/(\S+?)\s*$", re.M)
_CD = re.compile(r"^\s*cd\s+(\S+?)/?\s*$", re.M)


def mirage_recipes(xl_dir: Path) -> dict[str, Recipe]:
    """Images named by MirageOS's generated `make-*-image.sh` scripts next to the .xl file.

    The scripts themselves are not run: the old ones size the image as the data's `du` size and
    build broken images. Only the image name and data directory are read from them.
    """
    out: dict[str, Recipe] = {}
    for script in sorted(xl_dir.glob("make-*-image.sh")):
        text = script.read_text(errors="replace")
        img, cd = _IMG.search(text), _CD.search(text)
        if not img or not cd:
            continue
        image = img.group(1).strip("'\"")
        kind = kind_from_name(image) or ("fat" if "fat" in script.name else "tar")
        out[image] = Recipe(image, kind, (xl_dir / cd.group(1).strip("'\"")).resolve())
    return out
