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
- export options (runtime, dtype, dynamic batch, calibration source and content hash);
- versions of torch, torchao, executorch, onnx, onnxscript, onnxruntime and mobilebench;
- SHA-256 of the source of ``mobilebench/zoo`` and ``mobilebench/export`` (a changed
  model definition or exporter never reuses an old file).

Write protocol: the artifact is built under a ``.partial`` temp name, parity-checked
there, then renamed into place (``os.replace``); the sidecar, which records the
artifact's SHA-256, is written last the same way. A cache hit needs both files, a
sidecar with the same key and an artifact whose SHA-256 matches it, so an interrupted
export never leaves an entry that looks valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilebench import paths
from mobilebench.errors import MobilebenchError
from mobilebench.files import write_bytes_atomic

CACHE_FORMAT = 1
#: Distributions whose versions enter the key (and the provenance).
VERSIONED_PACKAGES = ("torch", "torchao", "executorch", "onnx", "onnxscript", "onnxruntime", "mobilebench")
#: Leftover ``.partial`` files older than this are someone's interrupted export.
STALE_PARTIAL_S = 3600.0
#: Cache files are readable by everyone (mkstemp creates them 0600).
FILE_MODE = 0o644


def default_cache_root() -> Path:
    return paths.cache_dir() / "artifacts"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """The installed version of each of :data:`VERSIONED_PACKAGES`.

    Taken from the ``NAME-VERSION.dist-info`` folder names on ``sys.path`` where they
    exist: the same version ``importlib.metadata`` reports, without parsing every
    package's METADATA file (~25 ms, paid on every cache hit, so by every profile).
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        with contextlib.suppress(OSError):
            for item in os.scandir(entry or "."):
                stem, dot, ext = item.name.rpartition(".")
                name, dash, version = stem.partition("-")
                key = _normalized(name)
                if dot and ext == "dist-info" and dash and key not in found:
                    found[key] = version
    versions = {}
    for name in VERSIONED_PACKAGES:
        if (version := found.get(_normalized(name))) is None:
            from importlib import metadata  # slow to import; rarely needed

            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = "not installed"
        versions[name] = version
    return versions


def _normalized(name: str) -> str:
    # Distribution names as dist-info folders spell them (PEP 503 + PEP 427).
    return re.sub(r"[-_.]+", "_", name).lower()


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
    """Write a cache file atomically; an interrupted write leaves a ``.partial`` leftover."""
    write_bytes_atomic(path, data, mode=FILE_MODE, suffix=".partial")


#: Sidecar key of the artifact's file stamp (not part of the provenance callers see).
_STAMP = "file_stamp"
#: A stamp vouches for a file only if taken this long after the file's last change:
#: longer than any Linux file system's timestamp tick (see CacheEntry.lookup).
_SETTLED_NS = 1_000_000_000


def _stamp_of(st: os.stat_result, taken_ns: int) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "taken_ns": taken_ns}


def _vouches(stamp: object, st: os.stat_result) -> bool:
    """Whether a sidecar's stamp proves the file unchanged since it was hashed."""
    if not isinstance(stamp, dict) or not isinstance(taken := stamp.get("taken_ns"), int):
        return False
    return stamp == _stamp_of(st, taken) and taken - st.st_mtime_ns >= _SETTLED_NS


