"""`xenlab fix`: every hand-fix an .xl file used to need, as a rule with an id and a repair.

Rules run in order over a progressively repaired document, so a later rule sees the earlier repairs
(a phantom disk is gone before duplicate vdevs are counted).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.artifacts import Recipe, is_dir, is_file, locate, mirage_recipes
from lab.config import LabConfig
from lab.errors import EXIT_USAGE, LabError
from lab.xl import syntax, template
from lab.xl.disk import DiskSpecError, parse_disk
from lab.xl.model import BUILDER_TYPES, DOMAIN_NAME, GUEST_TYPES, Domain, VifSpec
from lab.xl.syntax import XlFile, quote


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    summary: str


RULES = {
    r.id: r
    for r in [
        Rule("XL001", "invalid-name", "the domain name is missing or not a valid Xen domain name"),
        Rule("XL002", "missing-kernel", "the kernel file exists neither as written nor next to the .xl file"),
        Rule("XL003", "build-host-path", "an absolute build-host path that will not exist in the lab"),
        Rule("XL004", "phantom-disk", "a disk image that does not exist and that nothing will build"),
        Rule("XL005", "no-network",
             "no vif in a PV file (MirageOS 2/3 leave `vif = [ ]` to be filled in): no network"),
        Rule("XL006", "vif-bridge", "a vif not attached to the lab bridge"),
        Rule("XL007", "memory-range", "memory outside the range a unikernel lab guest needs"),
        Rule("XL008", "maxmem-below-memory", "maxmem is below memory"),
        Rule("XL009", "type-builder",
             "`builder = 'linux'` (refused by xl 4.x), `type`/`builder` disagree, or type is unknown"),
        Rule("XL010", "duplicate-vdev", "two disks use the same virtual device"),
        Rule("XL011", "bad-disk-spec", "a disk spec Xen cannot parse"),
    ]
}


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    message: str
    repair: str | None  # what the automatic repair does; None: needs a person
    severity: str = "error"

    def render(self) -> str:
        r = RULES[self.rule]
        tail = f" -> {self.repair}" if self.repair else " (no automatic repair)"
        return f"{self.path}:{self.line}: {self.severity} {r.id} {r.name}: {self.message}{tail}"

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "name": RULES[self.rule].name, "path": self.path,
                "line": self.line, "severity": self.severity, "message": self.message,
                "repair": self.repair}


@dataclass
class Report:
    path: Path
    original: XlFile  # as read; for a `.xl.in` template, with its placeholders filled
    fixed: XlFile
    findings: list[Finding] = field(default_factory=list)
    raw: str | None = None  # the file's own text, when it differs from original's (a template)

    @property
    def out_path(self) -> Path:
        """Where `--write` puts the result: the file itself; NAME.xl beside a NAME.xl.in."""
        if template.is_template(self.path):
            return self.path.with_name(template.stem(self.path) + ".xl")
        return self.path

    @property
    def source(self) -> str:
        """The file's text as it is on disk."""
        return self.original.text if self.raw is None else self.raw

    @property
    def changed(self) -> bool:
        return self.fixed.text != self.source

    @property
    def needs_write(self) -> bool:
        """Whether `--write` has anything to write: repairs, or a template's NAME.xl that does not
        hold the filled-in file yet (a template without placeholders or problems still makes one)."""
        if self.out_path == self.path:
            return self.changed
        if not self.out_path.is_file():  # a FIFO would block the read: write() refuses it instead
            return True
        try:
            return self.out_path.read_text(encoding="utf-8") != self.fixed.text
        except (OSError, UnicodeDecodeError):
            return True

    @property
    def repaired(self) -> list[Finding]:
        return [f for f in self.findings if f.repair]

    @property
    def unrepaired(self) -> list[Finding]:
        return [f for f in self.findings if not f.repair]

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            self.source.splitlines(keepends=True), self.fixed.text.splitlines(keepends=True),
            fromfile=str(self.path), tofile=f"{self.out_path} (fixed)"))

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "changed": self.changed,
                "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class Context:
    xl_dir: Path
    config: LabConfig
    recipes: dict[str, Recipe]  # images that will be built, by file name
    network: bool | None = None  # --network / --no-network; None: decided from the file


Repair = Callable[[XlFile], XlFile]
# A check returns what it found and one repair for all of it (None: nothing to do by itself).
Outcome = tuple[list[Finding], Repair | None]
Check = Callable[[Context, XlFile], Outcome]
NOTHING: Outcome = ([], None)
_CHECKS: list[Check] = []


def _check(fn: Check) -> Check:
    _CHECKS.append(fn)
    return fn


def _finding(doc: XlFile, rule: str, key: str, message: str, repair: str | None,
             severity: str = "error") -> Finding:
    return Finding(rule, doc.path, doc.line_of(key) or 1, message, repair, severity)


