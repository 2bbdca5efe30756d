"""The interface every device offers, whatever carries the bytes (ADB or this computer).

A :class:`Device` is used from one thread at a time and is a context manager that
closes its connection on exit. Subclasses: :class:`~mobilebench.device.adb.AdbDevice`
(phones and the phone emulator, over adb-shell) and
:class:`~mobilebench.device.local.LocalDevice` (the ``host`` profile).
"""

from __future__ import annotations

import abc
import codecs
import signal
import stat as stat_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mobilebench.device.profiles import DeviceProfile
from mobilebench.device.state import DeviceState
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import file_digest

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while a file is transferred."""

OutputCallback = Callable[[str], None]
"""Called with each piece of a command's output (decoded text, not necessarily whole
lines) as it arrives; see :meth:`Device.run`."""

_HASHES = ("sha256", "md5")  # what devices offer, preferred first


@dataclass(frozen=True)
class CommandResult:
    """What a command printed (stdout and stderr together), its exit status, its time.

    Exit statuses follow the shell: 127 command not found, 126 not executable,
    128 + N killed by signal N (139 = segmentation fault).
    """

    stdout: str
    exit_code: int
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def start_failure(result: CommandResult) -> str | None:
    """Why a program a device was asked to start did not run (None: it exited 0), in the
    terms a phone's refusals come in: exec not permitted, the wrong ABI, a missing loader
    or library, a system call refused by seccomp, segments not aligned for the kernel's
    page size, a signal, or else the exit status and the last line it printed."""
    if result.exit_code == 0:
        return None
    text = result.stdout.lower()
    last = result.stdout.strip().splitlines()[-1][-200:] if result.stdout.strip() else "no output"
    if "not properly aligned" in text or "page size" in text or "elf load command" in text:
        return f"page size: its ELF segments are not aligned for this kernel's pages ({last})"
    if result.exit_code == 128 + signal.SIGSYS or "bad system call" in text:
        return "a system call was refused (SIGSYS: a seccomp filter)"
    if "exec format error" in text or "not executable: " in text:
        return f"exec format error: the program is for another ABI ({last})"
    if result.exit_code == 126 and "permission denied" in text:
        return f"exec not permitted: the folder is mounted noexec or policy forbids it ({last})"
    if result.exit_code == 127:
        return f"not found: the program, its loader or a library it needs is missing ({last})"
    if 128 < result.exit_code < 128 + 65:
        try:
            return f"killed by {signal.Signals(result.exit_code - 128).name} ({last})"
        except ValueError:
            pass
    return f"exit status {result.exit_code} ({last})"


class OutputRelay:
    """Passes raw output bytes on to an :data:`OutputCallback` as text.

    UTF-8 is decoded incrementally, so a character split between two reads is delivered
    whole with the second (invalid bytes become U+FFFD, as in ``CommandResult.stdout``).
    """

    def __init__(self, callback: OutputCallback | None) -> None:
        self._callback = callback
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes, *, final: bool = False) -> None:
        if self._callback is None:
            return
        text = self._decoder.decode(data, final)
        if text:
            self._callback(text)


@dataclass(frozen=True)
class RemoteStat:
    path: str
    mode: int  # st_mode: file type and permission bits
    size: int  # bytes (ADB's sync protocol reports sizes modulo 2**32)
    mtime: int  # seconds since the epoch

    @property
    def is_dir(self) -> bool:
        return stat_module.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat_module.S_ISREG(self.mode)

    @property
    def permissions(self) -> int:
        return stat_module.S_IMODE(self.mode)


def check_remote_path(remote: str) -> str:
    """Device paths must be absolute and printable; everything else is quoted anyway."""
    if not isinstance(remote, str) or not remote.startswith("/"):
        raise UsageError(f"device paths must be absolute, got {remote!r}")
    if any(c in remote for c in "\0\n"):
        raise UsageError(f"device paths must not contain NUL or newline characters: {remote!r}")
    return remote


def check_local_file(local: Path) -> Path:
    local = Path(local)
    if not local.is_file():
        raise UsageError(f"cannot push {local}: {'not a regular file' if local.exists() else 'no such file'}")
    return local


def check_mode(mode: int) -> int:
    if not isinstance(mode, int) or not 0 <= mode <= 0o7777:
        raise UsageError(f"file mode must be between 0 and 0o7777, got {mode!r}")
    return mode


class Device(abc.ABC):
    """One connected device. Use :func:`mobilebench.device.connect` to get one."""

    profile: DeviceProfile

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self.profile.name

    # -- the operations every transport implements ------------------------------------

    @abc.abstractmethod
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
        """Run ``argv`` (each argument quoted, never interpreted by a shell).

        A non-zero exit status is returned, not raised. Raises MobilebenchError when the
        command does not finish within ``timeout_s`` (the whole command, however much it
        prints) or the connection drops; a dropped connection is retried once after
        reconnecting only when ``idempotent``.

        ``on_output``, when given, is called from the calling thread with the output
        (stdout and stderr merged) while the command runs, as UTF-8 text pieces that
        are not necessarily whole lines; their concatenation is ``CommandResult.stdout``.
        If a dropped connection is retried (``idempotent`` only), the callback sees the
        output of the first attempt and then all of the second's, so it must tolerate a
        restart. An exception raised by the callback ends the command and propagates.
        """

    @abc.abstractmethod
    def push(self, local: Path, remote: str, *, mode: int = 0o644, progress: ProgressCallback | None = None) -> None:
        """Copy a file to the device atomically: to a temporary name, then renamed, so an
        interrupted push never leaves a file that looks complete."""

    @abc.abstractmethod
    def pull(self, remote: str, local: Path, *, progress: ProgressCallback | None = None) -> None:
        """Copy a file from the device (written to a temporary name, then renamed)."""

    @abc.abstractmethod
    def stat(self, remote: str) -> RemoteStat | None:
        """The file's mode, size and mtime, or None if it does not exist."""

    @abc.abstractmethod
    def remove(self, remote: str) -> None:
        """Delete a file; a missing file is not an error."""

    @abc.abstractmethod
    def read_state(self, cpu: int) -> DeviceState:
        """Identity, frequency and governor of ``cpu``, temperatures, free space, root."""

    @abc.abstractmethod
    def read_snapshot(self, cpu: int) -> str:
        """``cpu``'s frequency and governor and the temperatures, as the ``key=value``
        lines of :func:`~mobilebench.device.state.snapshot_script`."""

    def run_with_snapshots(
        self, argv: Sequence[str], *, cpu: int, timeout_s: float, on_output: OutputCallback | None = None
    ) -> tuple[str, CommandResult, str]:
        """:meth:`run` a benchmark between two :meth:`read_snapshot` of ``cpu``, taken
        right before it starts and right after it ends; returns (before, result, after),
        to be read with :meth:`DeviceState.with_snapshot`. Transports with a round trip
        per command (ADB) take all three in one. Never retried: a benchmark is not
        idempotent."""
        before = self.read_snapshot(cpu)
        result = self.run(argv, timeout_s=timeout_s, on_output=on_output)
        return before, result, self.read_snapshot(cpu)

    @abc.abstractmethod
    def close(self) -> None:
        """Drop the connection (idempotent)."""

    @abc.abstractmethod
    def _remote_digest(self, remote: str) -> tuple[str, str] | None:
        """(algorithm, hex digest) of a device file, or None if it cannot be hashed."""

    @abc.abstractmethod
    def _chmod(self, remote: str, mode: int) -> None:
        """Set a device file's permission bits."""

    # -- shared behaviour ---------------------------------------------------------------

    def push_if_changed(
        self, local: Path, remote: str, *, mode: int = 0o644, progress: ProgressCallback | None = None
    ) -> bool:
        """Push unless the device already has an identical file; True if it pushed.

        Identical means same size and same hash (sha256, or md5 where the device has no
        sha256sum). A identical file with other permissions is only chmod-ed.
        """
        local = check_local_file(local)
        check_remote_path(remote)
        check_mode(mode)
        remote_stat = self.stat(remote)
        if remote_stat is not None and remote_stat.is_file and remote_stat.size == local.stat().st_size % (1 << 32):
            digest = self._remote_digest(remote)
            if digest is not None and digest[0] in _HASHES and digest[1] == file_digest(local, digest[0]):
                if remote_stat.permissions != mode:
                    self._chmod(remote, mode)
                if progress is not None:
                    size = local.stat().st_size
                    progress(size, size)
                return False
        self.push(local, remote, mode=mode, progress=progress)
        return True

    def _fail(self, message: str) -> MobilebenchError:
        return MobilebenchError(f"device {self.profile.name!r} ({self.profile.endpoint}): {message}")