@dataclass(frozen=True)
class CacheEntry:
    """One artifact's place in the cache: its file, its sidecar and its key."""

    artifact_path: Path
    key: str

    @property
    def sidecar_path(self) -> Path:
        return self.artifact_path.with_suffix(".json")

    @classmethod
    def for_export(
        cls, root: Path, *, name: str, runtime: str, dtype: str, dynamic_batch: bool, suffix: str, key: str
    ) -> CacheEntry:
        dyn = "-dynbatch" if dynamic_batch else ""
        return cls(root / f"{_safe(name)}-{runtime}-{dtype}{dyn}-{key[:16]}{suffix}", key)

    def lookup(self) -> dict[str, Any] | None:
        """The sidecar's provenance when the entry is complete and intact, else None.

        "Intact" means the artifact's SHA-256 is the one the sidecar records. Hashing a
        large artifact costs tens of milliseconds on every cache hit, so once a lookup
        has hashed it, the sidecar keeps the file's size, mtime and inode, and later
        lookups of an unchanged file skip the hash (the quick check of make and rsync).
        As in git's "racy" rule, a stamp taken within a timestamp tick of the file's
        last change proves nothing: such a file is hashed again.
        """
        try:
            provenance = json.loads(self.sidecar_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(provenance, dict) or provenance.get("cache_key") != self.key:
            return None
        stamp = provenance.pop(_STAMP, None)
        try:
            st = self.artifact_path.stat()
            if _vouches(stamp, st):
                return provenance
            actual = file_sha256(self.artifact_path)
        except OSError:
            return None
        if actual != (provenance.get("artifact") or {}).get("sha256"):
            return None
        stamp = _stamp_of(st, time.time_ns())
        if _vouches(stamp, st):  # a stamp of a file changed within the last tick would not
            with contextlib.suppress(OSError):  # a read-only cache still works, just slower
                self._write_sidecar(provenance, stamp)
        return provenance

    def new_partial(self) -> Path:
        """A fresh temp path next to the artifact to build into (removed on failure by
        :meth:`discard`, renamed into place by :meth:`commit`)."""
        self.artifact_path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_partials()
        import tempfile  # only a cache miss needs it; every cache hit would pay ~7 ms

        fd, tmp = tempfile.mkstemp(
            dir=self.artifact_path.parent, prefix=f".{self.artifact_path.name}.", suffix=".partial"
        )
        os.close(fd)
        return Path(tmp)

    def _remove_stale_partials(self) -> None:
        now = time.time()
        for stale in self.artifact_path.parent.glob(f".{self.artifact_path.name}.*.partial"):
            with contextlib.suppress(OSError):
                if now - stale.stat().st_mtime > STALE_PARTIAL_S:
                    stale.unlink()

    @staticmethod
    def discard(partial: Path) -> None:
        partial.unlink(missing_ok=True)

    def commit(self, partial: Path, provenance: dict[str, Any]) -> dict[str, Any]:
        """Move a checked ``partial`` into place and write its sidecar (last).

        Fills ``provenance["cache_key"]`` and ``provenance["artifact"]["sha256"/"size_bytes"]``
        and returns it.
        """
        sha = file_sha256(partial)
        provenance = {**provenance, "cache_key": self.key}
        provenance["artifact"] = {
            **provenance.get("artifact", {}),
            "file": self.artifact_path.name,
            "sha256": sha,
            "size_bytes": partial.stat().st_size,
        }
        # An old sidecar must not vouch for the new file while the two are swapped.
        self.sidecar_path.unlink(missing_ok=True)
        os.chmod(partial, FILE_MODE)
        os.replace(partial, self.artifact_path)
        return self._write_sidecar(provenance, _stamp_of(self.artifact_path.stat(), time.time_ns()))

    def _write_sidecar(self, provenance: dict[str, Any], stamp: dict[str, int]) -> dict[str, Any]:
        """Write the sidecar; return the provenance exactly as a later cache hit reads it."""
        text = json.dumps({**provenance, _STAMP: stamp}, indent=2, sort_keys=True, default=str) + "\n"
        write_atomic(self.sidecar_path, text.encode())
        stored = json.loads(text)
        del stored[_STAMP]
        return stored


def prepare_cache_root(root: Path) -> Path:
    """Create the artifacts folder, or say clearly why it cannot be used."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MobilebenchError(f"cannot create the artifact cache folder {root}: {exc.strerror or exc}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise MobilebenchError(f"the artifact cache folder {root} is not writable; pass another --cache-dir")
    return root
