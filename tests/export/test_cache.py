"""The artifact cache's write protocol: nothing half-written ever looks valid."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mobilebench.errors import MobilebenchError
from mobilebench.export import ExportOptions, export_model, parity
from mobilebench.export import cache as artifact_cache
from mobilebench.export.cache import CacheEntry


def _entry(tmp_path, key: str = "ab" * 32) -> CacheEntry:
    return CacheEntry.for_export(
        tmp_path, name="net/v1", runtime="onnx", dtype="fp32", dynamic_batch=False, suffix=".onnx", key=key
    )


def _commit(entry: CacheEntry, data: bytes) -> dict:
    partial = entry.new_partial()
    partial.write_bytes(data)
    return entry.commit(partial, {"artifact": {"runtime": "onnx"}})


def test_commit_then_lookup_round_trip(tmp_path) -> None:
    entry = _entry(tmp_path)
    assert entry.artifact_path.name == "net_v1-onnx-fp32-abababababababab.onnx"
    assert entry.lookup() is None
    provenance = _commit(entry, b"model bytes")
    assert entry.lookup() == provenance
    assert provenance["artifact"]["sha256"] == artifact_cache.file_sha256(entry.artifact_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([entry.artifact_path.name, entry.sidecar_path.name])


def test_lookup_rejects_every_inconsistent_state(tmp_path) -> None:
    entry = _entry(tmp_path)
    _commit(entry, b"model bytes")

    entry.artifact_path.write_bytes(b"model bytes, modified")  # artifact changed under the sidecar
    assert entry.lookup() is None

    _commit(entry, b"model bytes")
    other = CacheEntry(entry.artifact_path, "ff" * 32)  # same file name, different key
    assert other.lookup() is None

    entry.sidecar_path.write_text("{ truncated")
    assert entry.lookup() is None

    _commit(entry, b"model bytes")
    entry.artifact_path.unlink()
    assert entry.lookup() is None


def test_interrupted_commit_leaves_nothing_that_looks_valid(tmp_path, monkeypatch) -> None:
    entry = _entry(tmp_path)
    _commit(entry, b"old artifact")  # a previous, valid export of the same entry

    def interrupted(path, data):
        raise KeyboardInterrupt  # killed between the artifact rename and the sidecar write

    monkeypatch.setattr(artifact_cache, "write_atomic", interrupted)
    partial = entry.new_partial()
    partial.write_bytes(b"new artifact")
    with pytest.raises(KeyboardInterrupt):
        entry.commit(partial, {"artifact": {}})
    assert entry.lookup() is None  # the old sidecar was removed before the swap
    assert not entry.sidecar_path.exists()


def test_interrupted_atomic_write_leaves_no_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "x.json"

    def failing_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(artifact_cache.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        artifact_cache.write_atomic(target, b"{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_interrupted_export_leaves_no_partial(tmp_path, monkeypatch, skipnet_m) -> None:
    """An export killed while writing (Ctrl-C) removes its temp file and writes no entry."""
    from mobilebench.export import onnx_export

    def killed_midway(program, destination, **kwargs):
        destination.write_bytes(b"\x08\x07 half an onnx file")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "export_onnx", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        export_model(skipnet_m, ExportOptions(runtime="onnx"), cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_failed_parity_removes_the_artifact(tmp_path, monkeypatch, skipnet_m, skipnet_onnx) -> None:
    """A real ONNX artifact run by the real onnxruntime, with its output perturbed."""
    from mobilebench.export import onnx_export

    def reuse_real_export(program, destination, **kwargs):
        shutil.copyfile(skipnet_onnx.path, destination)
        return {"opset": 18}

    def perturbed(path, inputs):
        outputs = parity.run_onnxruntime(path, inputs)
        return [o + 1e-3 * np.abs(o).max() for o in outputs]  # 1e-3 of the scale: 10x the tolerance

    monkeypatch.setattr(onnx_export, "export_onnx", reuse_real_export)
    monkeypatch.setitem(parity.RUNNERS, "onnx", perturbed)
    with pytest.raises(MobilebenchError, match=r"parity check failed .*0\.001 of the output scale"):
        export_model(skipnet_m, ExportOptions(runtime="onnx"), cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []

    # Same artifact, honest runtime: it passes and is kept.
    monkeypatch.setitem(parity.RUNNERS, "onnx", parity.run_onnxruntime)
    artifact = export_model(skipnet_m, ExportOptions(runtime="onnx"), cache_dir=tmp_path, progress=False)
    assert artifact.sha256 == skipnet_onnx.sha256 and not artifact.cached
    assert json.loads(artifact.path.with_suffix(".json").read_text())["parity"]["passed"]


def test_compare_numbers() -> None:
    ref = [np.array([[1.0, -4.0, 2.0]], dtype=np.float32)]
    result = parity.compare(ref, [ref[0] + np.float32(2e-4)], "fp32")
    assert result["output_scale"] == 4.0 and result["passed"]
    assert result["relative_max_abs_diff"] == pytest.approx(5e-5, rel=1e-3)
    assert not parity.compare(ref, [ref[0] + 1e-3], "fp32")["passed"]
    assert not parity.compare(ref, [ref[0] * np.nan], "fp32")["passed"]
    int8 = parity.compare([ref[0], ref[0]], [ref[0], np.array([[9.0, 0.0, 0.0]], dtype=np.float32)], "int8")
    assert int8["passed"] and int8["top1_agreement"] == 0.5 and int8["max_abs_diff"] == 8.0


def test_an_unchanged_artifact_is_hashed_once(tmp_path, monkeypatch) -> None:
    """Cache hits skip re-hashing a file whose size, mtime and inode the sidecar vouches
    for; any rewrite (new mtime) is hashed again and caught."""
    import os
    import time

    entry = _entry(tmp_path)
    provenance = _commit(entry, b"model bytes")
    long_ago = time.time_ns() - 60 * 10**9
    os.utime(entry.artifact_path, ns=(long_ago, long_ago))  # an export finished a minute ago
    hashed = []
    real_sha256 = artifact_cache.file_sha256
    monkeypatch.setattr(artifact_cache, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))

    assert entry.lookup() == provenance and len(hashed) == 1  # hashed, then stamped
    assert entry.lookup() == provenance and len(hashed) == 1  # the stamp vouches
    assert "file_stamp" in json.loads(entry.sidecar_path.read_text())

    entry.artifact_path.write_bytes(b"model BYTES")  # same size, new content, new mtime
    assert entry.lookup() is None and len(hashed) == 2


def test_a_fresh_stamp_does_not_vouch(tmp_path, monkeypatch) -> None:
    """A file changed within the clock tick of its stamp could be changed again unseen:
    it is hashed on every lookup until it has settled."""
    entry = _entry(tmp_path)
    provenance = _commit(entry, b"model bytes")  # written and stamped just now
    sidecar = entry.sidecar_path.read_bytes()
    hashed = []
    real_sha256 = artifact_cache.file_sha256
    monkeypatch.setattr(artifact_cache, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    assert entry.lookup() == provenance and entry.lookup() == provenance
    assert len(hashed) == 2
    # Nor is the sidecar rewritten meanwhile: a stamp taken now would not vouch either.
    assert entry.sidecar_path.read_bytes() == sidecar


def test_library_versions_agree_with_importlib_metadata() -> None:
    from importlib import metadata

    for name, version in artifact_cache.library_versions().items():
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = "not installed"
        assert version == expected, name
