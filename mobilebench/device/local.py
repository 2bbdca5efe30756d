"""This computer as a device (the ``host`` profile): same interface, no ADB, no shell.

Commands run as argv lists with :mod:`subprocess` (never through a shell); exit statuses
are reported the way a shell would (127 not found, 126 not executable, 128+N for a
signal) so that callers see the same numbers on a phone and here. Files live under the
profile's ``workdir`` on the local disk.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mobilebench.device.base import (
    CommandResult,
    Device,
    OutputCallback,
    OutputRelay,
    ProgressCallback,
    RemoteStat,
    check_local_file,
    check_mode,
)
from mobilebench.device.profiles import DeviceProfile
from mobilebench.device.shell import quote_argv
from mobilebench.device.state import DeviceState, local_snapshot_lines, local_state_lines, parse_state
from mobilebench.errors import UsageError
from mobilebench.files import atomic_writer, file_sha256

_CHUNK = 1 << 20


class LocalDevice(Device):
    def __init__(self, profile: DeviceProfile) -> None:
        if profile.transport != "local":
            raise ValueError(f"LocalDevice needs a local profile, got {profile.transport!r}")
        self.profile = profile

    def open(self) -> "LocalDevice":
        return self

    def close(self) -> None:
        pass

    def _path(self, remote: str) -> Path:
        if not isinstance(remote, str) or not os.path.isabs(remote):
            raise UsageError(f"device paths must be absolute, got {remote!r}")
        return Path(remote)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        idempotent: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        quote_argv(argv)  # same argument checks as on a phone
        if cwd is not None and not os.path.isdir(cwd):
            return CommandResult(f"cd: {cwd}: No such file or directory\n", 2, 0.0)
        full_env = {**os.environ, **{k: str(v) for k, v in (env or {}).items()}}
        start = time.monotonic()
        try:
            # A new session so that a timeout kills the command's children too.
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            return CommandResult(f"{argv[0]}: not found\n", 127, time.monotonic() - start)
        except PermissionError:
            return CommandResult(f"{argv[0]}: Permission denied\n", 126, time.monotonic() - start)
        except OSError as exc:  # ENOEXEC: not a binary for this machine
            return CommandResult(f"{argv[0]}: {exc.strerror}\n", 126, time.monotonic() - start)
        relay = OutputRelay(on_output)
        try:
            out = _read_until_exit(proc, deadline=start + timeout_s, relay=relay)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise self._fail(f"command {os.path.basename(argv[0])!r} did not finish within {timeout_s:g} s") from None
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            proc.stdout.close()
        relay.feed(b"", final=True)
        code = proc.returncode
        return CommandResult(
            stdout=out.decode("utf-8", "replace"),
            exit_code=128 - code if code < 0 else code,  # -11 (SIGSEGV) -> 139, like a shell
            duration_s=time.monotonic() - start,
        )

    def push(self, local: Path, remote: str, *, mode: int = 0o644, progress: ProgressCallback | None = None) -> None:
        local = check_local_file(local)
        check_mode(mode)
        _copy_atomically(local, self._path(remote), mode=mode, progress=progress, fail=self._fail)

    def pull(self, remote: str, local: Path, *, progress: ProgressCallback | None = None) -> None:
        source = self._path(remote)
        if not source.is_file():
            raise self._fail(f"cannot pull {remote}: no such file")
        _copy_atomically(source, Path(local), mode=None, progress=progress, fail=self._fail)

    def stat(self, remote: str) -> RemoteStat | None:
        try:
            st = self._path(remote).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return RemoteStat(remote, st.st_mode, st.st_size, int(st.st_mtime))

    def remove(self, remote: str) -> None:
        try:
            self._path(remote).unlink(missing_ok=True)
        except IsADirectoryError:
            raise self._fail(f"cannot remove {remote}: it is a directory") from None

    def _chmod(self, remote: str, mode: int) -> None:
        os.chmod(self._path(remote), mode)

    def _remote_digest(self, remote: str) -> tuple[str, str] | None:
        path = self._path(remote)
        return ("sha256", file_sha256(path)) if path.is_file() else None

    def read_state(self, cpu: int) -> DeviceState:
        return parse_state(local_state_lines(cpu, self.profile.workdir), cpu, thermal_zone=self.profile.thermal_zone)

    def read_snapshot(self, cpu: int) -> str:
        return local_snapshot_lines(cpu)


def _read_until_exit(proc: subprocess.Popen, *, deadline: float, relay: OutputRelay) -> bytes:
    """Everything ``proc`` prints, passed to ``relay`` as it comes; then wait for its exit.

    Raises subprocess.TimeoutExpired at the monotonic ``deadline``. Like ``communicate``,
    it reads until every writer closes the pipe (children that keep it open count).
    """
    fd = proc.stdout.fileno()
    out = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            if not selector.select(remaining_s):
                continue
            data = os.read(fd, _CHUNK)
            if not data:
                break
            out += data
            relay.feed(data)
    proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
    return bytes(out)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _copy_atomically(source: Path, target: Path, *, mode: int | None, progress: ProgressCallback | None, fail) -> None:
    """Copy ``source`` to ``target`` through :func:`mobilebench.files.atomic_writer`."""
    size = source.stat().st_size
    try:
        with atomic_writer(target, mode=mode, suffix=".mbpart") as out, open(source, "rb") as src:
            done = 0
            if progress is not None:
                progress(0, size)
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise fail(f"no space left for {target} ({size / 1e6:.1f} MB); free space and retry") from None
        raise fail(f"cannot copy {source} to {target}: {exc.strerror or exc}") from None
