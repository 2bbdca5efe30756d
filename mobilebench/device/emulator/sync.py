"""adb's file sync service (``sync:``), device side: STAT, LIST, SEND, RECV, QUIT.

Requests are an 8-byte header (4-byte id, little-endian u32 length) and, for path
requests, the path. Replies:

- STAT -> ``STAT mode size mtime`` (all zero when the path does not exist; lstat, like
  adbd's v1 STAT);
- LIST -> one ``DENT mode size mtime namelen name`` per entry, then ``DONE`` + 16 zero
  bytes;
- RECV -> ``DATA len bytes`` chunks of at most 64 KiB, then ``DONE 0``, or ``FAIL len msg``;
- SEND ``path,mode`` -> the client streams ``DATA`` chunks and ``DONE mtime``; we answer
  ``OKAY 0`` or ``FAIL len msg``. Data goes to a temporary file that is renamed into place
  only when complete, so an interrupted push never leaves a file that looks whole.

Every file is reached through :class:`~.sandbox.PathMap`: symbolic links are resolved in
the phone's view, and no link is followed on the host (see :mod:`.sandbox`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import stat as stat_module
import struct
from collections.abc import Callable

from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.emulator.sandbox import PathMap
from mobilebench.files import atomic_writer_at

log = logging.getLogger("mobilebench.emulator")

SYNC_DATA_MAX = 64 * 1024
_MAX_PATH = 4096
_ID = struct.Struct("<4sI")
_STAT = struct.Struct("<4sIII")
_DENT = struct.Struct("<4sIIII")


class SyncClosed(Exception):
    """The stream ended (client closed it, or the connection dropped)."""


class SyncSession:
    """Serves one ``sync:`` stream.

    ``read(n)`` returns exactly n bytes or raises :class:`SyncClosed`; ``write(data)``
    queues reply bytes and ``flush()`` sends them (the caller handles flow control).
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        write: Callable[[bytes], None],
        flush: Callable[[], None],
        paths: PathMap,
        faults: FaultPlan,
    ) -> None:
        self._read, self._write, self._flush = read, write, flush
        self.paths = paths
        self.faults = faults

    def serve(self) -> None:
        handlers = {b"STAT": self._stat, b"LIST": self._list, b"RECV": self._recv, b"SEND": self._send}
        while True:
            try:
                ident, length = _ID.unpack(self._read(_ID.size))
            except SyncClosed:
                return
            if ident == b"QUIT":
                return
            handler = handlers.get(ident)
            if handler is None:
                self._fail(f"unknown sync request {ident!r}")
                self._flush()
                return
            if length > _MAX_PATH:
                self._fail(f"path too long ({length} bytes)")
                self._flush()
                return
            path = self._read(length).decode("utf-8", "surrogateescape")
            handler(path)
            self._flush()

    # -- replies --------------------------------------------------------------------------

    def _fail(self, message: str) -> None:
        data = message.encode()
        self._write(_ID.pack(b"FAIL", len(data)) + data)

    # -- requests -------------------------------------------------------------------------

    def _stat(self, path: str) -> None:
        mode = size = mtime = 0
        try:
            if self.paths.is_virtual_dir(self.paths.resolve_phone(path, follow_last=False)):
                mode = stat_module.S_IFDIR | 0o755
            else:
                st = self._lstat(path)
                mode, size, mtime = st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF
        except OSError:
            pass
        self._write(_STAT.pack(b"STAT", mode, size, mtime))

    def _lstat(self, path: str) -> os.stat_result:
        mount, parts = self.paths.locate(path, follow_last=False)
        if not parts:
            with self.paths.directory(mount, []) as fd:
                return os.fstat(fd)
        with self.paths.directory(mount, parts[:-1]) as dir_fd:
            return os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)

    def _list(self, path: str) -> None:
        entries: list[tuple[str, int, int, int]] = [(".", stat_module.S_IFDIR | 0o755, 0, 0), ("..", stat_module.S_IFDIR | 0o755, 0, 0)]
        try:
            phone = self.paths.resolve_phone(path)
            if self.paths.is_virtual_dir(phone):
                for name in self.paths.virtual_entries(phone):
                    entries.append((name, stat_module.S_IFDIR | 0o755, 0, 0))
            else:
                mount, parts = self.paths.locate(path)
                with self.paths.directory(mount, parts) as dir_fd:
                    for name in os.listdir(dir_fd):
                        try:
                            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                        except OSError:
                            continue
                        entries.append((name, st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF))
        except OSError:
            entries = []  # adbd answers an unreadable directory with just DONE
        for name, mode, size, mtime in entries:
            raw = name.encode("utf-8", "surrogateescape")
            self._write(_DENT.pack(b"DENT", mode, size, mtime, len(raw)) + raw)
        self._write(_DENT.pack(b"DONE", 0, 0, 0, 0))

    def _recv(self, path: str) -> None:
        try:
            mount, parts = self.paths.locate(path)
            if not parts:
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            with self.paths.directory(mount, parts[:-1]) as dir_fd:
                # Non-blocking: a FIFO the device made must not stall this stream.
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat_module.S_ISREG(st.st_mode):
                    raise OSError(errno.EINVAL, "not a regular file")
                if not self.paths.may_read(st):
                    raise OSError(errno.EACCES, os.strerror(errno.EACCES))
                while chunk := f.read(SYNC_DATA_MAX):
                    self._write(_ID.pack(b"DATA", len(chunk)) + chunk)
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            return
        self._write(_ID.pack(b"DONE", 0))

    def _send(self, spec: str) -> None:
        path, sep, mode_text = spec.rpartition(",")
        if not sep or not mode_text.isdigit():
            path, mode = spec, 0o644
        else:
            mode = int(mode_text)
        error: str | None = None
        try:
            with contextlib.ExitStack() as stack:
                try:
                    dir_fd, name = self._open_parent_for_send(path, stack)
                except OSError as exc:
                    self._receive(None)  # keep the stream in step
                    raise _Refused(f"{path}: {exc.strerror or exc}") from None
                if stat_module.S_ISLNK(mode):
                    self._send_symlink(dir_fd, name, self._receive_bytes())
                else:
                    # No set-id bits from a push (Android's /data is nosuid too).
                    permissions = stat_module.S_IMODE(mode) & 0o777 or 0o644
                    writer = atomic_writer_at(dir_fd, name, mode=permissions, owner=self.paths.owner, suffix=".adbsync")
                    with writer as out:
                        failure, mtime = self._receive(out)
                        failure = failure or self._injected_failure(path)
                        if failure:
                            raise _Refused(failure)  # the temporary file goes with it
                        if mtime:
                            os.utime(out.fileno(), (mtime, mtime))
        except _Refused as exc:
            error = str(exc)
        except OSError as exc:
            error = f"{path}: {exc.strerror or exc}"
        if error is not None:
            self._fail(error)
        else:
            self._write(_ID.pack(b"OKAY", 0))

    def _open_parent_for_send(self, path: str, stack: contextlib.ExitStack) -> tuple[int, str]:
        """The target's folder (made if missing, as adbd does) and its name."""
        mount, parts = self.paths.locate(path, follow_last=False)
        if not mount.writable:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        if not parts:
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        dir_fd = stack.enter_context(self.paths.directory(mount, parts[:-1], create=True))
        try:
            if stat_module.S_ISDIR(os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        except FileNotFoundError:
            pass
        return dir_fd, parts[-1]

    def _receive(self, out) -> tuple[str | None, int]:
        """Read DATA packets up to DONE into ``out`` (None: discard); returns (the first
        write error or None, the DONE packet's mtime). Reads on after an error, so that
        the stream stays in step."""
        error: str | None = None
        while True:
            ident, length = _ID.unpack(self._read(_ID.size))
            if ident == b"DONE":
                return error, length
            if ident != b"DATA" or length > SYNC_DATA_MAX:
                self._fail(f"invalid sync packet {ident!r} ({length} bytes) during SEND")
                raise SyncClosed("protocol error")
            data = self._read(length)
            if out is not None and error is None:
                try:
                    out.write(data)
                except OSError as exc:
                    error = f"write failed: {exc.strerror or exc}"

    def _receive_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self._receive(buffer)
        return buffer.getvalue()

    def _send_symlink(self, dir_fd: int, name: str, target: bytes) -> None:
        failure = self._injected_failure(name)
        if failure:
            raise _Refused(failure)
        tmp = f".{name}.{os.urandom(4).hex()}.adbsync"
        os.symlink(os.fsdecode(target), tmp, dir_fd=dir_fd)
        try:
            if self.paths.owner is not None:
                os.chown(tmp, *self.paths.owner, dir_fd=dir_fd, follow_symlinks=False)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(tmp, dir_fd=dir_fd)
            raise

    def _injected_failure(self, path: str) -> str | None:
        injected = self.faults.take_push_failure()
        if injected is None:
            return None
        log.info("fault: refusing push of %s (%s)", path, injected)
        return f"write failed: {injected}"


class _Refused(Exception):
    """A SEND that ends in FAIL with this message (after the data was read)."""