@_check
def _name(ctx: Context, doc: XlFile) -> Outcome:
    name = doc.string("name")
    if name is not None and DOMAIN_NAME.fullmatch(name):
        return NOTHING
    stem = Path(doc.path).stem if doc.path != "<string>" else "guest"
    new = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or stem)
    new = re.sub(r"-{2,}", "-", new).strip("-.")[:64] or "guest"
    why = "no `name`" if name is None else f"name {name!r} is not letters, digits, '_', '.', '-'"
    return ([_finding(doc, "XL001", "name", why, f"name = {quote(new)}")],
            lambda d: d.set("name", quote(new)))


def _will_exist(ctx: Context, written: str) -> bool:
    return locate(written, ctx.xl_dir) is not None or Path(written).name in ctx.recipes


def _relocate(ctx: Context, written: str) -> str | None:
    """The path to write instead of a build-host path, or None when it is fine as it is."""
    p = Path(written)
    if not p.is_absolute() or is_file(p) or is_dir(p):
        return None
    if is_file(ctx.xl_dir / p.name) or p.name in ctx.recipes:
        return p.name
    return None


@_check
def _kernel(ctx: Context, doc: XlFile) -> Outcome:
    findings: list[Finding] = []
    moves: dict[str, str] = {}
    for key in ("kernel", "ramdisk"):
        written = doc.string(key)
        if written is None:
            if key == "kernel" and Domain(doc).type != "hvm":
                findings.append(_finding(doc, "XL002", key, "no `kernel` line", None))
            continue
        new = _relocate(ctx, written)
        if new is not None:
            findings.append(_finding(doc, "XL003", key, f"{key} {written!r} is a build-host path",
                                     f"{key} = {quote(new)}", "warning"))
            moves[key] = new
        elif locate(written, ctx.xl_dir) is None:
            findings.append(_finding(doc, "XL002", key,
                                     f"{key} {written!r} not found (build it first?)", None))

    def repair(d: XlFile) -> XlFile:
        for key, new in moves.items():
            d = d.set(key, quote(new))
        return d

    return findings, repair if moves else None


def _disk_specs(doc: XlFile) -> list[str]:
    return doc.strings("disk") or []


@_check
def _disks(ctx: Context, doc: XlFile) -> Outcome:
    specs = _disk_specs(doc)
    keep: list[str] = []
    notes: list[Finding] = []
    for spec in specs:
        try:
            disk = parse_disk(spec)
        except DiskSpecError as exc:
            notes.append(_finding(doc, "XL011", "disk", f"disk {spec!r}: {exc}", None))
            keep.append(spec)
            continue
        target = disk.target
        if not target or disk.cdrom or disk.format != "raw" or _will_exist(ctx, target):
            new = _relocate(ctx, target) if target else None
            if new is not None:
                notes.append(_finding(doc, "XL003", "disk", f"disk target {target!r} is a build-host path",
                                      f"target={new}", "warning"))
                spec = disk.with_target(new).render()
            keep.append(spec)
            continue
        notes.append(_finding(doc, "XL004", "disk",
                              f"disk {disk.vdev} image {Path(target).name!r} does not exist and "
                              "nothing builds it", f"remove disk {disk.vdev}"))
    return notes, (lambda d: d.set_list("disk", keep)) if keep != specs else None


@_check
def _vifs(ctx: Context, doc: XlFile) -> Outcome:
    bridge = ctx.config.bridge
    specs = doc.strings("vif")
    if ctx.network is False:
        return NOTHING  # the lab copy gets no vif at all
    # MirageOS >= 3.9 (PVH) writes one vif per network device, so none means the unikernel has no
    # network device. MirageOS 2/3 (PV) wrote `vif = [ ]` for the user to fill in.
    if not specs and Domain(doc).type == "pvh" and ctx.network is None:
        return NOTHING
    if not specs:
        new = [f"bridge={bridge}"]
        why = "`vif = [ ]`" if specs == [] else "no `vif` line"
        return ([_finding(doc, "XL005", "vif", f"{why}: the guest gets no network",
                          f"vif = [ 'bridge={bridge}' ]")],
                lambda d: d.set_list("vif", new))
    fixed = []
    for spec in specs:
        vif = VifSpec.parse(spec)
        if vif.bridge != bridge:
            fixed.append(vif.with_("bridge", bridge).spec)
        else:
            fixed.append(spec)
    if fixed == specs:
        return NOTHING
    bad = [s for s, f in zip(specs, fixed, strict=True) if s != f]
    return ([_finding(doc, "XL006", "vif", f"vif {bad[0]!r} is not on the lab bridge {bridge}",
                      f"bridge={bridge}")],
            lambda d: d.set_list("vif", fixed))


