"""FAT16 images exactly as MirageOS's ocaml-fat reads them.

ocaml-fat reads FAT16 only, 512-byte sectors, 8.3 short names (no VFAT long names). So: FAT16 with
1, 2 or 4 sectors per cluster (4 gives the ~128 MiB ceiling), two FATs, a root directory sized for
what it holds (FAT16's default 512 slots silently lose files with mcopy), contiguous allocation.
Lower-case names are stored upper-case with the NT case bits that Linux and mtools honour, so
`john` reads back as `john` and any case finds it.
"""

from __future__ import annotations

import os
import struct
import time
import zlib

from lab.errors import bad_input
from lab.image import AtomicOutput, Entry, ImageResult, MiB, PathLike, copy_into, scan

SECTOR = 512
DIRENT = 32
RESERVED_SECTORS = 1
NUM_FATS = 2
# FAT16 by cluster count (Microsoft's rule, which ocaml-fat and fsck.fat follow). A margin over
# 4085 keeps readers with off-by-one FAT12 tests happy.
MIN_CLUSTERS = 4096
MAX_CLUSTERS = 65524
SECTORS_PER_CLUSTER = (1, 2, 4)
MAX_IMAGE = 128 * MiB + 64 * 1024  # 65524 clusters of 2 KiB plus the FATs and root directory
MAX_ROOT_ENTRIES = 65520
MAX_DIR_ENTRIES = 65536
HEADROOM = 0.25  # free space left in an auto-sized image, for what the unikernel writes

_SHORT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()-@^_`{}~")
_LOWER_BASE, _LOWER_EXT = 0x08, 0x10


def short_name(name: str) -> tuple[bytes, int] | None:
    """The 11-byte 8.3 name and NT case bits for `name`, or None if it is not a valid 8.3 name."""
    if not name.isascii():
        return None
    base, dot, ext = name.partition(".")
    if not 1 <= len(base) <= 8 or len(ext) > 3 or (dot and not ext):
        return None
    upper_base, upper_ext = base.upper(), ext.upper()
    if not _SHORT_CHARS.issuperset(upper_base) or not _SHORT_CHARS.issuperset(upper_ext):
        return None
    flags = 0
    if base != upper_base and base == base.lower():
        flags |= _LOWER_BASE
    if ext != upper_ext and ext == ext.lower():
        flags |= _LOWER_EXT
    raw = upper_base.ljust(8).encode("ascii") + upper_ext.ljust(3).encode("ascii")
    if raw[0] == 0xE5:  # cannot happen with ASCII, kept for the reader of this code: 0xE5 = deleted
        raw = b"\x05" + raw[1:]
    return raw, flags


def _fat_datetime(mtime: float) -> tuple[int, int]:
    t = time.gmtime(max(mtime, 315532800))  # FAT's epoch is 1980-01-01
    year = min(t.tm_year, 2107)
    date = ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    clock = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return date, clock


class _Node:
    __slots__ = ("children", "clusters", "entry", "first_cluster", "flags", "short")

    def __init__(self, entry: Entry | None, short: bytes, flags: int) -> None:
        self.entry = entry  # None for the root
        self.short = short
        self.flags = flags
        self.children: list[_Node] = []
        self.first_cluster = 0
        self.clusters = 0


def _tree(entries: list[Entry], directory: str) -> tuple[_Node, int]:
    """The directory tree with validated short names; raises listing every bad name."""
    root = _Node(None, b"", 0)
    dirs: dict[str, _Node] = {"": root}
    bad: list[str] = []
    clashes: list[str] = []
    seen: dict[tuple[str, bytes], str] = {}
    for e in entries:
        sn = short_name(e.name)
        if sn is None:
            bad.append(e.rel)
            sn = (b"?" * 11, 0)
        key = (e.parent, sn[0])
        if sn[0] != b"?" * 11 and key in seen:
            clashes.append(f"{seen[key]} / {e.rel}")
        seen[key] = e.rel
        node = _Node(e, sn[0], sn[1])
        parent = dirs.get(e.parent)
        if parent is not None:
            parent.children.append(node)
        if e.is_dir:
            dirs[e.rel] = node
    if bad:
        shown = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        bad_input(f"{directory}: {len(bad)} name(s) are not FAT 8.3 short names: {shown}",
                  hint="ocaml-fat reads no long names: rename to at most 8 characters, "
                       "optionally a dot and 3 more (letters, digits, _-~!#$%&'()@^`{})")
    if clashes:
        bad_input(f"{directory}: names that differ only in case collide on FAT: {', '.join(clashes)}",
                  hint="FAT ignores case; rename one of each pair")
    # The root directory's size is a 16-bit count of entries, in whole sectors (65520); any other
    # directory holds at most 65536 entries, "." and ".." among them.
    crowded = [(rel or ".", len(n.children)) for rel, n in dirs.items()
               if len(n.children) > (MAX_ROOT_ENTRIES if not rel else MAX_DIR_ENTRIES - 2)]
    if crowded:
        where, count = crowded[0]
        bad_input(f"{directory}: {where} holds {count} entries, more than a FAT16 directory can",
                  hint=f"spread them over subdirectories (at most {MAX_DIR_ENTRIES - 2} each, "
                       f"{MAX_ROOT_ENTRIES} at the top), or use a tar image")
    return root, len(root.children)


