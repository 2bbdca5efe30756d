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
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_module
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.emulator.sandbox import PathMap

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
                host, _ = self.paths.to_host(path, follow_last=False)
                st = os.lstat(host)
                mode, size, mtime = st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF
        except OSError:
            pass
        self._write(_STAT.pack(b"STAT", mode, size, mtime))

    def _list(self, path: str) -> None:
        entries: list[tuple[str, int, int, int]] = [(".", stat_module.S_IFDIR | 0o755, 0, 0), ("..", stat_module.S_IFDIR | 0o755, 0, 0)]
        try:
            phone = self.paths.resolve_phone(path)
            if self.paths.is_virtual_dir(phone):
                for name in self.paths.virtual_entries(phone):
                    entries.append((name, stat_module.S_IFDIR | 0o755, 0, 0))
            else:
                host, _ = self.paths.to_host(path)
                with os.scandir(host) as listing:
                    for entry in listing:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        entries.append((entry.name, st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF))
        except OSError:
            entries = []  # adbd answers an unreadable directory with just DONE
        for name, mode, size, mtime in entries:
            raw = name.encode("utf-8", "surrogateescape")
            self._write(_DENT.pack(b"DENT", mode, size, mtime, len(raw)) + raw)
        self._write(_DENT.pack(b"DONE", 0, 0, 0, 0))

    def _recv(self, path: str) -> None:
        try:
            host, _ = self.paths.to_host(path)
            with open(host, "rb") as f:
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
        out = None
        tmp: Path | None = None
        target: Path | None = None
        try:
            target, writable = self.paths.to_host(path, follow_last=False)
            if not writable:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            target.parent.mkdir(parents=True, exist_ok=True)  # adbd creates parents too
            if target.is_dir() and not target.is_symlink():
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".adbsync")
            tmp = Path(tmp_name)
            out = os.fdopen(fd, "wb")
        except OSError as exc:
            error = f"{path}: {exc.strerror or exc}"
        mtime = 0
        try:
            # Keep reading until DONE even after an error, so the stream stays in step.
            while True:
                ident, length = _ID.unpack(self._read(_ID.size))
                if ident == b"DONE":
                    mtime = length
                    break
                if ident != b"DATA" or length > SYNC_DATA_MAX:
                    self._fail(f"invalid sync packet {ident!r} ({length} bytes) during SEND")
                    raise SyncClosed("protocol error")
                data = self._read(length)
                if out is not None and error is None:
                    try:
                        out.write(data)
                    except OSError as exc:
                        error = f"write failed: {exc.strerror or exc}"
            if out is not None:
                try:
                    out.close()
                except OSError as exc:
                    error = error or f"write failed: {exc.strerror or exc}"
                out = None
            injected = self.faults.take_push_failure()
            if injected is not None and error is None:
                error = f"write failed: {injected}"
                log.info("fault: refusing push of %s (%s)", path, injected)
            if error is None and tmp is not None and target is not None:
                try:
                    if stat_module.S_ISLNK(mode):
                        link_target = tmp.read_text()
                        tmp.unlink()
                        tmp = None
                        if target.is_symlink() or target.exists():
                            target.unlink()
                        os.symlink(link_target, target)
                    else:
                        os.chmod(tmp, stat_module.S_IMODE(mode) or 0o644)
                        if mtime:
                            os.utime(tmp, (mtime, mtime))
                        os.replace(tmp, target)
                        tmp = None
                except OSError as exc:
                    error = f"{path}: {exc.strerror or exc}"
            if error is not None:
                self._fail(error)
            else:
                self._write(_ID.pack(b"OKAY", 0))
        finally:
            if out is not None:
                out.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
