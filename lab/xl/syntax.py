"""A lossless reader and editor for xl.cfg(5) files, faithful to libxlutil's lexer and grammar.

The rules below were read off Xen's behaviour (libxlutil 4.17 is the oracle in the tests), quirks
included: identifiers are lower-case (`[a-z][._0-9a-z]*`), numbers are `[0-9][0-9a-fx]*` and stay
text until someone reads them with strtol, `#` comments must end in a newline, both quote styles take
the same backslash escapes, octal escapes are consumed but produce nothing, `\\x` escapes are always
rejected, and `+=` concatenates strings or appends lists.

Two readers share these rules. One regular expression, run in C, reads statements of the common
shape (strings with simple escapes, numbers, flat lists) and keeps only their values: a
400,000-line file reads in about twice libxlutil's time, in a small multiple of its size. Each
statement it does not take (nested lists, octal escapes, anything wrong) goes to the detailed
reader, a token stream with offsets and a parser over it, which names the line and column of every
error. Edits work on the detailed reader's statements, built for the whole file when first needed,
and splice new text into the old, so everything not edited (comments, order, spacing) survives
byte for byte.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, NoReturn, Union

from lab.errors import EXIT_USAGE, LabError

# Files are bytes to Xen. Decoding with surrogateescape round-trips any byte sequence exactly.
ENCODING = "utf-8"
ERRORS = "surrogateescape"


class XlSyntaxError(LabError):
    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        super().__init__(
            f"{path}:{line}:{col}: {message}",
            hint="xl.cfg(5): key = value lines; strings in quotes; lists in [ ]",
            code=EXIT_USAGE,
        )
        self.path, self.line, self.col, self.detail = path, line, col, message


class Token(NamedTuple):  # a tuple: a large file has millions of them
    kind: str  # IDENT NUMBER STRING NEWLINE ; = += [ ] , EOF
    text: str
    start: int
    end: int
    line: int
    col: int
    value: str = ""  # dequoted string, or the text of a number


@dataclass(slots=True)
class Atom:
    token: Token

    @property
    def start(self) -> int:
        return self.token.start

    @property
    def end(self) -> int:
        return self.token.end

    @property
    def is_number(self) -> bool:
        return self.token.kind == "NUMBER"

    @property
    def value(self) -> str:
        return self.token.value


@dataclass(slots=True)
class ListNode:
    open: Token
    items: list[Value]
    close: Token
    commas: list[Token] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.open.start

    @property
    def end(self) -> int:
        return self.close.end


Value = Atom | ListNode


@dataclass(slots=True)
class Assignment:
    key: Token
    op: str  # "=" or "+="
    value: Value
    end_token: Token  # NEWLINE, ';' or EOF that ends the statement

    @property
    def name(self) -> str:
        return self.key.text

    @property
    def line(self) -> int:
        return self.key.line


# The lexer, one regular expression per token kind, tried in this order; like flex, the longest
# match wins, and the order breaks ties.
_STRING_BODY = r"(?:[^{q}\\\n]|\\[^\n])*"
_TOKENS = [
    ("WS", re.compile(r"[ \t]+")),
    ("NEWLINE", re.compile(r"#[^\n]*\n|\n")),
    ("IDENT", re.compile(r"[a-z][._0-9a-z]*")),
    ("NUMBER", re.compile(r"[0-9][0-9a-fx]*")),
    ("STRING", re.compile("'" + _STRING_BODY.format(q="'") + "'")),
    ("STRING", re.compile('"' + _STRING_BODY.format(q='"') + '"')),
    ("+=", re.compile(r"\+=")),
    ("PUNCT", re.compile(r"[=;\[\],]")),
]

# The kinds start with different characters, so the longest match is the only match, and one
# alternation of them all finds it in one pass (eight separate tries per token were most of the
# time on a large file).
_MASTER = re.compile("|".join(f"(?P<k{i}>{rx.pattern})" for i, (_, rx) in enumerate(_TOKENS)))
_KIND = {f"k{i}": kind for i, (kind, _) in enumerate(_TOKENS)}

# The fast reader: one match per statement (or blank line, comment, `;`), built from the same token
# patterns. Escapes other than the simple ones, nested lists, NUL bytes and anything else it does not
# match (the catch-all `(.)`, which also keeps matches contiguous) leave the file to the detailed
# reader. Possessive quantifiers: a token never gives back characters, as the lexer's longest match.
_GAP = r"(?:[ \t]|#[^\n]*+\n|\n)*+"  # what may sit between a list's tokens
_PLAIN_STRING = r"{q}(?:[^{q}\\\n\0]|\\[\"'\\abfnrtv])*+{q}"
_ATOM = "|".join([_PLAIN_STRING.format(q="'"), _PLAIN_STRING.format(q='"'), r"[0-9][0-9a-fx]*+"])
_FLAT_LIST = rf"\[{_GAP}(?:(?:{_ATOM}){_GAP}(?:,{_GAP}(?:{_ATOM}){_GAP})*+(?:,{_GAP})?)?\]"
_STATEMENT = re.compile(
    rf"[ \t]*+(?:([a-z][._0-9a-z]*+)[ \t]*+(\+?=)[ \t]*+({_ATOM}|{_FLAT_LIST})[ \t]*+"
    r"(?:#[^\n]*+\n|\n|;|\Z)|#[^\n]*+\n|\n|;|\Z)|(.)", re.S)
_LIST_ITEM = re.compile(rf"#[^\n]*\n|({_ATOM})")

_SIMPLE_ESCAPES = {
    '"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
    "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}


def _strtoul_len(window: str) -> int:
    """How many characters C's strtoul(window, &ep, 10) consumes (0 when it converts nothing)."""
    m = re.match(r"[ \t\n\v\f\r]*[+-]?[0-9]+", window)
    return m.end() if m else 0


