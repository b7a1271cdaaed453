"""Commands and files on the lab host over the pinned SSH connection (paramiko).

Every remote command is an argument list joined with shlex quoting: user input (a domain name,
a path) is always one argument, never shell syntax, so a domain named `x; rm -rf /` is harmless.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import run, ui
from lab.errors import die, no_lab
from lab.ssh import SshFiles, SshTarget, connect

if TYPE_CHECKING:
    from lab.lab import Lab


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


@dataclass(frozen=True)
class ShellScript:
    """A fixed shell script and the values it reads as "$1", "$2", ...: user input is only ever
    an argument, never spliced into the script's text (tmt's ShellScript, as argv)."""

    text: str
    args: tuple[str, ...] = ()
    name: str = "xenlab"  # $0, shown by ps on the lab host

    def __call__(self, *args: str) -> ShellScript:
        """The same script with these arguments."""
        return ShellScript(self.text, args, self.name)

    def argv(self) -> list[str]:
        return ["sh", "-c", self.text, self.name, *self.args]

    @staticmethod
    def naming(parameters: Sequence[str]) -> str:
        """A script's first line that names its positional parameters: `a=$1 b=$2 ...`."""
        return " ".join(f"{p}=${{{i}}}" for i, p in enumerate(parameters, 1))


Command = Sequence[str] | ShellScript
LOST = "lost the SSH connection to the lab host"
RERUN = "run the same command again: uploads already done are checked by sha256, not repeated"


