"""Block images a unikernel reads: FAT16 (ocaml-fat) and ustar (ocaml-tar), in pure Python.

Both builders share the same discipline: scan and validate everything first, so bad input fails
before a byte is written; write to a temporary file beside the output; rename into place only when
complete. A failed build leaves no image behind.

Start-up is most of what a small image costs (bench/bench_image.py), so this package imports only
modules the interpreter has already loaded or that are built in: no dataclasses (it pulls in
inspect), pathlib, contextlib or typing. Paths are plain strings or os.PathLike here.
"""

from __future__ import annotations

import errno
import os
import stat

from lab.errors import bad_input, die

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import NoReturn

PathLike = str | os.PathLike[str]

MiB = 1024 * 1024
SMALL_FILE = 256 * 1024


class Entry:
    """A file or directory to put into an image, relative to the data directory."""

    __slots__ = ("is_dir", "mode", "mtime", "rel", "size", "source")

    def __init__(self, rel: str, source: str, is_dir: bool, size: int, mtime: float, mode: int) -> None:
        self.rel = rel  # posix path relative to the data directory
        self.source = source
        self.is_dir = is_dir
        self.size = size
        self.mtime = mtime
        self.mode = mode

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.rel.rsplit("/", 1)[0] if "/" in self.rel else ""


class ImageResult:
    __slots__ = ("data_bytes", "directories", "files", "free_bytes", "kind", "path", "size")

    def __init__(self, path: PathLike, kind: str, size: int, files: int, directories: int,
                 data_bytes: int, free_bytes: int) -> None:
        self.path = os.fspath(path)
        self.kind = kind
        self.size = size
        self.files = files
        self.directories = directories
        self.data_bytes = data_bytes
        self.free_bytes = free_bytes

    def summary(self) -> str:
        return (f"{self.path}: {self.kind} image, {self.size / MiB:.1f} MiB, {self.files} files "
                f"in {self.directories} directories, {self.data_bytes} bytes of data, "
                f"{self.free_bytes / MiB:.1f} MiB free")

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "size": self.size, "files": self.files,
                "directories": self.directories, "data_bytes": self.data_bytes,
                "free_bytes": self.free_bytes}


def parse_size(text: str) -> int:
    import re

    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.I)
    if not m:
        bad_input(f"--size {text!r}: not a size", hint="use bytes or K/M/G, e.g. --size 16M")
    return int(m.group(1)) * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[m.group(2).upper()]


def scan(directory: PathLike) -> list[Entry]:
    """Every file and directory under `directory`, parents before children, sorted by name.

    An image ships to a guest, so nothing from outside the data directory may end up in it: a
    symlink is followed only when its target stays inside the directory (an image holds contents,
    not links), and refused when it leaves it, loops back to one of its own parents, or dangles.
    Sockets, FIFOs and devices are an error, since no image format here can hold them; so is a
    name that is not UTF-8, which no reader of the image would see as written.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        bad_input(f"{directory}: not a directory", hint="give the directory of files to put in the image")
    top = os.path.realpath(directory)
    out: list[Entry] = []
    special: list[str] = []
    # Iterative, not recursive: a tree nested thousands deep is data, not a reason to crash.
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = []
    st_top = os.stat(top)
    stack.append((directory, "", frozenset({(st_top.st_dev, st_top.st_ino)})))
    while stack:
        d, prefix, ancestors = stack.pop()
        try:
            children = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            cannot_read(d, exc)
        subdirs = []
        for child in children:
            rel = f"{prefix}{child.name}"
            if not _is_utf8(child.name):
                shown = child.name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
                bad_input(f"{directory}: the name {prefix}{shown} is not UTF-8",
                          hint="rename it (images store names as text)")
            if child.is_symlink() and not _within(os.path.realpath(child.path), top):
                bad_input(f"{child.path}: a symlink that leaves the data directory "
                          f"(to {os.readlink(child.path)})",
                          hint="copy the file into the directory: nothing outside it goes into "
                               "an image")
            try:
                st = child.stat()  # follows symlinks (inside the directory only, checked above)
            except OSError as exc:
                bad_input(f"{child.path}: cannot stat: {exc.strerror}",
                          hint="a dangling symlink? remove it or point it at a file")
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    bad_input(f"{child.path}: a symlink back to one of its own parent directories",
                              hint="remove the link: the image would never end")
                out.append(Entry(rel, child.path, True, 0, st.st_mtime, st.st_mode))
                subdirs.append((child.path, rel + "/", ancestors | {key}))
            elif stat.S_ISREG(st.st_mode):
                out.append(Entry(rel, child.path, False, st.st_size, st.st_mtime, st.st_mode))
            else:
                special.append(rel)
        stack.extend(reversed(subdirs))
    if special:
        bad_input(f"{directory}: not regular files or directories: {', '.join(special[:10])}",
                  hint="images hold regular files and directories only")
    # Parents before children, siblings by name: the order the recursive walk gave.
    out.sort(key=lambda e: e.rel.split("/"))
    return out


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class AtomicOutput:
    """`with AtomicOutput(path) as fd`: a file descriptor to write the image to, renamed to
    `path` only when the block ends without an exception; otherwise no file is left."""

    def __init__(self, output: PathLike) -> None:
        self.output = os.fspath(output)
        parent = os.path.dirname(self.output) or "."
        if not os.path.isdir(parent):
            bad_input(f"{self.output}: directory {parent} does not exist",
                      hint="create it first, or give -o a path in an existing directory")
        if os.path.islink(self.output) or (os.path.exists(self.output) and not os.path.isfile(self.output)):
            bad_input(f"{self.output}: exists and is not a regular file",
                      hint="give -o a new file name, or an existing image to replace")
        # Short whatever the name: an output name near the 255-byte limit leaves no room for more.
        self.tmp = os.path.join(parent, f".xenlab-{os.getpid()}.img-tmp")
        try:
            self.fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            bad_input(f"{self.output}: cannot write in {parent}: {exc.strerror}",
                      hint="write the image to a directory you can write to")

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            os.close(self.fd)
            if exc is None:
                # No fsync: like mkfs.fat, mcopy and tar, durability is left to the page cache;
                # the rename is what keeps a failed or interrupted build from leaving a partial
                # image. Unlink, then rename: renaming over an existing file makes ext4
                # (auto_da_alloc) force the new image's blocks out at once, which costs more
                # than building it.
                _unlink(self.output)
                os.rename(self.tmp, self.output)
                return
        except OSError as error:
            exc = error
        _unlink(self.tmp)
        if isinstance(exc, OSError):  # writing the image, not reading the data (copy_into's)
            die(f"{self.output}: cannot write the image: {exc.strerror}",
                hint="is the disk full? free space or write it elsewhere")


def _unlink(path: str) -> None:
    # Not contextlib.suppress: contextlib is an import `xenlab image` avoids.
    try:  # noqa: SIM105
        os.unlink(path)
    except FileNotFoundError:
        pass


def copy_into(fd: int, entry: Entry, offset: int) -> None:
    """Copy one file's bytes to `offset`; the file must still have the size it was scanned with."""
    written = 0
    try:
        src = os.open(entry.source, os.O_RDONLY)
        try:
            if entry.size <= SMALL_FILE:
                # One read + one write beats the copy_file_range set-up for small files.
                data = os.read(src, entry.size + 1)
                if len(data) == entry.size:
                    written = _write_all(fd, data, offset)
            else:
                written = _copy_range(src, fd, entry.size, offset)
                if os.pread(src, 1, entry.size):
                    written += 1  # grew since the scan
        finally:
            os.close(src)
    except _WriteError as exc:
        raise exc.error from None  # the image's side: atomic_output reports it
    except OSError as exc:
        cannot_read(entry.source, exc)
    if written != entry.size:
        changed_size(entry.source)


