"""The `xenlab` command: parses arguments, calls the library, renders results. Nothing else.

Only click is imported at module level; each verb imports what it needs, so `xenlab --help` stays
fast (see bench/).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lab.errors import EXIT_INTERRUPTED, LabError


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # Verbs in the order a user meets them, not alphabetical.
        return list(self.commands)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show each command xenlab runs and its output.")
@click.version_option(package_name="xenlab", prog_name="xenlab")
def cli(verbose: bool) -> None:
    """A Xen lab for unikernels: `xenlab up` builds it; `fix` and `image` prepare a unikernel."""
    from lab import ui

    ui.settings.verbose = verbose


def _json_mode(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    from lab import ui

    ui.settings.json = value  # human output goes quiet as soon as --json is seen
    return value


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, callback=_json_mode,
                        help="Print data as JSON on stdout.")(f)


def _lab_flags(f: Any) -> Any:
    """The settings declared as flags in lab/config.py, as options named after them."""
    from lab.config import FIELDS

    for name, field in reversed(FIELDS.items()):
        meta = field.metadata
        if meta["flag"]:
            kind = click.Choice(meta["choices"]) if meta["choices"] else type(field.default)
            f = click.option(f"--{name.replace('_', '-')}", name, type=kind,
                             help=f"{meta['help'][0].upper()}{meta['help'][1:]} "
                                  f"(default: {field.default}).")(f)
    return f


def _config(**flags: Any) -> Any:
    from lab import config

    return config.load(flags=flags)


def _state_dir(resolved: Any) -> Path:
    return Path(resolved.config.state_dir).resolve()


def _host_option(f: Any) -> Any:
    return click.option("--host", metavar="NAME",
                        help="Of several existing hosts, only NAME (default: all of them).")(f)


def _hosts(resolved: Any, host: str | None) -> Any:
    """The lab hosts a verb acts on: the directory's one lab, or those of several (--host)."""
    from lab import hosts

    return hosts.chosen(resolved, _state_dir(resolved), host)


def _one_host(resolved: Any, host: str | None, verb: str) -> Any:
    from lab import hosts

    return hosts.one(resolved, _state_dir(resolved), host, verb)


def _per_host(resolved: Any, results: dict[str, Any]) -> Any:
    """One host's result as it is; several as {"hosts": {name: result}}."""
    return {"hosts": results} if resolved.hosts else next(iter(results.values()))


@cli.command("up")
@_lab_flags
@_json_option
@click.option("--provision", is_flag=True,
              help="Run Ansible even when the lab is converged (it is skipped otherwise).")
@click.option("--trust-host-key", multiple=True, metavar="SHA256:...",
              help="Provider ssh: pin an existing host's SSH key on first contact if it has this "
                   "fingerprint (the error of a first `up` shows it; verify it on the host). "
                   "Repeat it for several hosts.")
@click.option("--allow-reboot", is_flag=True,
              help="Provider ssh: the existing host may be rebooted into Xen (never without).")
@click.option("--skip-tags", default="", hidden=True,
              help="Ansible tags to skip (comma-separated), for development.")
@_host_option
def up_cmd(as_json: bool, provision: bool, trust_host_key: tuple[str, ...], allow_reboot: bool,
           skip_tags: str, host: str | None, **settings: Any) -> None:
    """Build the lab VM, or take existing hosts, and make them Xen lab hosts; on a converged lab,
    only prove it still is."""
    from lab import ui
    from lab.verbs.up import Options, up, up_hosts

    resolved = _config(**settings)
    options = Options(tuple(t for t in skip_tags.split(",") if t), provision, allow_reboot,
                      trust_host_key)
    if not resolved.hosts:
        _one_host(resolved, host, "up")  # --host on a directory with one lab is an error
        result = up(resolved.config, _state_dir(resolved), options)
        if as_json:
            ui.emit_json(result.to_json())
        return
    chosen = _hosts(resolved, host)
    many = up_hosts(chosen, _state_dir(resolved), options)
    if as_json:
        ui.emit_json(many.to_json())
    if many.failed:
        raise LabError(f"{len(many.failed)} of {len(chosen)} hosts not ready: "
                       + "; ".join(f"{name}: {why}" for name, why in many.failed.items()),
                       hint=f"{', '.join(many.ready) or 'no host'} ready; after fixing the rest, "
                            "`xenlab up` again (a ready host is found converged and left alone)")


@cli.command("status")
@_lab_flags
@_json_option
@_host_option
def status_cmd(as_json: bool, host: str | None, **settings: Any) -> None:
    """Say whether the lab host is running, stopped, crashed, unreachable or absent."""
    from lab import ui
    from lab.verbs.lifecycle import status

    resolved = _config(**settings)
    data = _per_host(resolved, {h.name: status(h.config, h.state_dir) for h in _hosts(resolved, host)})
    if as_json:
        ui.emit_json(data)
        return
    for name, one in (data["hosts"] if resolved.hosts else {"": data}).items():
        if name:
            click.echo(f"[{name}]")
        for key, value in one.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            if value is not None:
                click.echo(f"{key}: {value}")


