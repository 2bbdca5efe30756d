"""Files: atomic writes (readers see the old file or the new one, never half of either)
and the one file hasher."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
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
    rw-r--r--, since a report is meant to be read and committed).
    """
    path = Path(path)
    if path.is_dir():
        raise MobilebenchError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp creates the file 0600
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write (disk full) names no file: name ours
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
