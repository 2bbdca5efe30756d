"""Files: atomic writes (readers see the old file or the new one, never half of either),
writes confined to a directory tree that others may change meanwhile, and the one file
hasher."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from mobilebench.errors import MobilebenchError


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int | None = None, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` (after an
    fsync) only when the ``with`` block ends without an exception, and is removed if not.

    The file is a temporary one in the same folder, named ``.<name>.<random><suffix>``,
    so that callers who clean up interrupted writes can find their own leftovers.
    ``mode`` is the new file's permission bits (default: the replaced file's, or
    rw-r--r--, since a report is meant to be read and committed). An OSError from
    writing names ``path`` (a full disk says which file it could not write).
    """
    path = Path(path)
    if path.is_dir():
        raise MobilebenchError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with atomic_writer_at(dir_fd, path.name, mode=mode, suffix=suffix) as handle:
            yield handle
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def atomic_writer_at(
    dir_fd: int, name: str, *, mode: int = 0o644, suffix: str = ".tmp", owner: tuple[int, int] | None = None, fsync: bool = True
) -> Iterator[BinaryIO]:
    """:func:`atomic_writer` for the entry ``name`` of the open directory ``dir_fd``,
    following no symbolic link: the temporary file is created with ``O_EXCL |
    O_NOFOLLOW`` and renamed over ``name`` (a link there is replaced, never written
    through). With :func:`open_dir_beneath` this confines writes to a tree that someone
    else may change at the same time (the phone emulator's files, which the device's own
    shell can rearrange).

    ``owner`` (uid, gid) is given to the new file (the caller must be allowed to);
    ``fsync=False`` skips the flush to disk where the content is not worth keeping
    across a crash (the emulator's simulated sensor values).
    """
    if not name or name in (".", "..") or "/" in name:
        raise ValueError(f"not a file name: {name!r}")
    tmp = f".{name}.{secrets.token_hex(4)}{suffix}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            os.fchmod(handle.fileno(), mode)  # after fchown, which clears set-id bits
            if fsync:
                os.fsync(handle.fileno())
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir_beneath(
    root_fd: int, parts: Sequence[str], *, create: bool = False, mode: int = 0o755, owner: tuple[int, int] | None = None
) -> int:
    """A new descriptor of the directory ``parts`` below the open directory ``root_fd``,
    opened one name at a time and never through a symbolic link.

    A link (or a non-directory) anywhere on the way fails with ``ELOOP``/``ENOTDIR``, so
    a concurrent change of the tree (a directory swapped for a link to elsewhere) can make
    the call fail but never lead it outside. ``..``, ``.`` and empty names are refused
    (``EINVAL``). With ``create``, missing directories are made with ``mode`` and
    ``owner`` (uid, gid). The caller closes the descriptor.
    """
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise OSError(errno.EINVAL, f"not a plain name: {part!r}")
            try:
                child = os.open(part, _DIR_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                    made = True
                except FileExistsError:  # made by someone else meanwhile
                    made = False
                child = os.open(part, _DIR_NOFOLLOW, dir_fd=fd)
                if made and owner is not None:
                    os.fchown(child, *owner)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None, suffix: str = ".tmp") -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode, suffix=suffix) as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text counterpart of :func:`write_bytes_atomic` (newlines written as given)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's content."""
    return file_digest(path, "sha256")


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file's content with a :mod:`hashlib` algorithm (``sha256``, ``md5``)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()
