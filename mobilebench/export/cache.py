"""The artifact cache: content-keyed files with a provenance sidecar, written atomically.

Layout: ``<cache>/artifacts/<name>-<runtime>-<dtype>[-dynbatch]-<key16>.<pte|onnx>`` and,
next to it, the same name with ``.json`` (the sidecar).

The key is the SHA-256 of a canonical JSON of everything that decides the artifact's
bytes, all of it cheap to obtain (no model is built to compute it):

- weights: the checkpoint file's SHA-256, or "random init" with the zoo's init seed;
  for a ``.pt2`` program, the program file's SHA-256; for an import path
  (``pkg.mod:callable``, which has no checkpoint bytes), the fingerprint of the module
  it built at resolve time: SHA-256 of its state_dict tensors, of its ``repr`` and of
  the callable's package sources, plus the import path and its options
  (see ``mobilebench.zoo.outside.module_fingerprint``);
- architecture, its options, number of classes, input size;
- export options (runtime, dtype, dynamic batch, what identifies the calibration data);
- versions of torch, torchao, executorch, onnx, onnxscript, onnxruntime and mobilebench;
- SHA-256 of the source of ``mobilebench/zoo`` and ``mobilebench/export`` (a changed
  model definition or exporter never reuses an old file).

Write protocol: the artifact's bytes are parity-checked in memory, then written
atomically (:func:`mobilebench.files.write_bytes_atomic`); the sidecar, which records
the artifact's SHA-256, is written last the same way, after any old one is removed. A
cache hit needs both files, a sidecar with the same key and an artifact whose SHA-256
(hashed on every lookup: milliseconds) matches it, so an interrupted export never
leaves an entry that looks valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mobilebench import paths
from mobilebench.errors import MobilebenchError
from mobilebench.files import atomic_writer, file_sha256, write_bytes_atomic

CACHE_FORMAT = 2
#: Distributions whose versions enter the key (and the provenance).
VERSIONED_PACKAGES = ("torch", "torchao", "executorch", "onnx", "onnxscript", "onnxruntime", "mobilebench")
#: Cache files are readable by everyone: whoever pushes them on must read them.
FILE_MODE = 0o644
#: The temp-file suffix of an atomic write; a leftover is a killed export's.
PARTIAL_SUFFIX = ".partial"
#: Leftover partial files older than this are someone's interrupted export.
STALE_PARTIAL_S = 3600.0


def default_cache_root() -> Path:
    return paths.cache_dir() / "artifacts"


def library_versions() -> dict[str, str]:
    """The installed version of each of :data:`VERSIONED_PACKAGES`."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_hashes() -> dict[str, str]:
    """SHA-256 over the Python sources of the model zoo and of the exporter."""
    package = Path(__file__).resolve().parent.parent
    hashes = {}
    for folder in ("zoo", "export"):
        digest = hashlib.sha256()
        root = package / folder
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        hashes[folder] = digest.hexdigest()
    return hashes


def key_of(material: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the key material."""
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "model"


def write_atomic(path: Path, data: bytes) -> None:
    """Write a cache file atomically (see :func:`mobilebench.files.atomic_writer`)."""
    write_bytes_atomic(path, data, mode=FILE_MODE, suffix=PARTIAL_SUFFIX)


@dataclass(frozen=True)
class CacheEntry:
    """One artifact's place in the cache: its file, its sidecar and its key."""

    artifact_path: Path
    key: str

    @property
    def sidecar_path(self) -> Path:
        return self.artifact_path.with_suffix(".json")

    @property
    def etrecord_path(self) -> Path:
        """The ETRecord of the artifact's lowering, where one was asked for."""
        return self.artifact_path.with_suffix(".etrecord")

    @classmethod
    def for_export(
        cls, root: Path, *, name: str, runtime: str, dtype: str, dynamic_batch: bool, suffix: str, key: str
    ) -> CacheEntry:
        dyn = "-dynbatch" if dynamic_batch else ""
        return cls(root / f"{_safe(name)}-{runtime}-{dtype}{dyn}-{key[:16]}{suffix}", key)

    def lookup(self) -> dict[str, Any] | None:
        """The sidecar's provenance when the entry is complete and intact (the artifact's
        SHA-256 is the one the sidecar records), else None."""
        try:
            provenance = json.loads(self.sidecar_path.read_text())
            if not isinstance(provenance, dict) or provenance.get("cache_key") != self.key:
                return None
            actual = file_sha256(self.artifact_path)
        except (OSError, ValueError):
            return None
        if actual != (provenance.get("artifact") or {}).get("sha256"):
            return None
        return provenance

    def commit(self, data: bytes, provenance: dict[str, Any], *, etrecord: Any = None) -> dict[str, Any]:
        """Write a checked artifact's ``data`` into place, then its sidecar (last);
        first its ``etrecord`` (an ExecuTorch ``ETRecord``), if given.

        Fills ``provenance["cache_key"]`` and ``provenance["artifact"]["file"/"sha256"/"size_bytes"]``
        and returns it as a later cache hit reads it.
        """
        self._remove_stale_partials()
        # An old sidecar must not vouch for the new file while the two are swapped.
        self.sidecar_path.unlink(missing_ok=True)
        if etrecord is not None:
            with atomic_writer(self.etrecord_path, mode=FILE_MODE, suffix=PARTIAL_SUFFIX) as handle:
                etrecord.save(handle)
        write_atomic(self.artifact_path, data)
        provenance = {**provenance, "cache_key": self.key}
        provenance["artifact"] = {
            **provenance.get("artifact", {}),
            "file": self.artifact_path.name,
            "sha256": file_sha256(self.artifact_path),
            "size_bytes": len(data),
        }
        text = json.dumps(provenance, indent=2, sort_keys=True, default=str) + "\n"
        write_atomic(self.sidecar_path, text.encode())
        return json.loads(text)

    def _remove_stale_partials(self) -> None:
        now = time.time()
        for stale in self.artifact_path.parent.glob(f".{self.artifact_path.stem}.*{PARTIAL_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - stale.stat().st_mtime > STALE_PARTIAL_S:
                    stale.unlink()


def prepare_cache_root(root: Path) -> Path:
    """Create the artifacts folder, or say clearly why it cannot be used."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MobilebenchError(f"cannot create the artifact cache folder {root}: {exc.strerror or exc}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise MobilebenchError(f"the artifact cache folder {root} is not writable; pass another --cache-dir")
    return root
