"""The artifact cache's write protocol: nothing half-written ever looks valid."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mobilebench.files
from mobilebench.errors import MobilebenchError
from mobilebench.export import ExportHooks, ExportOptions, export_model, parity
from mobilebench.export import cache as artifact_cache
from mobilebench.export.cache import CacheEntry
from mobilebench.files import file_sha256


def _entry(tmp_path, key: str = "ab" * 32) -> CacheEntry:
    return CacheEntry.for_export(
        tmp_path, name="net/v1", runtime="onnx", dtype="fp32", dynamic_batch=False, suffix=".onnx", key=key
    )


def _commit(entry: CacheEntry, data: bytes) -> dict:
    return entry.commit(data, {"artifact": {"runtime": "onnx"}})


def test_commit_then_lookup_round_trip(tmp_path) -> None:
    entry = _entry(tmp_path)
    assert entry.artifact_path.name == "net_v1-onnx-fp32-abababababababab.onnx"
    assert entry.lookup() is None
    provenance = _commit(entry, b"model bytes")
    assert entry.lookup() == provenance
    assert provenance["artifact"]["sha256"] == file_sha256(entry.artifact_path)
    assert provenance["artifact"]["size_bytes"] == len(b"model bytes")
    assert json.loads(entry.sidecar_path.read_text()) == provenance  # nothing else in the sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([entry.artifact_path.name, entry.sidecar_path.name])
    assert oct(entry.artifact_path.stat().st_mode & 0o777) == oct(artifact_cache.FILE_MODE)


def test_lookup_rejects_every_inconsistent_state(tmp_path) -> None:
    entry = _entry(tmp_path)
    _commit(entry, b"model bytes")

    entry.artifact_path.write_bytes(b"model BYTES")  # same size, changed under the sidecar: hashed, caught
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
    real_write = artifact_cache.write_atomic

    def interrupted(path, data):
        if path == entry.sidecar_path:
            raise KeyboardInterrupt  # killed between the artifact write and the sidecar write
        real_write(path, data)

    monkeypatch.setattr(artifact_cache, "write_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _commit(entry, b"new artifact")
    assert entry.lookup() is None  # the old sidecar was removed before the swap
    assert not entry.sidecar_path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [entry.artifact_path.name]  # no temp file either


def test_interrupted_atomic_write_leaves_no_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "x.json"

    def failing_rename(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mobilebench.files.os, "rename", failing_rename)
    with pytest.raises(KeyboardInterrupt):
        artifact_cache.write_atomic(target, b"{}")
    assert list(tmp_path.iterdir()) == []


class _Recorder(ExportHooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def stage_started(self, stage, label, total=None) -> None:
        self.events.append(("start", stage))

    def stage_finished(self, stage, seconds, *, failed=False) -> None:
        self.events.append(("failed" if failed else "done", stage))


@pytest.mark.slow
def test_interrupted_export_writes_nothing_and_reports_the_stage(tmp_path, monkeypatch, skipnet_m) -> None:
    """An export killed while converting (Ctrl-C) writes no file and no entry; the hooks
    saw the stage start and fail."""
    from mobilebench.export import onnx_export

    def killed_midway(program, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "convert_to_onnx", killed_midway)
    hooks = _Recorder()
    with pytest.raises(KeyboardInterrupt):
        export_model(skipnet_m, ExportOptions(runtime="onnx"), cache_dir=tmp_path, hooks=hooks)
    assert list(tmp_path.iterdir()) == []
    assert hooks.events == [("start", "capture"), ("done", "capture"), ("start", "lower"), ("failed", "lower")]


@pytest.mark.slow
def test_failed_parity_writes_nothing(tmp_path, monkeypatch, skipnet_m, skipnet_onnx) -> None:
    """A real ONNX artifact (the session's, so nothing is converted twice) run by the real
    onnxruntime, with its output perturbed."""
    import onnx

    from mobilebench.export import onnx_export

    monkeypatch.setattr(onnx_export, "convert_to_onnx", lambda program, **kwargs: onnx.load(str(skipnet_onnx.path)))

    def perturbed(artifact, inputs, **kwargs):
        outputs = parity.run_onnxruntime(artifact, inputs, **kwargs)
        return [o + 1e-3 * np.abs(o).max() for o in outputs]  # 1e-3 of the scale: 10x the tolerance

    monkeypatch.setitem(parity.RUNNERS, "onnx", perturbed)
    with pytest.raises(MobilebenchError, match=r"parity check failed for skipnet_m: .*0\.001 of the output scale"):
        export_model(skipnet_m, ExportOptions(runtime="onnx"), cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []

    # Same export, honest runtime: it passes and is kept, bit for bit the session's.
    monkeypatch.setitem(parity.RUNNERS, "onnx", parity.run_onnxruntime)
    artifact = export_model(skipnet_m, ExportOptions(runtime="onnx"), cache_dir=tmp_path)
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