def dequote(quoted: str) -> str:
    """The value of a quoted string, or ValueError with libxlutil's reason."""
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        nc = body[i]
        i += 1
        if nc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nc])
        elif nc == "x":
            # libxlutil skips a character and then demands more hex digits than its window holds.
            raise ValueError("invalid digit after backslash hex numerical character escape")
        elif "0" <= nc <= "7":
            # libxlutil parses the following (up to 3) characters as decimal, needs at least two
            # consumed, and then drops the value: the escape produces no character at all.
            used = _strtoul_len(body[i : i + 3])
            if used <= 1:
                raise ValueError("invalid digit after backslash octal numerical character escape")
            i += used
        else:
            raise ValueError("invalid character after backslash in quoted string")
    return "".join(out)


def _tokens(text: str, path: str, pos: int = 0, line: int = 1, line_start: int = 0) -> Iterator[Token]:
    """The tokens of text from pos (on the given line, which starts at line_start), then EOF."""
    end = len(text)
    match = _MASTER.match
    while pos < end:
        m = match(text, pos)
        if m is None:
            col = pos - line_start + 1
            if pos == end - 1 and text[pos] != "\0":
                # libxlutil's lexer drops an unmatched last byte of the file (a lone `.`, a `#`
                # or a `\r` with no newline after it): xl reads the file as if it were not there.
                break
            if text[pos] == "#":
                raise XlSyntaxError(path, line, col, "comment at the end of the file needs a newline")
            if text[pos] in "\"'":
                raise XlSyntaxError(path, line, col, "unterminated string (strings end on their line)")
            if text[pos] == "\r":
                raise XlSyntaxError(path, line, col, "carriage return: save the file with LF endings")
            bad = re.match(r"[^ \t\n]*", text[pos:pos + 80])
            near = bad.group(0) if bad else text[pos]
            raise XlSyntaxError(path, line, col, f"unexpected {near!r}")
        kind = _KIND[m.lastgroup]  # type: ignore[index]
        next_pos = m.end()
        if kind != "WS":
            chunk = m.group()
            if kind == "PUNCT":
                kind = chunk
            value = chunk
            if kind == "STRING":
                try:
                    value = dequote(chunk)
                except ValueError as exc:
                    raise XlSyntaxError(path, line, pos - line_start + 1, str(exc)) from None
                if "\0" in chunk:
                    # libxlutil aborts on it (xl crashes): refuse what xl cannot read.
                    raise XlSyntaxError(path, line, pos - line_start + 1, "a NUL byte inside a string")
            yield Token(kind, chunk, pos, next_pos, line, pos - line_start + 1, value)
            if kind == "NEWLINE":
                line += 1
                line_start = next_pos
        pos = next_pos
    yield Token("EOF", "", pos, pos, line, pos - line_start + 1)


