"""Copying an artifact out of the cache to a user-chosen ``--output`` path.

The destination is checked before any export work starts (:func:`resolve_output`), so
a typo in the path fails in a second, not after a minute of lowering; the copy itself
is atomic (:func:`mobilebench.files.atomic_writer`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export.options import ARTIFACT_SUFFIX
from mobilebench.files import atomic_writer


def resolve_output(output: Path, *, name: str, runtime: str, dtype: str) -> Path:
    """The file ``--output`` denotes, after checking that it can be written.

    An existing folder receives ``<name>-<dtype>.<pte|onnx>``; any other path is the
    file itself and must carry the runtime's suffix. A missing or unwritable folder, or
    a path through a file, is a :class:`MobilebenchError`.
    """
    suffix = ARTIFACT_SUFFIX[runtime]
    output = Path(output).expanduser()
    if output.is_dir():
        target = output / f"{name}-{dtype}{suffix}"
    else:
        target = output
        if target.suffix.lower() != suffix:
            raise UsageError(f"--output {output} should end in {suffix} for a {runtime} artifact")
    folder = target.parent
    if not folder.exists():
        raise MobilebenchError(f"cannot write {target}: folder {folder} does not exist")
    if not folder.is_dir():
        raise MobilebenchError(f"cannot write {target}: {folder} is not a folder")
    if target.is_dir():
        raise MobilebenchError(f"cannot write {target}: it is a folder")
    # The kernel's own check (permission bits, ACLs, read-only mounts) for this user.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MobilebenchError(f"cannot write {target}: folder {folder} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise MobilebenchError(f"cannot write {target}: the existing file is read-only")
    return target


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` through a temp file in ``target``'s folder."""
    try:
        # 0644, not mkstemp's 0600: whoever pushes the file on must be able to read it.
        with atomic_writer(target, mode=0o644, suffix=".partial") as handle, open(source, "rb") as src:
            shutil.copyfileobj(src, handle)
    except OSError as exc:
        raise MobilebenchError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