def cannot_read(path: str, exc: OSError) -> NoReturn:
    bad_input(f"{path}: cannot read: {exc.strerror}",
              hint="make it readable, or leave it out of the data directory")


def changed_size(path: str) -> NoReturn:
    die(f"{path}: changed size while the image was built",
        hint="stop whatever writes to the data directory and build again")


class _WriteError(Exception):
    def __init__(self, error: OSError) -> None:
        self.error = error


def _write_all(fd: int, data: bytes, offset: int) -> int:
    """pwrite until all of data is written: a short write is the file system filling up, and the
    next write says so (ENOSPC), where counting the short one would blame the data file."""
    done = 0
    while done < len(data):
        try:
            n = os.pwrite(fd, data[done:], offset + done)
        except OSError as exc:
            raise _WriteError(exc) from None
        if n == 0:
            raise _WriteError(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        done += n
    return done


# copy_file_range refuses across filesystems (EXDEV: a tmpfs data directory, a separate /home)
# and on some filesystems at all; a plain read/write loop does the same job there.
_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def _copy_range(src: int, fd: int, size: int, offset: int) -> int:
    written = 0
    use_range = True
    while written < size:
        if use_range:
            try:
                n = os.copy_file_range(src, fd, size - written, written, offset + written)
            except OSError as exc:
                if exc.errno in _NO_COPY_RANGE:
                    use_range = False
                    continue
                if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                    raise _WriteError(exc) from None
                raise
        else:
            chunk = os.pread(src, min(1 << 20, size - written), written)
            n = 0
            if chunk:
                n = _write_all(fd, chunk, offset + written)
        if n == 0:
            break
        written += n
    return written


def check_output_outside(directory: PathLike, output: PathLike) -> None:
    if _within(os.path.realpath(output), os.path.realpath(directory)):
        bad_input(f"{os.fspath(output)}: the image would be inside its own data directory "
                  f"{os.fspath(directory)}", hint="write the image somewhere else, e.g. next to the .xl file")


def _within(path: str, top: str) -> bool:
    """Whether resolved `path` is `top` or lies under it (both resolved: realpath)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def build_image(kind: str, directory: PathLike, output: PathLike, size: int | None = None) -> ImageResult:
    check_output_outside(directory, output)
    if kind == "fat":
        from lab.image.fat import build

        return build(directory, output, size)
    if kind == "tar":
        from lab.image.tar import build as build_tar

        return build_tar(directory, output, size)
    bad_input(f"unknown image kind {kind!r}", hint="fat or tar")