class Remote:
    def __init__(self, files: SshFiles, target: SshTarget) -> None:
        self.files, self.target = files, target
        self.client = connect(files, target)

    @classmethod
    def open(cls, lab: Lab) -> Remote:
        ssh = lab.state.ssh
        if not ssh:
            no_lab(lab.state_dir)
        target = SshTarget(ssh["host"], int(ssh["port"]), ssh["user"], Path(ssh["identity"]))
        return cls(SshFiles.in_dir(lab.state_dir), target)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connected(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and bool(transport.is_active())

    def _channel(self, timeout: float) -> Any:
        """A fresh session channel; a transport that died between commands (paramiko's
        intermittent "Mismatched MAC" over slow links) is replaced once: nothing ran on it yet."""
        import paramiko

        for attempt in (1, 2):
            try:
                if not self._connected():
                    raise paramiko.SSHException("SSH session not active")
                channel = self.client.get_transport().open_session(timeout=timeout)
                channel.settimeout(timeout)
                return channel
            except (paramiko.SSHException, EOFError, OSError) as exc:
                _stop_if_interrupted(exc)
                if attempt == 2:
                    die(f"{LOST}: {exc}", hint=RERUN)
                ui.detail(f"reconnecting to the lab host after: {exc}")
                self.client.close()
                self.client = connect(self.files, self.target)
        raise AssertionError("unreachable")

    def run(self, cmd: Command, *, sudo: bool = False, check: bool = True,
            timeout: float = 120, what: str | None = None, idempotent: bool = True) -> Result:
        """Run cmd (argv, or a ShellScript) on the lab host. A command that is safe to run twice
        (most are: reads, `install`, `rm -f`) is run once more on a fresh connection when the
        transport dies under it; one that is not (`xl create`, `xl destroy`) says so and stops."""
        import paramiko

        command = _command_line(cmd, sudo)
        label = cmd.name if isinstance(cmd, ShellScript) else cmd[0]
        ui.detail(f"lab$ {command}")
        for attempt in (1, 2):
            channel = self._channel(timeout)
            try:
                channel.exec_command(command)
                stdout, stderr = channel.makefile("rb"), channel.makefile_stderr("rb")
                out = stdout.read().decode(errors="replace")
                err = stderr.read().decode(errors="replace")
                rc = channel.recv_exit_status()
                if rc == -1 and not self._connected():
                    # paramiko ends the streams quietly when the connection drops: no exit status
                    raise EOFError("the connection closed before the command finished")
                break
            except (paramiko.SSHException, EOFError, OSError) as exc:
                _stop_if_interrupted(exc)
                if attempt == 2 or not idempotent:
                    die(f"{LOST} while running {label}: {exc}", hint=RERUN)
                ui.detail(f"running {label} again after: {exc}")
            finally:
                channel.close()
        if check and rc != 0:
            reason = run.tail(err)
            die(f"{what or label} failed on the lab host: {reason or f'exit {rc}'}")
        return Result(rc, out, err)

    def follow(self, cmd: Command, on_line: Callable[[str], None], *,
               sudo: bool = False) -> Follower:
        """Start cmd (a `tail -F`) on its own channel; on_line gets each stdout line as it
        arrives, on a thread, until Follower.stop(). Never retried: a follower only reads."""
        command = _command_line(cmd, sudo)
        ui.detail(f"lab$ {command} (followed)")
        channel = self._channel(30)
        channel.settimeout(None)
        # A terminal, so that closing the channel hangs the remote command up: a `tail -F` never
        # ends by itself and must not outlive the follow on the lab host.
        channel.get_pty(term="dumb", width=1000)
        channel.exec_command(command)
        return Follower(channel, on_line)

    def run_paused(self, cmd: Command, ready: str, action: Callable[[], None], *,
                   sudo: bool = False, timeout: float = 120, what: str | None = None) -> Result:
        """Run cmd, which prints the line `ready` and then waits for a line on its stdin; run
        action() at that moment, then send the line. For a state the lab host must hold only
        while something happens on this side (a frozen file system while QEMU starts a backup).
        The command must end by itself if the line never comes: this side may die first."""
        command = _command_line(cmd, sudo)
        label = what or (cmd.name if isinstance(cmd, ShellScript) else cmd[0])
        ui.detail(f"lab$ {command} (paused at {ready!r})")
        channel = self._channel(timeout)
        try:
            channel.exec_command(command)
            stdout = channel.makefile("rb")
            out: list[str] = []
            while (line := stdout.readline().decode(errors="replace")) and line.rstrip("\n") != ready:
                out.append(line)
            if not line:
                err = channel.makefile_stderr("rb").read().decode(errors="replace")
                die(f"{label} ended before it was ready: {run.tail(err) or run.tail(''.join(out))}")
            try:
                action()
            finally:
                channel.sendall(b"\n")
            out.append(stdout.read().decode(errors="replace"))
            err = channel.makefile_stderr("rb").read().decode(errors="replace")
            rc = channel.recv_exit_status()
        finally:
            channel.close()
        if rc != 0:
            die(f"{label} failed on the lab host: {run.tail(err) or f'exit {rc}'}")
        return Result(rc, "".join(out), err)

    def _sftp(self) -> Any:
        # One SFTP channel per transfer, closed after it: no channel idles beside the commands.
        self._channel(30).close()  # reconnects first if the transport died
        return self.client.open_sftp()

    def sha256(self, path: str) -> str | None:
        r = self.run(["sha256sum", "--", path], check=False)
        return r.out.split()[0] if r.rc == 0 and r.out else None

    def put(self, local: Path, remote: str, progress: Callable[[int, int], None] | None = None,
            remote_sha256: str | None = None, local_sha256: str | None = None) -> int:
        """Upload to a temporary name, then rename into place: an interrupted upload never leaves
        a truncated file under the real name. Returns the bytes sent (0 when already there).
        remote_sha256: the lab copy's hash when the caller already read it ("" : no such file)."""
        there = self.sha256(remote) if remote_sha256 is None else remote_sha256
        if there and there == (local_sha256 or sha256_file(local)):
            return 0

        def send(sftp: Any, partial: str, checkpoint: Callable[[], None]) -> None:
            def each_chunk(done: int, total: int) -> None:
                checkpoint()
                if progress is not None:
                    progress(done, total)

            sftp.put(str(local), partial, callback=each_chunk)

        self._transfer(remote, f"uploading {local.name}", send)
        return local.stat().st_size

    def write_text(self, remote: str, text: str) -> None:
        def write(sftp: Any, partial: str, checkpoint: Callable[[], None]) -> None:
            with sftp.open(partial, "w") as f:
                f.write(text)

        self._transfer(remote, f"writing {remote}", write)

    def _transfer(self, remote: str, what: str,
                  send: Callable[[Any, str, Callable[[], None]], None]) -> None:
        """send() into a temporary name, renamed into place; a transfer cut by a dying connection
        starts over once on a fresh one (it is whole-file, so repeating it is safe). send() calls
        the checkpoint between chunks: that is where a Ctrl-C takes effect."""
        import paramiko

        partial = f"{remote}.partial-{os.getpid()}"
        for attempt in (1, 2):
            sftp = self._sftp()
            try:
                with _HeldInterrupt() as held:
                    send(sftp, partial, held.checkpoint)
                    sftp.posix_rename(partial, remote)
                return
            except KeyboardInterrupt:
                with contextlib.suppress(Exception):
                    sftp.remove(partial)
                raise
            except (paramiko.SSHException, EOFError, OSError) as exc:
                _stop_if_interrupted(exc)
                with contextlib.suppress(Exception):
                    sftp.remove(partial)
                # SFTP's refusals are plain OSErrors on an open channel; EOFError and SSHException
                # are the link, even before the transport thread has noticed it is gone.
                if isinstance(exc, OSError) and not sftp.get_channel().closed and self._connected():
                    die(f"{what} on the lab host failed: {exc}")
                if attempt == 2:
                    die(f"{LOST} while {what}: {exc}", hint=RERUN)
                ui.detail(f"{what} again after: {exc}")
            finally:
                with contextlib.suppress(Exception):
                    sftp.close()


class Connecting:
    """A connection to the lab host opened on a thread while this one does local work (deploy's
    repairs, images and hashes): the SSH handshake, slow on a lab under TCG, then costs nothing.
    wait() returns it, or raises what opening it raised, in the caller's order of events."""

    def __init__(self, lab: Lab) -> None:
        self._result: Remote | BaseException | None = None
        self._unwanted = False
        self._lock = threading.Lock()
        # Not a daemon: a daemon thread killed at exit in the middle of the SSH handshake aborts
        # the interpreter (SIGABRT, "exception not rethrown"; seen in CI after a bad-input error).
        # Exit waits for it instead: it closes its connection at once when discarded.
        self._thread = threading.Thread(target=self._open, args=(lab,))
        self._thread.start()

    def _open(self, lab: Lab) -> None:
        try:
            result: Remote | BaseException = Remote.open(lab)
        except BaseException as exc:  # handed to wait(), raised there
            result = exc
        with self._lock:
            self._result = result
            if self._unwanted and isinstance(result, Remote):
                result.close()

    def wait(self) -> Remote:
        self._thread.join()
        if isinstance(self._result, BaseException):
            raise self._result
        assert self._result is not None
        return self._result

    def discard(self) -> None:
        """The local work failed: close the connection whenever it is open, without waiting."""
        with self._lock:
            self._unwanted = True
            if isinstance(self._result, Remote):
                self._result.close()


def as_root(argv: Sequence[str]) -> list[str]:
    """argv run as root on the lab host: sudo that never asks (xenlab's user needs no password;
    a prompt would hang an SSH channel without a terminal)."""
    return ["sudo", "-n", *argv]


def _command_line(cmd: Command, sudo: bool) -> str:
    """The one line sshd hands the lab host's shell: every word quoted, the script's too."""
    argv = cmd.argv() if isinstance(cmd, ShellScript) else list(cmd)
    return shlex.join(as_root(argv) if sudo else argv)


class Follower:
    def __init__(self, channel: Any, on_line: Callable[[str], None]) -> None:
        self.channel, self.on_line = channel, on_line
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        with contextlib.suppress(Exception):  # the channel closes under us on stop(): that ends it
            while chunk := self.channel.recv(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self.on_line(line.decode(errors="replace").rstrip("\r"))
        if buffer:
            self.on_line(buffer.decode(errors="replace").rstrip("\r"))

    def stop(self, linger: float = 0.0) -> None:
        """Stop following, after linger seconds for output still on its way."""
        self.thread.join(timeout=linger)
        self.channel.close()
        self.thread.join(timeout=5)


class _HeldInterrupt:
    """Ctrl-C held until the next checkpoint between two SFTP writes. Raised in the middle of one,
    it leaves a packet half-sent: the server waits for the rest, and the SFTP close on the way out
    waits for an answer that never comes (a hang, seen in CI). A second Ctrl-C is not held: a
    transfer stuck on a dead link must still be stoppable."""

    def __init__(self) -> None:
        self.pending = False
        self.previous: Any = None

    def __enter__(self) -> _HeldInterrupt:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: object) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def checkpoint(self) -> None:
        if self.pending:
            raise KeyboardInterrupt

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if kind is None:
            self.checkpoint()


def _stop_if_interrupted(exc: BaseException) -> None:
    """A Ctrl-C can land between paramiko writing half a packet and the rest: paramiko's cleanup
    on the way out (closing the remote file) then fails on the broken stream, and that error hides
    the KeyboardInterrupt as its context. The user asked to stop, so stop; never retry."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):  # or SIGTERM's subclass of it: the same kind
            raise type(cause)() from exc
        cause = cause.__context__


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