def _dir_bytes(n_children: int) -> int:
    return (n_children + 2) * DIRENT  # with "." and ".."


class Geometry:
    __slots__ = ("clusters", "fat_sectors", "root_entries", "sectors_per_cluster")

    def __init__(self, sectors_per_cluster: int, root_entries: int, fat_sectors: int, clusters: int) -> None:
        self.sectors_per_cluster = sectors_per_cluster
        self.root_entries = root_entries
        self.fat_sectors = fat_sectors
        self.clusters = clusters

    @property
    def cluster_bytes(self) -> int:
        return self.sectors_per_cluster * SECTOR

    @property
    def root_sectors(self) -> int:
        return self.root_entries * DIRENT // SECTOR

    @property
    def data_start(self) -> int:
        """First sector of cluster 2."""
        return RESERVED_SECTORS + NUM_FATS * self.fat_sectors + self.root_sectors

    @property
    def total_sectors(self) -> int:
        return self.data_start + self.clusters * self.sectors_per_cluster


def _fat_sectors(clusters: int) -> int:
    return -(-(clusters + 2) * 2 // SECTOR)


def _clusters_needed(root: _Node, cluster_bytes: int) -> int:
    total = 0
    stack = list(root.children)
    while stack:
        n = stack.pop()
        assert n.entry is not None
        size = _dir_bytes(len(n.children)) if n.entry.is_dir else n.entry.size
        total += -(-size // cluster_bytes)
        stack.extend(n.children)
    return total


def geometry(root: _Node, n_root: int, size: int | None, where: str) -> Geometry:
    if size is not None and size > MAX_IMAGE:
        bad_input(f"{where}: --size {size} is over FAT16's limit for ocaml-fat (128 MiB)",
                  hint="use a tar image for more data")
    root_entries = max(512, -(-n_root // 16) * 16)
    needed_at = {}
    for spc in SECTORS_PER_CLUSTER:
        cb = spc * SECTOR
        need = _clusters_needed(root, cb)
        needed_at[spc] = need
        if size is None:
            clusters = max(MIN_CLUSTERS, need + max(int(need * HEADROOM), 16))
            if clusters > MAX_CLUSTERS and need <= MAX_CLUSTERS and spc == SECTORS_PER_CLUSTER[-1]:
                clusters = MAX_CLUSTERS  # it fits, with less headroom than usual
            if clusters > MAX_CLUSTERS:
                continue
            return Geometry(spc, root_entries, _fat_sectors(clusters), clusters)
        total = size // SECTOR
        fixed = RESERVED_SECTORS + root_entries * DIRENT // SECTOR
        # Largest cluster count whose FATs and data fit in `total` sectors.
        clusters = (total - fixed) // spc
        while clusters > 0 and fixed + NUM_FATS * _fat_sectors(clusters) + clusters * spc > total:
            clusters -= 1
        if clusters > MAX_CLUSTERS:
            continue
        if clusters < MIN_CLUSTERS:
            bad_input(f"{where}: --size {size} is too small for FAT16 "
                      f"(at least {MIN_CLUSTERS} clusters, about 2.2 MiB)",
                      hint="leave out --size to fit the image to the data")
        if need > clusters:
            bad_input(f"{where}: the data needs {need * cb} bytes but --size {size} leaves "
                      f"{clusters * cb}", hint="give a larger --size, or none to fit the data")
        return Geometry(spc, root_entries, _fat_sectors(clusters), clusters)
    need_bytes = needed_at[SECTORS_PER_CLUSTER[-1]] * SECTORS_PER_CLUSTER[-1] * SECTOR
    bad_input(f"{where}: {need_bytes / MiB:.1f} MiB of data does not fit a FAT16 image "
              "(ocaml-fat reads at most 128 MiB)", hint="use a tar image for more data")


def _dirent(short: bytes, flags: int, attr: int, cluster: int, size: int, mtime: float) -> bytes:
    date, clock = _fat_datetime(mtime)
    return struct.pack("<11sBBBHHHHHHHI", short, attr, flags, 0, clock, date, date, 0,
                       clock, date, cluster, size)


def _boot_sector(g: Geometry, serial: int) -> bytes:
    total = g.total_sectors
    bpb = struct.pack(
        "<3s8sHBHBHHBHHHII",
        b"\xeb\x3c\x90", b"XENLAB  ", SECTOR, g.sectors_per_cluster, RESERVED_SECTORS, NUM_FATS,
        g.root_entries, total if total < 0x10000 else 0, 0xF8, g.fat_sectors,
        32, 64, 0, total if total >= 0x10000 else 0,
    )
    ext = struct.pack("<BBBI11s8s", 0x80, 0, 0x29, serial, b"NO NAME    ", b"FAT16   ")
    # Boot code: print nothing, halt. Firmware never boots these images.
    code = b"\xfa\xf4\xeb\xfd"
    sector = bytearray(SECTOR)
    sector[: len(bpb) + len(ext)] = bpb + ext
    sector[62 : 62 + len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def build(directory: PathLike, output: PathLike, size: int | None) -> ImageResult:
    src = os.fspath(directory)
    entries = scan(src)
    root, n_root = _tree(entries, src)
    g = geometry(root, n_root, size, src)

    # Allocate clusters depth-first, contiguously; remember each directory's byte image.
    fat = bytearray(g.fat_sectors * SECTOR)
    struct.pack_into("<HH", fat, 0, 0xFFF8, 0xFFFF)
    next_cluster = 2
    cb = g.cluster_bytes

    def allocate(n: _Node, nbytes: int) -> None:
        nonlocal next_cluster
        count = -(-nbytes // cb)
        if count == 0:
            return
        n.first_cluster, n.clusters = next_cluster, count
        chain = range(next_cluster + 1, next_cluster + count)
        struct.pack_into(f"<{count}H", fat, next_cluster * 2, *chain, 0xFFFF)
        next_cluster += count

    stack = [root]
    while stack:
        d = stack.pop()
        for c in d.children:
            assert c.entry is not None
            allocate(c, _dir_bytes(len(c.children)) if c.entry.is_dir else c.entry.size)
            if c.entry.is_dir:
                stack.append(c)
    assert next_cluster - 2 <= g.clusters

    def listing(d: _Node, parent_cluster: int) -> bytes:
        parts = []
        if d.entry is not None:
            parts.append(_dirent(b".          ", 0, 0x10, d.first_cluster, 0, d.entry.mtime))
            parts.append(_dirent(b"..         ", 0, 0x10, parent_cluster, 0, d.entry.mtime))
        for c in d.children:
            assert c.entry is not None
            attr = 0x10 if c.entry.is_dir else 0x20
            parts.append(_dirent(c.short, c.flags, attr, c.first_cluster,
                                 0 if c.entry.is_dir else c.entry.size, c.entry.mtime))
        return b"".join(parts)

    # A volume serial derived from the content listing: the same data gives the same image.
    serial = zlib.crc32("\0".join(f"{e.rel}:{e.size}" for e in entries).encode())
    header = bytearray(g.data_start * SECTOR)
    header[:SECTOR] = _boot_sector(g, serial)
    for i in range(NUM_FATS):
        start = (RESERVED_SECTORS + i * g.fat_sectors) * SECTOR
        header[start : start + len(fat)] = fat
    root_bytes = listing(root, 0)
    root_at = (RESERVED_SECTORS + NUM_FATS * g.fat_sectors) * SECTOR
    header[root_at : root_at + len(root_bytes)] = root_bytes

    def offset(cluster: int) -> int:
        return (g.data_start + (cluster - 2) * g.sectors_per_cluster) * SECTOR

    with AtomicOutput(output) as fd:
        os.ftruncate(fd, g.total_sectors * SECTOR)
        os.pwrite(fd, header, 0)
        stack = [root]
        while stack:
            d = stack.pop()
            for c in d.children:
                assert c.entry is not None
                if c.entry.is_dir:
                    os.pwrite(fd, listing(c, d.first_cluster), offset(c.first_cluster))
                    stack.append(c)
                elif c.entry.size:
                    copy_into(fd, c.entry, offset(c.first_cluster))

    files = [e for e in entries if not e.is_dir]
    used = (next_cluster - 2) * cb
    return ImageResult(output, "fat", g.total_sectors * SECTOR, len(files), 1 + len(entries) - len(files),
                       sum(e.size for e in files), g.clusters * cb - used)
