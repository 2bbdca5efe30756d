"""The device's model cache: pushed models live in ``<workdir>/models``
(:attr:`DeviceProfile.model_dir`), kept under the profile's ``model_cache_mb`` budget by
removing the least recently used ones.

"Used" is the file's access time, which :func:`trim_model_cache` sets on the models it
keeps (phones mount /data ``noatime`` or ``relatime``, so reading a model does not count
reliably; the modification time stays as pushed, so the push ledger's quick check is
unaffected). Each call is one command on the device, its arguments passed as positional
parameters, never interpolated into the script.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from mobilebench.device.base import Device
from mobilebench.errors import MobilebenchError

# sh -c SCRIPT sh FOLDER [NAME...]: touch NAMEs' access time, then one "atime size name"
# line per regular file in FOLDER (hidden ones too: leftovers of interrupted pushes).
_LIST = """cd -- "$1" 2>/dev/null || exit 0
shift
[ $# -eq 0 ] || touch -a -c -- "$@"
for f in * .[!.]*; do [ -f "$f" ] && stat -c '%X %s %n' -- "$f"; done
exit 0"""


@dataclass(frozen=True)
class CachedModel:
    name: str  # file name in the model folder
    size: int  # bytes
    last_used: int  # access time, seconds since the epoch


def cached_models(device: Device, *, touch: Collection[str] = ()) -> list[CachedModel]:
    """The files in the device's model folder, least recently used first, after marking
    the names in ``touch`` as used now. An absent folder is an empty cache."""
    folder = device.profile.model_dir
    result = device.run(["sh", "-c", _LIST, "sh", folder, *touch], timeout_s=30, idempotent=True)
    if result.exit_code != 0:
        raise MobilebenchError(f"device {device.name!r}: cannot list {folder}: {result.stdout.strip()[-200:]}")
    models = []
    for line in result.stdout.splitlines():
        atime, size, name = (line.split(" ", 2) + ["", ""])[:3]
        if atime.isdigit() and size.isdigit() and name:
            models.append(CachedModel(name, int(size), int(atime)))
    return sorted(models, key=lambda m: (m.last_used, m.name))


def trim_model_cache(device: Device, *, keep: Collection[str]) -> list[str]:
    """Mark the models at the device paths ``keep`` as used, then remove the least
    recently used others until the folder holds at most ``model_cache_mb`` of the
    profile; returns the paths removed. ``keep`` is never removed, even over budget.

    Call it once a model is on the device (pushed or found current), before the run.
    """
    folder = device.profile.model_dir
    keep_names = {path.rsplit("/", 1)[-1] for path in keep if path.rsplit("/", 1)[0] == folder}
    models = cached_models(device, touch=sorted(keep_names))
    budget = device.profile.model_cache_mb * 1_000_000
    total = sum(m.size for m in models)
    removed: list[str] = []
    for model in models:
        if total <= budget:
            break
        if model.name in keep_names:
            continue
        removed.append(f"{folder}/{model.name}")
        total -= model.size
    if removed:
        result = device.run(["rm", "-f", "--", *removed], timeout_s=30, idempotent=True)
        if result.exit_code != 0:
            raise MobilebenchError(f"device {device.name!r}: cannot trim {folder}: {result.stdout.strip()[-200:]}")
    return removed


def clean_model_cache(device: Device) -> list[CachedModel]:
    """Remove the device's model folder; returns what it held."""
    folder = device.profile.model_dir
    models = cached_models(device)
    result = device.run(["rm", "-rf", "--", folder], timeout_s=60, idempotent=True)
    if result.exit_code != 0:
        raise MobilebenchError(f"device {device.name!r}: cannot remove {folder}: {result.stdout.strip()[-200:]}")
    return models