# libxlutil's parser stack holds lists nested this deep and no deeper (measured against 4.17).
MAX_DEPTH = 4996
# Nested lists are walked recursively (parse, resolve, JSON): room for MAX_DEPTH levels of it.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * MAX_DEPTH + 1000))


class _Parser:
    """libxlutil's grammar over a token stream, one token of lookahead."""

    def __init__(self, tokens: Iterator[Token], path: str) -> None:
        self.tokens, self.path = tokens, path
        self.tok = next(tokens)

    def fail(self, expected: str) -> XlSyntaxError:
        t = self.tok
        got = {"EOF": "end of file", "NEWLINE": "end of line"}.get(t.kind, repr(t.text))
        return XlSyntaxError(self.path, t.line, t.col, f"expected {expected}, got {got}")

    def take(self, *kinds: str) -> Token:
        if self.tok.kind not in kinds:
            raise self.fail(" or ".join(kinds))
        t = self.tok
        if t.kind != "EOF":
            self.tok = next(self.tokens)
        return t

    def skip_newlines(self) -> None:
        while self.tok.kind == "NEWLINE":
            self.take("NEWLINE")

    def statement(self) -> Assignment | None:
        """The next statement (blank ones skipped), or None at the end of the file. Its end token
        (a newline, `;` or the end) is not consumed."""
        while self.tok.kind in ("NEWLINE", ";"):
            self.take("NEWLINE", ";")
        if self.tok.kind == "EOF":
            return None
        key = self.take("IDENT")
        if self.tok.kind not in ("=", "+="):
            raise self.fail("'=' or '+=' after the key")
        op = self.take("=", "+=").kind
        value = self.value("a value (string, number or [list])")
        if self.tok.kind not in ("NEWLINE", ";", "EOF"):
            raise self.fail("end of line or ';' after the value")
        return Assignment(key, op, value, self.tok)

    def statements(self) -> Iterator[Assignment]:
        while (st := self.statement()) is not None:
            yield st

    def value(self, expected: str, depth: int = 0) -> Value:
        if self.tok.kind in ("STRING", "NUMBER"):
            return Atom(self.take("STRING", "NUMBER"))
        if self.tok.kind != "[":
            raise self.fail(expected)
        if depth >= MAX_DEPTH:
            t = self.tok
            raise XlSyntaxError(self.path, t.line, t.col,
                                f"lists nested deeper than xl reads ({MAX_DEPTH} levels)")
        node = ListNode(self.take("["), [], self.tok)
        self.skip_newlines()
        while self.tok.kind != "]":
            node.items.append(self.value("a list item or ']'", depth + 1))
            self.skip_newlines()
            if self.tok.kind == ",":
                node.commas.append(self.take(","))
                self.skip_newlines()
            elif self.tok.kind != "]":
                raise self.fail("',' or ']'")
        node.close = self.take("]")
        return node


# A value as Xen holds it after the whole file is read: text (numbers are text), or a list.
Resolved = Union["Scalar", list["Resolved"]]


@dataclass(frozen=True)
class Scalar:
    text: str
    number: bool  # written as a NUMBER token (all parts, for `+=` chains)
    added: bool = False  # the last assignment was `+=`: xl reads it as text only, never a number


def _resolve(value: Value) -> Resolved:
    if isinstance(value, Atom):
        return Scalar(value.value, value.is_number)
    return [_resolve(v) for v in value.items]


def _combine(old: Resolved | None, new: Resolved, op: str) -> Resolved | None:
    """A key's value after `key op new` when it held old; None when `+=` mixes a list and a string."""
    if op == "+=" and old is not None:
        if isinstance(old, list) and isinstance(new, list):
            new = old + new
        elif isinstance(old, Scalar) and isinstance(new, Scalar):
            new = Scalar(old.text + new.text, old.number and new.number)
        else:
            return None
    if op == "+=" and isinstance(new, Scalar):
        new = replace(new, added=True)
    return new


