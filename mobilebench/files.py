"""Atomic file writes: readers see the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mobilebench.errors import MobilebenchError


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None, suffix: str = ".tmp") -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    ``mode`` is the file's permission bits (default: the replaced file's, or rw-r--r--);
    the temporary file is named ``.<name>.<random><suffix>`` so that callers who clean
    up interrupted writes can find their own leftovers.
    """
    path = Path(path)
    if path.is_dir():
        raise MobilebenchError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600; a report is meant to be read (and committed), so give
    # it the replaced file's mode, or rw-r--r--.
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text counterpart of :func:`write_bytes_atomic` (newlines written as given)."""
    write_bytes_atomic(path, text.encode("utf-8"))
