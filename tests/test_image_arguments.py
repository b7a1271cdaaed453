"""`xenlab image`'s quick command-line reading (no click) held to click's own reading of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from helpers import xenlab
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import ui
from lab.cli import cli
from lab.image.arguments import ARGUMENT, OPTIONS, quick

PATHS = {ARGUMENT} | {o.dest for o in OPTIONS if o.path}


def clicks(argv: list[str]) -> dict[str, object] | None:
    """What click makes of `xenlab image KIND ...`: its parameters, or None for a usage error."""
    group = cli.commands["image"]
    assert isinstance(group, click.Group)
    command = group.commands[argv[1]]
    try:
        with command.make_context(argv[1], list(argv[2:]), resilient_parsing=False) as ctx:
            return {"kind": argv[1], **ctx.params}
    except click.exceptions.Exit:
        return None  # --help
    except click.UsageError:
        return None
    finally:
        ui.settings.json = False  # --json's callback


VALUES = st.sampled_from(["data", "data/", "d//x", "./data", "x.img", "out/x.img", "/", "16M", "-",
                          "", "-o", "--json", "my dir", "ümlaut", "a=b"])
NOISE = st.sampled_from(["-h", "--help", "--", "-x", "--outpu", "--json=1", "-o=x.img", "--output=",
                         "-v"])


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """Mostly well-formed `xenlab image` lines in every spelling click takes, in any order,
    sometimes with a piece repeated, missing or followed by noise."""
    value = draw(VALUES)
    pieces = [[draw(VALUES)],
              draw(st.sampled_from([["-o", value], ["--output", value], [f"--output={value}"],
                                    [f"-o{value}"]]))]
    size = draw(VALUES)
    pieces.append(draw(st.sampled_from([["--size", size], [f"--size={size}"], []])))
    pieces.append(draw(st.sampled_from([["--json"], []])))
    if draw(st.booleans()):
        pieces.append(draw(st.sampled_from(pieces)))  # repeated
    if draw(st.booleans()):
        pieces.pop(draw(st.integers(0, len(pieces) - 1)))  # missing
    pieces = draw(st.permutations(pieces))
    noise = draw(st.lists(NOISE, max_size=1))
    kind = draw(st.sampled_from(["fat", "tar", "zip"]))
    return ["image", kind, *(token for piece in pieces for token in piece), *noise]


@settings(max_examples=500, deadline=None)
@given(argv=command_lines())
def test_what_the_quick_reading_accepts_click_reads_the_same(argv: list[str]) -> None:
    fast = quick(argv)
    if fast is None:
        return  # click reads it, and says what is wrong if anything is
    slow = clicks(argv)
    assert slow is not None, f"quick accepted what click refuses: {argv}"
    assert fast.keys() == slow.keys()
    for key, value in fast.items():
        if key in PATHS:
            assert Path(value) == slow[key], (argv, key)
        else:
            assert value == slow[key], (argv, key)


@pytest.mark.parametrize("argv", [
    ["image", "fat", "data", "-o", "x.img"],
    ["image", "tar", "-o", "x.img", "data/"],
    ["image", "fat", "data", "--output=x.img", "--size", "8M", "--json"],
    ["image", "fat", "--json", "data", "--size=16M", "-o", "out/x.img"],
])
def test_the_usual_forms_are_read_quickly(argv: list[str]) -> None:
    fast = quick(argv)
    assert fast is not None and fast == {k: (str(v) if k in PATHS else v)
                                         for k, v in (clicks(argv) or {}).items()}


def test_the_quick_path_imports_neither_click_nor_what_it_avoids(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "A.TXT").write_text("a")
    # Measured from what the interpreter had loaded already (an editable install's finder loads
    # pathlib at start-up, for instance).
    code = ("import sys\nbefore = set(sys.modules)\nfrom lab.entry import main\n"
            f"sys.argv = ['xenlab', 'image', 'fat', {str(data)!r}, '-o', {str(tmp_path / 'x.img')!r}]\n"
            "main()\n"
            "print(sorted(m for m in ('click', 'rich', 'dataclasses', 'typing', 'pathlib', 'lab.cli',"
            " 'lab.config') if m in set(sys.modules) - before))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert (tmp_path / "x.img").stat().st_size > 2_000_000


def test_a_usage_error_still_comes_from_click(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    r = xenlab("image", "fat", tmp_path / "d", "--sise", "8M", "-o", tmp_path / "x.img")
    assert r.returncode == 2 and "No such option '--sise'. Did you mean '--size'?" in r.stderr
    assert not (tmp_path / "x.img").exists()