@_check
def _memory(ctx: Context, doc: XlFile) -> Outcome:
    low = ctx.config.guest_memory_min
    high = ctx.config.guest_memory_max or 1 << 40  # 0: no bound of the lab's own
    memory = doc.number("memory")
    findings: list[Finding] = []
    sets: dict[str, int] = {}
    if memory is None and doc.get("memory") is not None:
        fallback = template.DEFAULT_MEMORY
        findings.append(_finding(doc, "XL007", "memory", "memory is not a number",
                                 f"memory = {fallback}"))
        memory = sets["memory"] = fallback
    elif memory is not None and not low <= memory <= high:
        new = low if memory < low else high
        why = (f"runs out of memory (lab minimum {low} MiB)" if memory < low
               else f"starves the lab of memory (lab maximum {high} MiB)")
        findings.append(_finding(doc, "XL007", "memory", f"memory = {memory} {why}", f"memory = {new}"))
        memory = sets["memory"] = new
    maxmem = doc.number("maxmem")
    if memory is not None and maxmem is not None and maxmem < memory:
        findings.append(_finding(doc, "XL008", "maxmem",
                                 f"maxmem = {maxmem} is below memory = {memory}",
                                 f"maxmem = {memory}"))
        sets["maxmem"] = memory

    def repair(d: XlFile) -> XlFile:
        for key, value in sets.items():
            d = d.set(key, str(value))
        return d

    return findings, repair if sets else None


@_check
def _type(ctx: Context, doc: XlFile) -> Outcome:
    t, b = doc.string("type"), doc.string("builder")
    if t is not None and t not in GUEST_TYPES:
        return [_finding(doc, "XL009", "type", f"type {t!r} is not one of pv, pvh, hvm", None)], None
    if b is None:
        return NOTHING
    if t is not None:
        if BUILDER_TYPES.get(b, b) == t:
            return NOTHING
        return ([_finding(doc, "XL009", "builder", f"builder {b!r} contradicts type {t!r}",
                          "remove builder (type wins)")],
                lambda d: d.delete("builder"))
    if b in ("generic", "hvm"):
        return NOTHING  # deprecated, still accepted by xl
    new = BUILDER_TYPES.get(b)
    if new is None:
        return [_finding(doc, "XL009", "builder", f"builder {b!r} is unknown", None)], None
    # MirageOS 2.x/3.x write builder = 'linux'; xl 4.x rejects it ("Invalid domain type linux").
    return ([_finding(doc, "XL009", "builder",
                      f"builder {b!r} is refused by xl 4.x (Invalid domain type {b})",
                      f"type = {quote(new)}")],
            lambda d: d.delete("builder").append("type", quote(new)))


def _next_vdev(used: set[str]) -> str:
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"xvd{letter}" not in used:
            return f"xvd{letter}"
    raise LabError("more than 25 disks", hint="Xen names PV disks xvdb..xvdz: give the guest at "
                   "most 25 (one image can hold many files)", code=EXIT_USAGE)


@_check
def _vdevs(ctx: Context, doc: XlFile) -> Outcome:
    specs = _disk_specs(doc)
    try:
        disks = [parse_disk(s) for s in specs]
    except DiskSpecError:
        return NOTHING  # XL011 already reported it
    used = {d.vdev for d in disks if d.vdev}
    seen: set[str] = set()
    out = []
    dupes = []
    for spec, d in zip(specs, disks, strict=True):
        if d.vdev in seen:
            new = _next_vdev(used)
            used.add(new)
            dupes.append(f"{d.vdev} -> {new}")
            out.append(d.with_vdev(new).render())
        else:
            seen.add(d.vdev or "")
            out.append(spec)
    if not dupes:
        return NOTHING
    return ([_finding(doc, "XL010", "disk", f"duplicate vdev ({', '.join(dupes)})",
                      f"renumber {', '.join(dupes)}")],
            lambda d: d.set_list("disk", out))


def lint(doc: XlFile, ctx: Context) -> tuple[XlFile, list[Finding]]:
    findings: list[Finding] = []
    for check in _CHECKS:
        found, repair = check(ctx, doc)
        findings += found
        if repair is not None:
            doc = repair(doc)
    return doc, findings


def read_as_filled(path: Path, config: LabConfig) -> tuple[XlFile, str | None]:
    """The file as deploy reads it (a `.xl.in` template with its placeholders filled), and the
    template's own text (None for a plain .xl file)."""
    if not template.is_template(path):
        return syntax.read(path), None
    raw = syntax.read_text(path)
    return syntax.parse(template.fill(raw, path, config), str(path)), raw


def fix_file(path: Path, config: LabConfig, recipes: dict[str, Recipe] | None = None,
             network: bool | None = None) -> Report:
    doc, raw = read_as_filled(path, config)
    xl_dir = path.resolve().parent
    ctx = Context(xl_dir, config, {**mirage_recipes(xl_dir), **(recipes or {})}, network)
    fixed, findings = lint(doc, ctx)
    return Report(path, doc, fixed, findings, raw)


def write(report: Report) -> None:
    syntax.write(report.fixed, report.out_path)