def _literal(text: str) -> Resolved:
    """The value of an atom or flat list as the fast reader matched it."""
    if text[0] == "[":
        return [_literal(item) for item in _LIST_ITEM.findall(text) if item]
    if text[0] in "'\"":
        return Scalar(dequote(text), False)
    return Scalar(text, True)


def _read(text: str, path: str) -> Iterator[tuple[str, str, str | Resolved]]:
    """Each statement's key, operator and value: the value's text where the regular expression
    took the statement, the value itself where the detailed reader had to."""
    pos, counted, line, line_start = 0, 0, 1, 0
    while True:
        for match in _STATEMENT.finditer(text, pos):
            key, op, literal, stray = match.groups()
            if stray is not None:
                pos = match.start()
                break
            if key is not None:
                yield key, op, literal
        else:
            return
        # One statement the regular expression does not take: the detailed reader reads it, and
        # names its line and column when it is wrong. Lines are counted on from the last such
        # statement, so a file full of them is still read in linear time.
        line += text.count("\n", counted, pos)
        line_start = max(line_start, text.rfind("\n", counted, pos) + 1)
        counted = pos
        st = _Parser(_tokens(text, path, pos, line, line_start), path).statement()
        if st is None:
            return
        yield st.name, st.op, _resolve(st.value)
        pos = st.end_token.end


def _fold(chain: list[str | Resolved | None]) -> Resolved | None:
    """A key's value from its `=` and the `+=` after it; None when a `+=` mixed a list and a string."""
    resolved: Resolved | None = None
    for i, literal in enumerate(chain):
        new = _literal(literal) if isinstance(literal, str) else literal
        if new is not None:
            resolved = _combine(resolved, new, "=" if i == 0 else "+=")
            if resolved is None:
                return None
    return resolved


def _read_values(text: str, path: str) -> dict[str, Resolved]:
    # Per key, its values since its last `=` (None first when a `+=` chain has no `=`): only
    # those are converted, so a key assigned 100,000 times costs one conversion. A chain with
    # `+=` in it is still checked when a later `=` ends it: Xen refuses the mix all the same.
    chains: dict[str, list[str | Resolved | None]] = {}
    for key, op, value in _read(text, path):
        if op == "=":
            ended = chains.get(key)
            if ended is not None and len(ended) > 1 and _fold(ended) is None:
                _refuse_mix(text, path)
            chains[key] = [value]
        else:
            chains.setdefault(key, [None]).append(value)
    folded = {key: _fold(chain) for key, chain in chains.items()}
    out = {key: value for key, value in folded.items() if value is not None}
    if len(out) < len(folded):
        _refuse_mix(text, path)
    return out


def _refuse_mix(text: str, path: str) -> NoReturn:
    _values(_statements(text, path), path)  # raises, naming the `+=` that mixed a list and a string
    raise AssertionError(f"{path}: the detailed reader found no mix")


def strtol(text: str) -> int | None:
    """C's strtol(text, &ep, 0) when it consumes all of text, as xlu_cfg_get_long needs."""
    m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return None
    digits = m.group(2)
    if digits[:2].lower() == "0x":
        n = int(digits, 16)
    elif digits.startswith("0"):
        n = int(digits, 8)
    else:
        n = int(digits)
    n = -n if m.group(1) == "-" else n
    return n if -(2**63) <= n < 2**63 else None


