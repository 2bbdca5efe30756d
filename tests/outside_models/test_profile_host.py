"""``mobilebench profile --device host`` end to end for every outside-model form: an
import path and a ``.pt2`` (exported, then measured by the native runner), and ready
``.pte``/``.onnx`` files (measured as they are, with no export step)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow

ITERATIONS = ["--warmup", "1", "--iterations", "6"]


def _profile(cli, name, db: Path, *extra: str) -> dict:
    result = cli("profile", name, "--device", "host", *ITERATIONS, "--db", db, "--format", "json", *extra)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    (run,) = json.loads(result.stdout)
    assert run["status"] == "ok" and run["n"] == 6 and run["median_ms"] > 0
    assert (run["device_profile"], run["threads"]) == ("host", 1)
    with ResultsStore(db, create=False) as store:
        assert len(store.samples(run["id"])) == 7  # warm-up + timed iterations
    return run


def test_import_path(import_path, runner_binary, no_cards, cli, tmp_path: Path) -> None:
    run = _profile(cli, import_path, tmp_path / "runs.sqlite", "--input-size", "64")
    assert (run["model"], run["arch"], run["runtime"], run["runner_name"]) == (
        import_path, import_path, "executorch", "mobilebench_runner"
    )
    assert run["input_shape"] == "1x3x64x64"
    assert Path(run["artifact_path"]).suffix == ".pte" and len(run["checkpoint_sha256"]) == 64
    assert hashlib.sha256(Path(run["artifact_path"]).read_bytes()).hexdigest() == run["artifact_sha256"]


def test_program(tiny_pt2: Path, runner_binary, no_cards, cli, tmp_path: Path) -> None:
    run = _profile(cli, tiny_pt2, tmp_path / "runs.sqlite")
    assert (run["model"], run["arch"], run["input_shape"]) == ("tiny", "program:tiny.pt2", "1x3x64x64")
    assert run["checkpoint_sha256"] == hashlib.sha256(tiny_pt2.read_bytes()).hexdigest()
    assert Path(run["artifact_path"]).suffix == ".pte" and Path(run["artifact_path"]) != tiny_pt2


@pytest.mark.parametrize(("fixture", "runtime", "runner"), [
    ("ready_pte", "executorch", "mobilebench_runner"),
    ("ready_onnx", "onnx", "ort_python"),
])
def test_ready_artifact_without_an_export_step(
    request, runner_binary, no_cards, cli, tmp_path: Path, monkeypatch, fixture: str, runtime: str, runner: str
) -> None:
    import mobilebench.export.cache
    import mobilebench.export.pipeline

    def exporter_invoked(*args, **kwargs):
        raise AssertionError("a ready artifact must not go through the exporter")

    monkeypatch.setattr(mobilebench.export.pipeline, "capture", exporter_invoked)
    monkeypatch.setattr(mobilebench.export.cache, "prepare_cache_root", exporter_invoked)
    path: Path = request.getfixturevalue(fixture)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MOBILEBENCH_CACHE_DIR", str(cache))
    run = _profile(cli, path, tmp_path / "runs.sqlite", "--runtime", runtime)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (run["model"], run["arch"], run["runtime"], run["runner_name"]) == (
        "ready_tiny", f"artifact:{path.name}", runtime, runner
    )
    assert (run["artifact_path"], run["artifact_sha256"], run["checkpoint_sha256"]) == (str(path), sha, sha)
    assert run["input_shape"] == "1x3x64x64"
    # The exporter never ran: no artifact cache; the only model file is the pushed copy
    # in the host work dir.
    assert not (cache / "artifacts").exists()
    assert [p.relative_to(cache).parts[0] for p in cache.rglob(f"*{path.suffix}")] == ["host"]
    pushed = cache / "host" / "models" / f"{sha[:16]}{path.suffix}"
    assert hashlib.sha256(pushed.read_bytes()).hexdigest() == sha


def test_ready_onnx_on_the_executorch_runtime(ready_onnx: Path, no_cards, cli, error_line, tmp_path: Path) -> None:
    line = error_line(cli("profile", ready_onnx, "--device", "host", *ITERATIONS, "--db", tmp_path / "r.sqlite"))
    assert "ready_tiny.onnx is a ready ONNX file: it runs on onnx, not executorch; use --runtime onnx" in line
