"""ustar images as MirageOS's ocaml-tar reads them: plain ustar (no GNU or pax extensions), the
archive padded to a 4 KiB multiple because ocaml-tar reads the block device in 4 KiB chunks."""

from __future__ import annotations

import os
import tarfile

from lab.errors import bad_input
from lab.image import AtomicOutput, Entry, ImageResult, PathLike, cannot_read, changed_size, scan

PAD = 4096
MAX_MEMBER = 8**11 - 1  # ustar's 11 octal digits of size
MAX_MTIME = 8**11  # and of seconds since 1970
MAX_TAR_IMAGE = 64 * 1024**3


def _fits_ustar(rel: str, is_dir: bool) -> bool:
    name = rel + "/" if is_dir else rel
    raw = name.encode("utf-8")
    if len(raw) <= 100:
        return True
    # Longer names split at a '/' into a 155-byte prefix and a 100-byte name.
    return any(ch == ord("/") and 0 < i <= 155 and len(raw) - i - 1 <= 100 for i, ch in enumerate(raw))


def _info(e: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(e.rel)
    info.mtime = int(e.mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if e.is_dir:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = e.size, 0o755 if e.mode & 0o111 else 0o644
    return info


class _FdWriter:
    """A minimal file object over a raw fd, so tarfile streams straight into the image file."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pos = fd, 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.pos += n
        return len(data)

    def tell(self) -> int:
        return self.pos


def _add_file(tar: tarfile.TarFile, e: Entry) -> None:
    """One file's header and bytes; its read errors are the data's, not the image's."""
    try:
        f = open(e.source, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        cannot_read(e.source, exc)
    with f:
        try:
            tar.addfile(_info(e), f)
        except OSError as exc:
            if exc.errno is not None:
                raise  # writing the image: atomic_output reports it
            changed_size(e.source)  # tarfile's "unexpected end of data": it shrank


def build(directory: PathLike, output: PathLike, size: int | None) -> ImageResult:
    entries = scan(directory)
    if not any(not e.is_dir for e in entries):
        bad_input(f"{directory}: no files to put in the image", hint="is this the right directory?")
    too_long = [e.rel for e in entries if not _fits_ustar(e.rel, e.is_dir)]
    if too_long:
        shown = ", ".join(p if len(p) <= 160 else p[:60] + "..." + p[-60:] for p in too_long[:3])
        bad_input(f"{directory}: {len(too_long)} path(s) too long for ustar: {shown}",
                  hint="ustar holds names up to 100 bytes (or 155-byte directory + 100-byte name)")
    dated = [e.rel for e in entries if not 0 <= e.mtime < MAX_MTIME]
    if dated:
        bad_input(f"{directory}: modification time outside ustar's range (1970 to 2242): "
                  f"{', '.join(dated[:3])}", hint="touch them to give them a current date")
    huge = [e.rel for e in entries if e.size > MAX_MEMBER]
    if huge:
        bad_input(f"{directory}: files over 8 GiB cannot be in a ustar image: {', '.join(huge[:3])}",
                  hint="split them into smaller files (ustar records sizes up to 8 GiB)")

    if size is not None and size % PAD:
        bad_input(f"--size {size} is not a multiple of {PAD}", hint=f"round it up to a multiple of {PAD}, "
                  "or leave --size out for the smallest image")
    if size is not None and size > MAX_TAR_IMAGE:
        bad_input(f"--size {size} is larger than any block device xenlab makes "
                  f"({MAX_TAR_IMAGE // 1024**3} GiB)", hint="leave out --size to fit the data")
    with AtomicOutput(output) as fd:
        sink = _FdWriter(fd)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.USTAR_FORMAT,  # type: ignore[call-overload]
                          encoding="utf-8") as tar:
            for e in entries:
                if e.is_dir:
                    tar.addfile(_info(e))
                else:
                    _add_file(tar, e)
        length = sink.tell()
        padded = -(-length // PAD) * PAD
        if size is not None:
            if size < padded:
                bad_input(f"{directory}: the archive needs {padded} bytes but --size gives {size}",
                          hint="give a larger --size, or none to fit the data")
            padded = size
        os.ftruncate(fd, padded)
    files = [e for e in entries if not e.is_dir]
    return ImageResult(output, "tar", padded, len(files), 1 + len(entries) - len(files),
                       sum(e.size for e in files), padded - length)