@dataclass
class XlFile:
    """One parsed .xl file: its exact text, its statements, and edits that keep the rest intact."""

    text: str
    path: str
    values: dict[str, Resolved] = field(repr=False, compare=False)
    _statements: list[Assignment] | None = field(default=None, repr=False, compare=False)

    @property
    def statements(self) -> list[Assignment]:
        """The statements with their tokens' offsets, from the detailed reader, for edits."""
        if self._statements is None:
            self._statements = _statements(self.text, self.path)
        return self._statements

    # -- reading -------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self.values)

    def resolved(self) -> dict[str, Resolved]:
        """Every key's value after the whole file is read (last `=` wins, `+=` appends)."""
        return self.values

    def get(self, key: str) -> Resolved | None:
        return self.resolved().get(key)

    def string(self, key: str) -> str | None:
        v = self.get(key)
        return v.text if isinstance(v, Scalar) else None

    def number(self, key: str) -> int | None:
        """As xlu_cfg_get_long reads it: strtol of the text, refused after a `+=`."""
        v = self.get(key)
        return strtol(v.text) if isinstance(v, Scalar) and not v.added else None

    def strings(self, key: str) -> list[str] | None:
        v = self.get(key)
        if not isinstance(v, list):
            return None
        return [i.text for i in v if isinstance(i, Scalar)]

    def last(self, key: str) -> Assignment | None:
        for st in reversed(self.statements):
            if st.name == key:
                return st
        return None

    def line_of(self, key: str) -> int:
        st = self.last(key)
        return st.line if st else 0

    def to_json(self) -> dict[str, object]:
        def conv(v: Resolved, top: bool) -> object:
            if isinstance(v, list):
                return [conv(i, False) for i in v]
            if top and v.number and not v.added:  # `+=` makes text of it, for xl too
                n = strtol(v.text)
                if n is not None:
                    return n
            return v.text

        return {k: conv(v, True) for k, v in self.resolved().items()}

    # -- editing (each returns a new XlFile; the text outside the edit is untouched) ----------
    def _splice(self, start: int, end: int, new: str) -> XlFile:
        return parse(self.text[:start] + new + self.text[end:], self.path)

    def set(self, key: str, literal: str) -> XlFile:
        """Give key the value `literal` (xl syntax), in place of its last assignment."""
        statements = [st for st in self.statements if st.name == key]
        if not statements:
            return self.append(key, literal)
        doc = self
        # A `+=` chain collapses into one plain assignment: remove all but the first, then set.
        for st in reversed(statements[1:]):
            doc = doc._delete_statement(doc._find(st))
        first = doc.last(key)
        assert first is not None
        between = _between(doc, first)
        if first.op == "+=":  # what is left of a `+=` chain becomes a plain assignment
            between = between.replace("+=", "=", 1)
        doc = doc._splice(first.key.end, first.value.end, f"{between}{literal}")
        return doc

    def _find(self, st: Assignment) -> Assignment:
        for cand in self.statements:
            if cand.key.start == st.key.start:
                return cand
        raise KeyError(st.name)

    def _delete_statement(self, st: Assignment) -> XlFile:
        start, end = st.key.start, st.end_token.end
        line_start = self.text.rfind("\n", 0, start) + 1
        if self.text[line_start:start].strip() == "" and (
            st.end_token.kind in ("NEWLINE", "EOF") and not st.end_token.text.startswith("#")
        ):
            start = line_start
        return self._splice(start, end, "")

    def delete(self, key: str) -> XlFile:
        doc = self
        while (st := doc.last(key)) is not None:
            doc = doc._delete_statement(st)
        return doc

    def append(self, key: str, literal: str) -> XlFile:
        sep = "" if not self.text or self.text.endswith("\n") else "\n"
        width = max((len(st.name) for st in self.statements), default=0)
        pad = " " * max(0, width - len(key)) if _aligned(self) else ""
        return parse(f"{self.text}{sep}{key}{pad} = {literal}\n", self.path)

    def set_list(self, key: str, items: list[str]) -> XlFile:
        """Replace a list's items by quoted strings, keeping its one-line or multi-line layout."""
        st = self.last(key)
        if st is None or not isinstance(st.value, ListNode) or st.op != "=":
            return self.set(key, render_list(items))
        node = st.value
        inner = self.text[node.open.end : node.close.start]
        if "\n" not in inner or not node.items:
            return self.set(key, render_list(items))
        # Multi-line: one item per line, indented like the first existing item.
        first = node.items[0]
        line_start = self.text.rfind("\n", 0, first.start) + 1
        indent = self.text[line_start : first.start]
        if indent.strip():  # the first item shares the `[` line: indent the items on their own
            indent = "    "
        body = "".join(f"{indent}{quote(i)},\n" for i in items)
        close_line_start = self.text.rfind("\n", 0, node.close.start) + 1
        close_indent = self.text[close_line_start : node.close.start]
        if close_indent.strip():
            close_indent = ""
        return self._splice(node.open.end, node.close.start, "\n" + body + close_indent)