@cli.command("halt")
@_lab_flags
@_host_option
def halt_cmd(host: str | None, **settings: Any) -> None:
    """Power the lab VM off (ACPI first, then a hard stop after a timeout); never an existing host."""
    from lab.verbs.lifecycle import halt

    for h in _hosts(_config(**settings), host):
        halt(h.config, h.state_dir)


@cli.command("destroy")
@click.argument("name", required=False)
@_lab_flags
@_host_option
def destroy_cmd(name: str | None, host: str | None, **settings: Any) -> None:
    """Destroy the domain NAME on the lab; without NAME, remove the lab VM and its disk (from an
    existing host: only the domains deployed from here, and their files)."""
    resolved = _config(**settings)
    if name:
        from lab.domain import destroy as destroy_domain
        from lab.placement import holder

        h = holder(_hosts(resolved, host), name)
        destroy_domain(h.state_dir, name)
        return
    from lab.verbs.lifecycle import destroy

    for h in _hosts(resolved, host):
        destroy(h.config, h.state_dir)


def _guest_options(f: Any) -> Any:
    """What deploy and run share: how the file becomes a guest on the lab."""
    from lab.bootargs import DIALECTS

    options: list[Any] = [
        click.option("--image", "images", multiple=True, metavar="IMG=DIR",
                     help="Build block image IMG from DIR (fat:/tar: prefix or from the name)."),
        click.option("--strict", is_flag=True,
                     help="Refuse a file that needs repairs instead of repairing it."),
        click.option("--replace", is_flag=True, help="Replace a running domain of the same name."),
        click.option("--arg", "args", multiple=True, metavar="ARG",
                     help="A boot argument for the unikernel (repeatable), e.g. --arg --hello=world."),
        click.option("--static", is_flag=False, flag_value="", default=None, metavar="[IP]",
                     help="A static address as boot arguments: a free one of the static range, "
                          "or IP."),
        click.option("--arg-style", "dialect", type=click.Choice(DIALECTS),
                     help="Boot-argument dialect for --static: --ipv4=A/N (mirage4) or "
                          "ipv4=A/N (mirage3); default: from the kernel, else mirage4."),
        click.option("--network/--no-network", default=None,
                     help="Give the guest a vif on the lab bridge, or none; default: from the file."),
        click.option("--sha256", metavar="HEX",
                     help="Refuse a kernel whose sha256 differs (a binary unikernel's identity)."),
        _json_option,
        click.option("--host", metavar="NAME", help="Of several existing hosts, NAME (default: the "
                     "one with the most free memory that has the lab bridge)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _request(file: Path, **kw: Any) -> Any:
    from lab.verbs.deploy import Request

    return Request(file, **kw)


@cli.command("deploy")
@click.argument("file", type=click.Path(path_type=Path))
@_guest_options
@click.option("--probe", help="Wait until the guest answers: tcp:PORT or http://:PORT/path.")
@click.option("--timeout", default=180.0, show_default=True,
              help="Seconds to wait for the address (and again for the probe).")
@click.option("--ip", help="A fixed DHCP address for the guest (a dnsmasq reservation for its MAC).")
@click.option("--timings", is_flag=True, help="Print each phase's duration.")
def deploy_cmd(file: Path, as_json: bool, timings: bool, host: str | None, **kw: Any) -> None:
    """Put the unikernel FILE.xl (or MirageOS's FILE.xl.in) describes on the lab and print where
    it answers."""
    from lab import ui
    from lab.placement import place
    from lab.verbs.deploy import deploy

    resolved = _config()
    req = _request(file, **kw)
    req.check()  # before any host is asked where the guest goes
    h = place(_hosts(resolved, host), file)
    result = deploy(req, h.config, h.state_dir)
    if as_json:
        ui.emit_json({**result.to_json(), **({"host": h.name} if h.name else {})})
    else:
        click.echo(f"{result.name} {result.mac or '-'} {result.ip or '-'}" + (f" {h.name}" if h.name else ""))
        if timings:
            for phase, seconds in result.phases.items():
                click.echo(f"  {phase:<8} {seconds:6.2f} s", err=True)


@cli.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@_guest_options
@click.option("--timeout", default=300.0, show_default=True,
              help="Seconds the guest may run before it is stopped (exit 124).")
@click.option("--junit-xml", type=click.Path(path_type=Path), help="Write a JUnit report (for CI).")
def run_cmd(file: Path, as_json: bool, junit_xml: Path | None, host: str | None, **kw: Any) -> None:
    """Run FILE.xl's unikernel as a test: its console on stdout until it ends, then removed.
    Exit with the status its console reports (Solo5's `solo5_exit(N) called`; 0 for a plain
    poweroff), 1 for a crash or reboot, 124 at the timeout."""
    from lab import ui
    from lab.placement import place
    from lab.verbs.run import run, write_junit

    req = _request(file, **kw)
    req.check()  # before any host is asked where the guest goes
    h = place(_hosts(_config(), host), file)
    outcome = run(req, h.config, h.state_dir, echo=not as_json)
    if junit_xml:
        write_junit(outcome, junit_xml)
    if outcome.status_hidden and outcome.ended == "poweroff":
        ui.warn("the command line hides Solo5's exit line (--solo5:quiet, error or warn): only a "
                "poweroff and a crash can be told apart, not the exit status")
    if as_json:
        ui.emit_json(outcome.to_json())
    elif outcome.passed:
        ui.info(outcome.verdict())
    else:
        ui.error(outcome.verdict(), outcome.hint())
    sys.exit(outcome.exit_code)


@cli.command("list")
@_json_option
@_host_option
def list_cmd(as_json: bool, host: str | None) -> None:
    """The domains on the lab, with MAC, address and uptime (the lab host is the truth); of
    several hosts, every host's, each row naming its host (a host that is down is reported)."""
    from lab import ui
    from lab.domain import listing

    rows, down = [], 0
    for h in _hosts(_config(), host):
        try:
            rows += [{**({"host": h.name} if h.name else {}), **row} for row in listing(h.state_dir)]
        except LabError as exc:
            if not h.name:
                raise
            ui.warn(f"{h.name}: {exc.message}")
            down += 1
    if as_json:
        ui.emit_json(rows)
    else:
        for r in rows:
            up = f"up {r['uptime_s']:.0f} s" if r["uptime_s"] is not None else ""
            where = f"{r['host']:<12} " if "host" in r else ""
            click.echo(f"{where}{r['name']:<20} {r['state']:<8} {r['memory']:>5} MiB  "
                       f"{r['mac'] or '-':<17}  {r['ip'] or '-':<15} {r['address']:<6} {up}")
    if down:  # as topology does: the listing is incomplete
        sys.exit(1)


@cli.command("topology")
@click.option("--svg", type=click.Path(path_type=Path), help="Also draw it into FILE as SVG (Graphviz).")
@click.option("--png", type=click.Path(path_type=Path), help="Also draw it into FILE as PNG (Graphviz).")
@_json_option
@_lab_flags
@_host_option
def topology_cmd(svg: Path | None, png: Path | None, as_json: bool, host: str | None,
                 **settings: Any) -> None:
    """The live lab's network: your side, the lab NIC, the bridge, each guest's vif and address,
    dnsmasq, forwarding; problems marked where they are. Exit 1 when there is one."""
    from lab import ui
    from lab.topology_render import tree, write_image
    from lab.verbs.topology import read

    resolved = _config(**settings)
    if (svg or png) and resolved.hosts:
        _one_host(resolved, host, "a drawing")  # one picture per host
    topos, down = {}, []
    for h in _hosts(resolved, host):
        try:
            topos[h.name] = read(h.config, h.state_dir)
        except LabError as exc:
            if not h.name:
                raise
            ui.warn(f"{h.name}: {exc.message}")  # one host down: the others are still drawn
            down.append(h.name)
    for path, fmt in ((svg, "svg"), (png, "png")):
        if path is not None and topos:
            write_image(next(iter(topos.values())), path, fmt)
            ui.info(f"drawn into {path}")
    if as_json:
        ui.emit_json(_per_host(resolved, {name: t.to_json() for name, t in topos.items()}))
    else:
        for name, topo in topos.items():
            if name:
                click.echo(f"[{name}]")
            ui.print_out(tree(topo))
            click.echo(topo.summary())
    if down or any(t.problems() for t in topos.values()):
        sys.exit(1)


@cli.command("check")
@click.option("--junit-xml", type=click.Path(path_type=Path),
              help="Write a JUnit report (for CI); of several hosts, one per host (FILE-NAME.xml).")
@_host_option
def check_cmd(junit_xml: Path | None, host: str | None) -> None:
    """testinfra checks of the lab host and of every deployed guest's reachability."""
    from lab import ui
    from lab.verbs.check import check

    failed = []
    for h in _hosts(_config(), host):
        if h.name:
            click.echo(f"[{h.name}]")
        report = junit_xml.with_name(f"{junit_xml.stem}-{h.name}{junit_xml.suffix}") \
            if junit_xml and h.name else junit_xml
        if check(h.config, h.state_dir, report, ui.settings.verbose) != 0:
            failed.append(h.label)
    if failed:
        sys.exit(1)


@cli.command("console")
@click.argument("name")
@click.option("--log", is_flag=True, help="Print the captured console instead of attaching.")
@_host_option
def console_cmd(name: str, log: bool, host: str | None) -> None:
    """Attach to domain NAME's console (Ctrl-] leaves), or print its captured log."""
    from lab.placement import holder
    from lab.verbs.attach import console

    console(holder(_hosts(_config(), host), name).state_dir, name, log)


@cli.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@_host_option
def ssh_cmd(command: tuple[str, ...], host: str | None) -> None:
    """SSH into the lab host (with the pinned host key), or run COMMAND there."""
    from lab.verbs.attach import ssh

    ssh(_one_host(_config(), host, "ssh").state_dir, command)


@cli.command("config")
@_json_option
@_lab_flags
def config_cmd(as_json: bool, **settings: Any) -> None:
    """Print the effective lab settings and where each came from."""
    from dataclasses import asdict

    from lab import config, ui

    resolved = _config(**settings)
    values = asdict(resolved.config)
    # Each of several hosts: only the settings it has for itself.
    own = {host: {k: v for k, v in asdict(c).items() if v != values[k]} for host, c in resolved.hosts.items()}
    if as_json:
        data: dict[str, Any] = {k: {"value": v, "source": resolved.sources[k]} for k, v in values.items()}
        ui.emit_json({**data, "hosts": own} if own else data)
        return
    width = max(map(len, values))
    for name, value in values.items():
        help_text = config.FIELDS[name].metadata["help"]
        click.echo(f"{name:<{width}}  {value!s:<20}  {resolved.sources[name]:<18}  # {help_text}")
    for host, settings_of_host in own.items():
        click.echo(f"[hosts.{host}] " + ", ".join(f"{k} = {v!r}" for k, v in settings_of_host.items()))


@cli.group("xl")
def xl_group() -> None:
    """Read .xl domain configuration files the way Xen does."""


@xl_group.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=True, hidden=True)
def xl_show(file: Path, as_json: bool) -> None:
    """Print FILE's settings as one JSON object, each value as Xen reads it."""
    from lab import ui
    from lab.xl.syntax import read

    ui.emit_json(read(file).to_json())


@cli.command("fix")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--diff", "show_diff", is_flag=True, help="Show the repairs as a unified diff.")
@click.option("--write", is_flag=True, help="Apply the repairs to FILE.")
@click.option("--check", is_flag=True, help="Exit 1 when anything is found (for CI).")
@_json_option
def fix_cmd(file: Path, show_diff: bool, write: bool, check: bool, as_json: bool) -> None:
    """Lint FILE and repair what `mirage configure -t xen` gets wrong for a lab."""
    from lab import fix, ui

    report = fix.fix_file(file, _config().config)
    if as_json:
        ui.emit_json(report.to_json())
    else:
        for finding in report.findings:
            click.echo(finding.render(), err=show_diff)
        if not report.findings:
            click.echo(f"{file}: no problems found", err=True)
    if show_diff:
        sys.stdout.write(report.diff())
    if write and report.needs_write:
        fix.write(report)
        if not as_json:
            done = f"{len(report.repaired)} repair(s)"
            click.echo(f"{report.out_path}: written from {file.name}, {done}" if report.out_path != file
                       else f"{file}: {done} written", err=True)
    if check and report.findings:
        sys.exit(1)


@cli.group("image")
def image_group() -> None:
    """Build the block images a unikernel reads (FAT16 or tar)."""


def _image_command(kind: str, summary: str) -> None:
    from lab.image.arguments import ARGUMENT, OPTIONS

    def build(**params: Any) -> None:
        from lab.verbs.image import image

        image(kind, **params)

    for option in reversed(OPTIONS):
        if option.help is None:
            build = _json_option(build)
        else:
            build = click.option(*option.names, option.dest, required=option.required,
                                 type=click.Path(path_type=Path) if option.path else None,
                                 is_flag=not option.value, help=option.help)(build)
    build = click.argument(ARGUMENT, type=click.Path(path_type=Path))(build)
    image_group.command(kind, help=summary)(build)


def _image_commands() -> None:
    from lab.image.arguments import KINDS

    for kind, summary in KINDS.items():
        _image_command(kind, summary)


_image_commands()


def _command_path(ctx: click.Context | None) -> str:
    """`xenlab deploy`, however the executable was started (`python -m lab` included)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["xenlab", *reversed(names)])


def run() -> None:
    """The whole command line through click; lab.entry.main reports what this raises."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # click's own message, in the shape of every other refusal: one `error:` line, a hint.
        from lab import ui

        ctx = getattr(exc, "ctx", None)
        ui.error(exc.format_message(), f"`{_command_path(ctx)} --help` lists what it takes")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
