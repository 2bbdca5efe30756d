"""What this computer last pushed to, or verified on, each device: a quick check that
spares re-hashing unchanged device files on every profile.

``Device.push_if_changed`` compares hashes, which on the device means reading the whole
file (a 22 MB model costs ~0.4 s in the phone emulator, more on a slow phone) before
every run. The ledger remembers, per device, each remote file's sha256 together with the
size and modification time the device reported right after the file was pushed or its
hash verified. When a later run finds the same size and mtime (one cheap ``stat``) and
wants the same sha256, the file is current: the rsync quick check. Any write to the file
changes its mtime (pushes are written to a temporary name and renamed, so a file under
its final name is complete), and the ledger is keyed by the device's address and build
fingerprint, so another phone at the same address does not match.

The ledger is a small JSON file in the cache directory, replaced atomically; a missing
or unreadable ledger only costs a re-hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mobilebench import paths
from mobilebench.device.base import RemoteStat
from mobilebench.errors import MobilebenchError
from mobilebench.files import write_bytes_atomic


def default_ledger_path() -> Path:
    return paths.cache_dir() / "pushed-files.json"


class PushLedger:
    """Remote files known to hold given content on one device (see the module docstring)."""

    def __init__(self, device_key: str, path: Path | None = None) -> None:
        self.device_key = device_key
        self.path = path or default_ledger_path()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def is_current(self, remote: str, sha256: str, stat: RemoteStat | None) -> bool:
        """True if ``remote`` was verified to hold ``sha256`` and still has that size and mtime."""
        if stat is None or not stat.is_file:
            return False
        entry = self._load().get(self.device_key, {}).get(remote)
        return (
            isinstance(entry, dict)
            and entry.get("sha256") == sha256
            and entry.get("size") == stat.size
            and entry.get("mtime") == stat.mtime
        )

    def record(self, remote: str, sha256: str, stat: RemoteStat) -> None:
        """Remember that ``remote`` holds ``sha256`` as of this size and mtime."""
        data = self._load()
        files = data.setdefault(self.device_key, {})
        if not isinstance(files, dict):
            files = data[self.device_key] = {}
        files[remote] = {"sha256": sha256, "size": stat.size, "mtime": stat.mtime}
        try:
            write_bytes_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        except (OSError, MobilebenchError):
            pass  # a cache: losing an entry only means hashing again next time