def _between(doc: XlFile, st: Assignment) -> str:
    """The text from the end of the key to the start of the value (` = `), as written."""
    return doc.text[st.key.end : st.value.start]


def _aligned(doc: XlFile) -> bool:
    """Whether the file lines up its `=` signs (MirageOS's files do)."""
    cols = {st.key.col + len(doc.text[st.key.start : st.value.start].split("=")[0])
            for st in doc.statements if st.key.col == 1}
    return len(cols) == 1 and len(doc.statements) > 1


def quote(value: str) -> str:
    if "'" not in value and "\\" not in value and "\n" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render_list(items: list[str]) -> str:
    if not items:
        return "[ ]"
    return "[ " + ", ".join(quote(i) for i in items) + " ]"


def _statements(text: str, path: str) -> list[Assignment]:
    return list(_Parser(_tokens(text, path), path).statements())


def _values(statements: Iterable[Assignment], path: str) -> dict[str, Resolved]:
    out: dict[str, Resolved] = {}
    for st in statements:
        new = _combine(out.get(st.name), _resolve(st.value), st.op)
        if new is None:  # `+=` type errors are parse errors in Xen too
            raise XlSyntaxError(path, st.line, st.key.col, f"{st.name} += mixes a list and a string")
        out[st.name] = new
    return out


def parse(text: str, path: str = "<string>") -> XlFile:
    if text.startswith("\ufeff"):  # the bytes EF BB BF: xl's lexer knows no such token
        raise XlSyntaxError(path, 1, 1, "a byte-order mark (U+FEFF) that xl refuses: save the file "
                                        "as UTF-8 without one")
    return XlFile(text, path, _read_values(text, path))


def read_text(path: str | Path) -> str:
    from lab.files import read_bytes

    p = Path(path)
    try:
        data = read_bytes(p)
    except FileNotFoundError:
        raise LabError(f"{p}: no such file", hint="give the .xl file that `mirage configure -t xen` wrote",
                       code=EXIT_USAGE) from None
    except OSError as exc:
        raise LabError(f"{p}: cannot read: {exc.strerror}", hint="check that it is a readable file",
                       code=EXIT_USAGE) from None
    return data.decode(ENCODING, ERRORS)


def read(path: str | Path) -> XlFile:
    return parse(read_text(path), str(path))


def write(doc: XlFile, path: str | Path) -> None:
    """Write aside, then rename: a crash never leaves a half-written .xl file. A symlinked file
    is written where the link points (the link stays a link), and an existing file keeps its
    permissions (a 0600 file with secrets in its boot arguments stays 0600)."""
    try:
        p = Path(path).resolve(strict=False) if Path(path).is_symlink() else Path(path)
        st = p.stat()
    except FileNotFoundError:
        st = None
    except (OSError, RuntimeError) as exc:  # a symlink loop, among others
        raise LabError(f"{path}: cannot write: {getattr(exc, 'strerror', None) or exc}",
                       hint="point it at a regular file, or remove it", code=EXIT_USAGE) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        # Renaming over it would replace a device node, a FIFO or a directory's entry with a file.
        raise LabError(f"{p}: not a regular file; xenlab writes .xl files only over regular files",
                       hint="give another path, or remove what is there", code=EXIT_USAGE)
    mode = stat.S_IMODE(st.st_mode) if st is not None else None
    # Short, whatever the name's length: a name near the 255-byte limit has no room for a suffix.
    tmp = p.with_name(f".xenlab-{os.getpid()}.tmp")
    try:
        tmp.write_bytes(doc.text.encode(ENCODING, ERRORS))
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LabError(f"{p}: cannot write: {exc.strerror}",
                       hint="check the directory's permissions and free space") from None
