"""Ready ``.pte``/``.onnx`` files: used as they are (no export, no cache entry of an
artifact; their shapes are remembered by content), refused where they cannot serve
(FLOPs, the other runtime, int8)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import ExportOptions, export_model
from mobilebench.export.ready import artifact_signature
from mobilebench.zoo.resolve import ArtifactFile, resolve_model


@pytest.mark.parametrize(("fixture", "runtime"), [("ready_pte", "executorch"), ("ready_onnx", "onnx")])
def test_export_returns_the_file_as_it_is(request, tmp_path: Path, no_cards, fixture: str, runtime: str) -> None:
    path: Path = request.getfixturevalue(fixture)
    resolved = resolve_model(str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(resolved, ArtifactFile)
    assert (resolved.kind, resolved.name, resolved.arch) == ("artifact", "ready_tiny", f"artifact:{path.name}")
    assert resolved.checkpoint_sha256 == sha and resolved.runtime == runtime
    # The exporter reads what the file takes, with the runtime's own library.
    signature = artifact_signature(path)
    assert signature.input_shape == (1, 3, 64, 64) and signature.num_classes == 10

    cache = tmp_path / "cache"
    artifact = export_model(resolved, ExportOptions(runtime=runtime), cache_dir=cache)
    assert not cache.exists()  # no export step, no cache entry
    assert (artifact.path, artifact.sha256, artifact.runtime, artifact.input_shape) == (path, sha, runtime, (1, 3, 64, 64))
    assert artifact.provenance["verification"] == "ready artifact, not verified"
    assert artifact.provenance["parity"] is None and artifact.provenance["artifact"]["ready"] is True

    with pytest.raises(UsageError, match=rf"{path.name} takes input 1x3x64x64, but 1x3x32x32 was asked for"):
        export_model(resolve_model(str(path), input_size=32), ExportOptions(runtime=runtime), cache_dir=cache)
    with pytest.raises(MobilebenchError, match="there is no PyTorch model in it to build"):
        resolved.build()


def test_a_ready_programs_shapes_are_read_once_per_content(ready_pte: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MOBILEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    sha = hashlib.sha256(ready_pte.read_bytes()).hexdigest()
    assert artifact_signature(ready_pte, sha256=sha).input_shape == (1, 3, 64, 64)
    entry = tmp_path / "cache" / "ready-artifacts" / f"{sha}.json"
    assert json.loads(entry.read_text())["inputs"] == [[1, 3, 64, 64]]
    # A new process answers from the entry, without importing ExecuTorch's exporter.
    code = (
        "import sys; from pathlib import Path; from mobilebench.export.ready import artifact_signature; "
        f"s = artifact_signature(Path({str(ready_pte)!r}), sha256={sha!r}); "
        "print(s.input_shape, s.num_classes, 'executorch.exir' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0] == "(1, 3, 64, 64) 10 False", done
    # The checks still apply to remembered shapes; a damaged entry is read again.
    with pytest.raises(UsageError, match="takes input 1x3x64x64, but 1x3x32x32 was asked for"):
        artifact_signature(ready_pte, 32, sha256=sha)
    entry.write_text("{not json")
    assert artifact_signature(ready_pte, sha256=sha).num_classes == 10
    assert json.loads(entry.read_text())["output"] == [1, 10]


def test_reading_a_programs_shapes_prints_nothing(ready_pte: Path, tmp_path: Path) -> None:
    """In a fresh process (the first ExecuTorch import there), as a user's first profile of a .pte."""
    code = (
        "from pathlib import Path; from mobilebench.export.ready import artifact_signature; "
        f"artifact_signature(Path({str(ready_pte)!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (done.stdout, done.stderr) == ("", "")


def test_refusals(ready_pte: Path, ready_onnx: Path, tmp_path: Path, no_cards) -> None:
    onnx = resolve_model(str(ready_onnx))
    with pytest.raises(UsageError, match=r"ready_tiny.onnx is a ready ONNX file: it runs on onnx, not executorch; use --runtime onnx"):
        export_model(onnx, ExportOptions(runtime="executorch"))
    pte = resolve_model(str(ready_pte))
    with pytest.raises(UsageError, match="ready_tiny.pte is a ready artifact and runs as it was exported; --dtype int8 needs"):
        export_model(pte, ExportOptions(dtype="int8"))
    with pytest.raises(UsageError, match="--dynamic-batch needs the PyTorch model"):
        export_model(pte, ExportOptions(dynamic_batch=True))

    for suffix in (".pte", ".onnx"):
        with pytest.raises(UsageError, match=rf"nothing{suffix} does not exist"):
            resolve_model(str(tmp_path / f"nothing{suffix}"))
        broken = tmp_path / f"broken{suffix}"
        broken.write_bytes(b"\x00garbage" * 8)
        runtime = "executorch" if suffix == ".pte" else "onnx"
        with pytest.raises(UsageError, match=rf"broken{suffix} is not a (readable ONNX file|loadable ExecuTorch program)"):
            export_model(resolve_model(str(broken)), ExportOptions(runtime=runtime))


def test_flops_of_a_ready_artifact_is_a_clear_error(ready_pte: Path, ready_onnx: Path, no_cards, cli, error_line) -> None:
    for path in (ready_pte, ready_onnx):
        line = error_line(cli("flops", path))
        assert f"cannot count FLOPs of a ready artifact ({path})" in line


def test_a_missing_path_is_not_mistaken_for_a_model_name(tmp_path: Path, no_cards, cli, error_line) -> None:
    line = error_line(cli("profile", tmp_path / "models" / "net.onnx", "--device", "host"))
    assert line == f"error: {tmp_path / 'models' / 'net.onnx'} does not exist"
    line = error_line(cli("flops", tmp_path / "weights" / "net.pth"))
    assert "net.pth does not exist (it looks like a file path" in line
