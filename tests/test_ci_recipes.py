"""The CI recipes users copy (examples/ci/) hold together: every xenlab line in them is a command
line xenlab accepts, in the order a lab needs (up, a suite, check, destroy whatever happened), the
JUnit reports they write are the ones they upload, and they cache the directory xenlab keeps its
images in, under the key xenlab gives. The QEMU tier runs their xenlab lines on a real lab."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from ci_recipes import GITHUB, GITLAB, load, shell_lines, xenlab_commands
from conftest import ROOT

from lab.cli import cli


@pytest.mark.parametrize("recipe", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_every_xenlab_line_is_one_xenlab_accepts(recipe: Path) -> None:
    commands = xenlab_commands(recipe, "tests/xen")
    assert commands
    for argv in commands:
        group_ctx = click.Context(cli, info_name="xenlab")
        command = cli.get_command(group_ctx, argv[0])
        assert command is not None, argv
        try:
            command.make_context(argv[0], argv[1:], parent=group_ctx)  # options, types, choices
        except click.ClickException as exc:
            pytest.fail(f"{recipe.name}: xenlab {' '.join(argv)}: {exc.format_message()}")


@pytest.mark.parametrize("recipe", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_a_lab_comes_up_runs_the_suite_is_checked_and_goes(recipe: Path) -> None:
    verbs = [argv[0] for argv in xenlab_commands(recipe, "tests/xen") if argv[0] != "config"]
    assert verbs == ["up", "run", "check", "destroy"], verbs
    run = next(a for a in xenlab_commands(recipe, "tests/xen") if a[0] == "run")
    assert "tests/xen" in run and "--junit-xml" in run
    install = [line for line in shell_lines(recipe) if "install.sh" in line]
    assert install and shell_lines(recipe).index(install[0]) < next(
        i for i, line in enumerate(shell_lines(recipe)) if "xenlab up" in line)


def test_github_uploads_its_reports_destroys_always_and_caches_under_xenlabs_key() -> None:
    steps = next(iter(load(GITHUB)["jobs"].values()))["steps"]
    reports = [a[a.index("--junit-xml") + 1] for a in xenlab_commands(GITHUB, "s") if "--junit-xml" in a]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload.get("if") == "always()"
    assert all(Path(r).parent == Path(upload["with"]["path"]) for r in reports), reports
    assert next(s for s in steps if "xenlab destroy" in s.get("run", "")).get("if") == "always()"
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache"))
    assert cache["with"]["path"] == "~/.cache/xenlab"  # qemu_image.cache_dir() under $HOME
    keyed = next(s for s in steps if s.get("id") == "key")
    assert "xenlab config --cache-key" in keyed["run"]
    assert cache["with"]["key"] == "${{ steps.key.outputs.key }}"


def test_gitlab_reports_its_junit_destroys_always_and_caches_where_xenlab_keeps_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.providers import qemu_image

    job = load(GITLAB)["unikernels"]
    reports = [a[a.index("--junit-xml") + 1] for a in xenlab_commands(GITLAB, "s") if "--junit-xml" in a]
    assert sorted(job["artifacts"]["reports"]["junit"]) == sorted(reports)
    assert job["artifacts"]["when"] == "always"
    assert any("xenlab destroy" in line for line in job["after_script"])
    project = Path("/builds/group/project")
    monkeypatch.setenv("XDG_CACHE_HOME", job["variables"]["XDG_CACHE_HOME"].replace(
        "$CI_PROJECT_DIR", str(project)))
    assert [project / p for p in job["cache"]["paths"]] == [qemu_image.cache_dir()]


def test_the_readme_shows_them() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "examples/ci/github-actions.yml" in readme and "examples/ci/gitlab-ci.yml" in readme
