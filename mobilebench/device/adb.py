"""Devices over ADB (TCP or USB), driven by adb-shell.

What this adds to adb-shell:

- its own TCP transport (:class:`SocketTransport`): adb-shell's stock one ignores partial
  ``send()``s on non-blocking sockets and spins until its read timeout when the device
  closes the connection; ours uses ``sendall`` and reports a closed connection at once;
- exit statuses for ``shell:`` (protocol v1 has none) via a sentinel line, kept out of
  the output that is streamed to callers while the command runs;
- one deadline for a whole command (adb-shell's timeouts bound single reads);
- quoting of every argument;
- reconnecting: after any timeout the connection is closed (adb-shell's stream state is
  unusable after one) and the next call reconnects; a dropped connection is retried once
  when the caller says the operation is safe to repeat;
- atomic pushes (temporary name, size check, ``chmod`` and ``mv``);
- errors that say what to do, as :class:`~mobilebench.errors.MobilebenchError`.

One :class:`AdbDevice` is one connection, used from one thread: adb-shell 0.4.4 loses a
stream's CLSE when another thread reads it first, so threads must not share one.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import socket
import stat as stat_module
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from adb_shell import exceptions as adb_errors
from adb_shell.adb_device import AdbDevice as _AdbShellDevice
from adb_shell.transport.base_transport import BaseTransport

from mobilebench.device.base import (
    CommandResult,
    Device,
    OutputCallback,
    OutputRelay,
    ProgressCallback,
    RemoteStat,
    check_local_file,
    check_mode,
    check_remote_path,
)
from mobilebench.device.keys import ensure_key_pair, load_signer
from mobilebench.device.profiles import DeviceProfile, split_address
from mobilebench.device.shell import build_command, new_marker, split_status, wrap_with_status
from mobilebench.device.state import DeviceState, parse_state, snapshot_script, state_script
from mobilebench.errors import MobilebenchError
from mobilebench.files import write_bytes_atomic

try:
    from adb_shell.transport.usb_transport import UsbTransport
except ImportError:  # the libusb1 bindings of adb-shell[usb] are missing
    UsbTransport = None

T = TypeVar("T")

STATE_TIMEOUT_S = 20.0
# Budget for moving bytes: at least this many seconds per MiB on top of the I/O timeout,
# which is generous for USB 2 (~30 MB/s) and Wi-Fi ADB (~5 MB/s).
_TRANSFER_S_PER_MIB = 1.0


class ConnectionDropped(ConnectionError):
    """The device closed the connection or the link failed mid-operation."""


class SocketTransport(BaseTransport):
    """ADB over TCP with real timeouts, complete writes and prompt EOF detection."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._sock: socket.socket | None = None

    def connect(self, transport_timeout_s: float | None) -> None:
        self._sock = socket.create_connection((self._host, self._port), timeout=transport_timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionDropped("not connected")
        return self._sock

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        sock = self._socket()
        sock.settimeout(transport_timeout_s)
        try:
            data = sock.recv(numbytes)
        except socket.timeout:
            raise adb_errors.TcpTimeoutException(f"no data from {self._host}:{self._port} for {transport_timeout_s} s") from None
        except OSError as exc:
            raise ConnectionDropped(str(exc)) from None
        if not data:
            raise ConnectionDropped("the device closed the connection")
        return data

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        sock = self._socket()
        sock.settimeout(transport_timeout_s)
        try:
            sock.sendall(data)
        except socket.timeout:
            raise adb_errors.TcpTimeoutException(f"sending to {self._host}:{self._port} timed out after {transport_timeout_s} s") from None
        except OSError as exc:
            raise ConnectionDropped(str(exc)) from None
        return len(data)


class DeadlineTransport(BaseTransport):
    """Wraps a transport so that every read and write ends by a monotonic deadline.

    adb-shell bounds each read by ``transport_timeout_s`` and ``read_timeout_s``, so a
    command that keeps printing would never time out; within :meth:`deadline` each
    transfer waits at most until the deadline and then raises AdbTimeoutError (also for
    USB, whose own timeout error would otherwise look like a dropped link).
    """

    def __init__(self, inner: BaseTransport) -> None:
        self._inner = inner
        self._deadline: float | None = None

    @contextlib.contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """Bound every transfer inside the block by ``at`` (``time.monotonic()`` seconds)."""
        self._deadline = at
        try:
            yield
        finally:
            self._deadline = None

    def _bounded(self, timeout_s: float | None) -> float | None:
        if self._deadline is None:
            return timeout_s
        remaining_s = self._deadline - time.monotonic()
        if remaining_s <= 0:
            raise adb_errors.AdbTimeoutError("the deadline passed")
        return remaining_s if timeout_s is None else min(timeout_s, remaining_s)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def connect(self, transport_timeout_s: float | None) -> None:
        self._inner.connect(transport_timeout_s)

    def close(self) -> None:
        self._inner.close()

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        try:
            return self._inner.bulk_read(numbytes, self._bounded(transport_timeout_s))
        except Exception:
            if self._past_deadline():
                raise adb_errors.AdbTimeoutError("the deadline passed") from None
            raise

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        try:
            return self._inner.bulk_write(data, self._bounded(transport_timeout_s))
        except Exception:
            if self._past_deadline():
                raise adb_errors.AdbTimeoutError("the deadline passed") from None
            raise


class SentinelHoldBack:
    """Splits a growing output into bytes safe to show now and a tail held back because
    it may be the start of the exit-status sentinel (see :func:`wrap_with_status`).

    Only the longest tail that is a prefix of ``marker`` is held (almost always nothing),
    so output reaches the caller while the command runs. Once the whole marker has arrived nothing more is released; what
    remains of the command's output is released by :meth:`finish`.
    """

    def __init__(self, marker: bytes) -> None:
        self._marker = marker
        self._output = bytearray()
        self._released = 0
        self._marker_seen = False

    @property
    def output(self) -> bytes:
        """Everything received so far, sentinel included."""
        return bytes(self._output)

    def feed(self, data: bytes) -> bytes:
        """Add ``data``; return the bytes that have become safe to show."""
        self._output += data
        if self._marker_seen:
            return b""
        # No marker can start before _released: a prefix of it would have been held.
        index = self._output.find(self._marker, self._released)
        if index >= 0:
            self._marker_seen = True
            safe = index
        else:
            safe = len(self._output) - self._held_length()
        released, self._released = self._output[self._released : safe], safe
        return bytes(released)

    def finish(self, stdout: bytes) -> bytes:
        """The rest of ``stdout`` (the output without its status sentinel) not yet
        released, up to the marker if ``stdout`` contains it."""
        end = stdout.find(self._marker, self._released)
        return stdout[self._released : end if end >= 0 else len(stdout)]

    def _held_length(self) -> int:
        tail = self._output[self._released :]
        for length in range(min(len(self._marker) - 1, len(tail)), 0, -1):
            if tail.endswith(self._marker[:length]):
                return length
        return 0


class _CallbackFailed(Exception):
    """Carries an exception raised by an output callback past the connection handling,
    which must not mistake it for a link failure."""


_TIMEOUTS = (adb_errors.TcpTimeoutException, adb_errors.AdbTimeoutError, socket.timeout)
# Anything that leaves the connection in an unknown state: reconnect before the next call.
_DROPS: tuple[type[BaseException], ...] = (
    ConnectionDropped,
    ConnectionError,
    adb_errors.InvalidChecksumError,
    adb_errors.InvalidCommandError,
    adb_errors.InvalidResponseError,
    adb_errors.AdbConnectionError,
    adb_errors.UsbReadFailedError,
    adb_errors.UsbWriteFailedError,
)


def _is_no_space(message: str) -> bool:
    lowered = message.lower()
    return "no space" in lowered or "enospc" in lowered or "disk full" in lowered or "quota" in lowered


class AdbDevice(Device):
    """A phone (or the phone emulator) over ADB. Use :func:`mobilebench.device.connect`."""

    def __init__(self, profile: DeviceProfile, *, timeout_s: float = 10.0, key_path: Path | None = None) -> None:
        if profile.transport not in ("adb-tcp", "adb-usb"):
            raise ValueError(f"AdbDevice needs an adb-* profile, got {profile.transport!r}")
        self.profile = profile
        self._io_timeout_s = float(timeout_s)
        self._key_path = key_path or (Path(profile.adb_key) if profile.adb_key else None)
        self._adb: _AdbShellDevice | None = None
        self._transport: DeadlineTransport | None = None

    # -- connection ----------------------------------------------------------------------

    def open(self) -> "AdbDevice":
        self._ensure_connected()
        return self

    def close(self) -> None:
        if self._adb is not None:
            try:
                self._adb.close()
            except Exception:  # noqa: BLE001 - closing a broken link must not raise
                pass
            self._adb = None
            self._transport = None

    def _make_transport(self) -> BaseTransport:
        if self.profile.transport == "adb-tcp":
            if not self.profile.address:
                raise MobilebenchError(
                    f"device {self.profile.name!r} uses ADB over TCP but has no address: pass --address HOST:PORT "
                    f"or set address in devices.toml ({self.profile.source})"
                )
            host, port = split_address(self.profile.address)
            return SocketTransport(host, port)
        if UsbTransport is None:
            raise self._fail(
                "USB needs libusb1: pip install 'adb-shell[usb]'; or use ADB over Wi-Fi "
                "(`adb tcpip 5555` once, then --address PHONE_IP:5555)"
            )
        try:
            return UsbTransport.find_adb(self.profile.serial, None, self._io_timeout_s)
        except adb_errors.UsbDeviceNotFoundError:
            raise self._fail(
                "no USB device with ADB found: plug the phone in with USB debugging on, and stop any "
                "adb server holding it (`adb kill-server`)"
            ) from None

    def _ensure_connected(self) -> _AdbShellDevice:
        if self._adb is not None:
            return self._adb
        key = ensure_key_pair(self._key_path)
        signer = load_signer(key)
        transport = DeadlineTransport(self._make_transport())
        adb = _AdbShellDevice(transport, default_transport_timeout_s=self._io_timeout_s, banner=b"mobilebench")
        sent_public_key: list[bool] = []  # set when every signature was refused
        timeout = self._io_timeout_s
        try:
            adb.connect(
                rsa_keys=[signer],
                transport_timeout_s=timeout,
                auth_timeout_s=timeout,
                read_timeout_s=timeout,
                auth_callback=lambda _device: sent_public_key.append(True),
            )
        except BaseException as exc:
            try:
                adb.close()
            except Exception:  # noqa: BLE001
                pass
            if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: not a connection failure
                raise
            if sent_public_key:
                raise self._fail(
                    f"the device did not accept this computer's ADB key {key}.pub; unlock the phone and accept "
                    f"the 'Allow USB debugging?' prompt (for the emulator: --accept-key {key}.pub), then retry"
                ) from None
            raise MobilebenchError(
                f"cannot reach device {self.profile.name!r} at {self.profile.endpoint}: {_describe(exc, timeout)}"
            ) from None
        self._adb, self._transport = adb, transport
        return adb

    def _with_connection(self, label: str, op: Callable[[_AdbShellDevice], T], *, idempotent: bool, timeout_s: float) -> T:
        """Run ``op`` on a live connection; reconnect and retry once on a drop if allowed."""
        for attempt in (1, 2):
            adb = self._ensure_connected()
            try:
                return op(adb)
            except _TIMEOUTS:
                self.close()  # adb-shell's stream is unusable after a timeout
                raise self._fail(f"{label} did not finish within {timeout_s:g} s") from None
            except _DROPS as exc:
                self.close()
                if idempotent and attempt == 1:
                    continue
                why = "retried once after reconnecting" if attempt == 2 else "not retried because it is not safe to repeat"
                raise self._fail(f"connection dropped during {label} ({_describe(exc, timeout_s)}); {why}") from None
        raise AssertionError("unreachable")

    # -- commands -------------------------------------------------------------------------

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
        script = build_command(argv, env=env, cwd=cwd)
        label = f"command {os.path.basename(argv[0])!r}"
        return self._run_script(script, label=label, timeout_s=timeout_s, idempotent=idempotent, on_output=on_output)

    def _run_script(
        self,
        script: str,
        *,
        label: str,
        timeout_s: float,
        idempotent: bool,
        on_output: OutputCallback | None = None,
        relay_until: str | None = None,
    ) -> CommandResult:
        """Run a shell script; ``on_output`` sees its output up to ``relay_until`` (a
        marker the script prints), by default all of it."""
        wrapped, sentinel = wrap_with_status(script)
        marker = (relay_until or sentinel).encode()  # where the output shown live ends

        def op(adb: _AdbShellDevice) -> tuple[SentinelHoldBack, OutputRelay, float]:
            # Fresh per attempt: a retried command's output starts over.
            hold_back, relay = SentinelHoldBack(marker), OutputRelay(on_output)
            start = time.monotonic()
            assert self._transport is not None  # set by _ensure_connected
            finished = False
            try:
                with self._transport.deadline(start + timeout_s):
                    chunks = adb.streaming_shell(wrapped, transport_timeout_s=timeout_s, read_timeout_s=timeout_s, decode=False)
                    for chunk in chunks:
                        released = hold_back.feed(chunk)
                        if released:
                            try:
                                relay.feed(released)
                            except Exception as exc:
                                raise _CallbackFailed() from exc
                finished = True
            finally:
                if not finished:
                    self.close()  # the stream was left half read (error or interrupt)
            return hold_back, relay, time.monotonic() - start

        try:
            hold_back, relay, duration_s = self._with_connection(label, op, idempotent=idempotent, timeout_s=timeout_s)
        except _CallbackFailed as exc:
            raise exc.__cause__ from None  # type: ignore[misc]
        out = hold_back.output
        parsed = split_status(out, sentinel)
        if parsed is None:
            tail = out[-200:].decode("utf-8", "replace")
            raise self._fail(f"{label} ended without reporting its exit status (the device closed the shell); last output: {tail!r}")
        stdout, code = parsed
        relay.feed(hold_back.finish(stdout), final=True)
        return CommandResult(stdout=stdout.decode("utf-8", "replace"), exit_code=code, duration_s=duration_s)

    def _check(self, script: str, label: str, *, idempotent: bool = True) -> str:
        result = self._run_script(script, label=label, timeout_s=max(self._io_timeout_s, 10.0), idempotent=idempotent)
        if result.exit_code != 0:
            raise self._fail(f"{label} failed (exit {result.exit_code}): {result.stdout.strip()[-300:]}")
        return result.stdout

    # -- files ----------------------------------------------------------------------------

    def _transfer_timeout_s(self, size: int) -> float:
        return self._io_timeout_s + _TRANSFER_S_PER_MIB * size / (1 << 20)

    def push(self, local: Path, remote: str, *, mode: int = 0o644, progress: ProgressCallback | None = None) -> None:
        local = check_local_file(local)
        check_remote_path(remote)
        check_mode(mode)
        size = local.stat().st_size
        tmp = f"{remote}.mbpart-{os.urandom(4).hex()}"
        label = f"push of {local.name} to {remote}"

        def op(adb: _AdbShellDevice) -> None:
            done = 0

            def on_chunk(_path: str, nbytes: int, _total: int) -> None:
                nonlocal done
                done += nbytes
                progress(min(done, size), size)  # type: ignore[misc]

            if progress is not None:
                progress(0, size)
            adb.push(
                str(local),
                tmp,
                st_mode=stat_module.S_IFREG | mode,
                progress_callback=on_chunk if progress is not None else None,
                transport_timeout_s=self._io_timeout_s,
                read_timeout_s=self._transfer_timeout_s(size),
            )
            mode_, pushed_size, _ = adb.stat(tmp, transport_timeout_s=self._io_timeout_s, read_timeout_s=self._io_timeout_s)
            if mode_ == 0 or pushed_size != size % (1 << 32):
                raise _PushIncomplete(f"the device has {pushed_size} of {size} bytes")

        try:
            self._with_connection(label, op, idempotent=True, timeout_s=self._transfer_timeout_s(size))
        except (adb_errors.PushFailedError, adb_errors.AdbCommandFailureException, _PushIncomplete) as exc:
            self._discard(tmp)
            message = _sync_message(exc)
            if _is_no_space(message):
                raise self._fail(
                    f"no space left for {remote} ({size / 1e6:.1f} MB); free space in {self.profile.workdir} and retry"
                ) from None
            raise self._fail(f"{label} failed: {message}") from None
        except MobilebenchError:
            self._discard(tmp)
            raise
        q_tmp, q_remote = shlex.quote(tmp), shlex.quote(remote)
        self._check(f"chmod {mode:o} {q_tmp} && mv -f {q_tmp} {q_remote}", f"rename of {remote}")

    def _discard(self, remote: str) -> None:
        """Best effort removal of a temporary file after a failed push."""
        try:
            self._run_script(f"rm -f {shlex.quote(remote)}", label="cleanup", timeout_s=self._io_timeout_s, idempotent=True)
        except MobilebenchError:
            pass

    def pull(self, remote: str, local: Path, *, progress: ProgressCallback | None = None) -> None:
        """Copy a device file here; it is received in memory (pulls are results and
        traces, not models) and then written atomically."""
        check_remote_path(remote)
        remote_stat = self.stat(remote)
        if remote_stat is None:
            raise self._fail(f"cannot pull {remote}: no such file on the device")
        if not remote_stat.is_file:
            raise self._fail(f"cannot pull {remote}: not a regular file")
        size = remote_stat.size

        def op(adb: _AdbShellDevice) -> bytes:
            done = 0

            def on_chunk(_path: str, nbytes: int, _total: int) -> None:
                nonlocal done
                done += nbytes
                progress(done, max(size, done))  # type: ignore[misc]

            received = io.BytesIO()
            adb.pull(
                remote,
                received,
                progress_callback=on_chunk if progress is not None else None,
                transport_timeout_s=self._io_timeout_s,
                read_timeout_s=self._transfer_timeout_s(size),
            )
            return received.getvalue()

        try:
            data = self._with_connection(f"pull of {remote}", op, idempotent=True, timeout_s=self._transfer_timeout_s(size))
        except adb_errors.AdbCommandFailureException as exc:
            raise self._fail(f"cannot pull {remote}: {_sync_message(exc)}") from None
        try:
            write_bytes_atomic(Path(local), data)
        except OSError as exc:
            raise self._fail(f"cannot write {local}: {exc.strerror or exc}") from None

    def stat(self, remote: str) -> RemoteStat | None:
        check_remote_path(remote)
        mode, size, mtime = self._with_connection(
            f"stat of {remote}",
            lambda adb: adb.stat(remote, transport_timeout_s=self._io_timeout_s, read_timeout_s=self._io_timeout_s),
            idempotent=True,
            timeout_s=self._io_timeout_s,
        )
        # adb's STAT answers all zeros for a missing path instead of an error.
        return None if mode == 0 else RemoteStat(remote, mode, size, mtime)

    def remove(self, remote: str) -> None:
        check_remote_path(remote)
        self._check(f"rm -f {shlex.quote(remote)}", f"removal of {remote}")

    def _chmod(self, remote: str, mode: int) -> None:
        self._check(f"chmod {mode:o} {shlex.quote(remote)}", f"chmod of {remote}")

    def _remote_digest(self, remote: str) -> tuple[str, str] | None:
        q = shlex.quote(remote)
        script = (
            f"if command -v sha256sum >/dev/null 2>&1; then printf 'sha256 '; sha256sum {q}; "
            f"elif command -v md5sum >/dev/null 2>&1; then printf 'md5 '; md5sum {q}; fi"
        )
        result = self._run_script(script, label=f"hash of {remote}", timeout_s=self._transfer_timeout_s(0) + 60, idempotent=True)
        parts = result.stdout.split()
        if result.exit_code != 0 or len(parts) < 2:
            return None
        algorithm, digest = parts[0], parts[1].lower()
        expected_len = {"sha256": 64, "md5": 32}.get(algorithm)
        if expected_len is None or len(digest) != expected_len or any(c not in "0123456789abcdef" for c in digest):
            return None
        return algorithm, digest

    # -- state ----------------------------------------------------------------------------

    def read_state(self, cpu: int) -> DeviceState:
        script = state_script(cpu, self.profile.workdir)
        result = self._run_script(script, label="state read", timeout_s=STATE_TIMEOUT_S, idempotent=True)
        return parse_state(result.stdout, cpu, thermal_zone=self.profile.thermal_zone)

    def read_snapshot(self, cpu: int) -> str:
        return self._run_script(snapshot_script(cpu), label="snapshot", timeout_s=STATE_TIMEOUT_S, idempotent=True).stdout

    def run_with_snapshots(
        self, argv: Sequence[str], *, cpu: int, timeout_s: float, on_output: OutputCallback | None = None
    ) -> tuple[str, CommandResult, str]:
        # One shell: the first snapshot is kept in a variable (so that the command's output
        # streams alone), then after the command: END:<status>, the first snapshot, END
        # again, the second snapshot. Snapshots use shell builtins only, so the command
        # starts and ends within microseconds of them.
        head, tail = new_marker("END")
        end = head + tail
        script = "\n".join(
            [
                f"mb_before=$({snapshot_script(cpu)})",
                build_command(argv),
                f"printf '%s%s:%d\\n%s\\n%s%s\\n' {head} {tail} \"$?\" \"$mb_before\" {head} {tail}",
                snapshot_script(cpu),
            ]
        )
        label = f"command {os.path.basename(argv[0])!r}"
        result = self._run_script(script, label=label, timeout_s=timeout_s, idempotent=False, on_output=on_output, relay_until=end)
        output, found, rest = result.stdout.partition(end + ":")
        status, _, rest = rest.partition("\n")
        before, _, after = rest.partition(end + "\n")
        if not found or not status.isdigit():
            raise self._fail(f"{label} ended without reporting its exit status; last output: {result.stdout[-200:]!r}")
        return before, CommandResult(stdout=output, exit_code=int(status), duration_s=result.duration_s), after


class _PushIncomplete(Exception):
    pass


def _sync_message(exc: BaseException) -> str:
    """The device's FAIL text out of adb-shell's exception (which may hold bytes)."""
    arg = exc.args[0] if exc.args else exc
    if isinstance(arg, (bytes, bytearray)):
        arg = arg.decode("utf-8", "replace")
    return " ".join(str(arg).replace("Command failed:", "").split()) or type(exc).__name__


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is adbd listening? for the emulator: `mobilebench emulator --port PORT`)"
    if isinstance(exc, _TIMEOUTS):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ConnectionDropped):
        return str(exc)
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
