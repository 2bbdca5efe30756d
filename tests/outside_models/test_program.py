"""``.pt2`` programs from ``torch.export.save``: shape checks, flops, export to both
runtimes (lowered as they are, parity-checked), and the errors for unusable programs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import ExportOptions, export_model
from mobilebench.zoo.resolve import resolve_model


def test_resolve_reads_the_input_shape_from_the_program(tiny_pt2: Path, tiny_module, no_cards) -> None:
    resolved = resolve_model(str(tiny_pt2))
    assert (resolved.kind, resolved.name, resolved.arch) == ("program", "tiny", "program:tiny.pt2")
    assert resolved.input_shape == (1, 3, 64, 64) and resolved.input_size == 64 and resolved.num_classes == 10
    assert resolved.checkpoint_sha256 == hashlib.sha256(tiny_pt2.read_bytes()).hexdigest()
    assert resolved.weights_identity() == {"file_sha256": resolved.checkpoint_sha256}
    x = resolved.example_input()
    with torch.no_grad():
        assert torch.allclose(resolved.build()(x), tiny_module(x), atol=1e-6)
    assert resolve_model(str(tiny_pt2), input_size=64).input_shape == (1, 3, 64, 64)


def test_wrong_input_size_names_both_shapes(tiny_pt2: Path, no_cards, cli, error_line) -> None:
    with pytest.raises(UsageError, match=r"tiny.pt2 takes input 1x3x64x64, but 1x3x96x96 was asked for \(--input-size 96\)"):
        resolve_model(str(tiny_pt2), input_size=96)
    for command in ("profile", "export", "flops"):
        line = error_line(cli(command, tiny_pt2, "--input-size", "96"))
        assert "1x3x64x64" in line and "1x3x96x96" in line


def _save(module: torch.nn.Module, example: torch.Tensor, path: Path, **kwargs) -> Path:
    torch.export.save(torch.export.export(module.eval(), (example,), **kwargs), path)
    return path


def test_programs_that_do_not_take_one_static_image(outside_package, tmp_path: Path, no_cards) -> None:
    from mb_outside_nets.models import Flat, TinyNet

    flat = _save(Flat(), torch.randn(1, 16), tmp_path / "flat.pt2")
    with pytest.raises(UsageError, match=r"flat.pt2 takes input 1x16, not a 4-d image tensor"):
        resolve_model(str(flat))
    batch = torch.export.Dim("batch", min=1, max=8)
    dynamic = _save(TinyNet(), torch.randn(2, 3, 64, 64), tmp_path / "dyn.pt2", dynamic_shapes=({0: batch},))
    with pytest.raises(UsageError, match=r"dyn.pt2 has a dynamic input shape \w+x3x64x64; profiling needs a static one"):
        resolve_model(str(dynamic))
    four = _save(TinyNet(), torch.randn(4, 3, 64, 64), tmp_path / "four.pt2")
    with pytest.raises(UsageError, match=r"four.pt2 takes input 4x3x64x64: a batch of 4; export it at batch 1"):
        resolve_model(str(four))

    garbage = tmp_path / "garbage.pt2"
    garbage.write_bytes(b"not a zip archive")
    with pytest.raises(UsageError, match="garbage.pt2 is not a program written by torch.export.save"):
        resolve_model(str(garbage))
    with pytest.raises(UsageError, match=r"missing.pt2 does not exist"):
        resolve_model(str(tmp_path / "missing.pt2"))
    with pytest.raises(UsageError, match="holds its own network and weights; drop --arch and --checkpoint"):
        resolve_model(str(flat), arch="skipnet_m")


def test_flops_of_a_program(tiny_pt2: Path, no_cards, cli) -> None:
    result = cli("flops", tiny_pt2, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout)
    out = 32
    assert report["flops"] == 3 * 3 * 3 * 8 * out * out + 3 * 8 * out * out + 8 * 10
    assert report["params"] == 224 + 16 + 90
    assert (report["model"], report["arch"], report["input_size"]) == ("tiny", "program:tiny.pt2", 64)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["executorch", "onnx"])
def test_export_lowers_the_program_as_it_is(tiny_pt2: Path, no_cards, monkeypatch, runtime: str) -> None:
    import mobilebench.export.pipeline as pipeline

    def no_second_export(*args, **kwargs):
        raise AssertionError("a .pt2 program must not be captured again")

    monkeypatch.setattr(pipeline, "capture", no_second_export)
    resolved = resolve_model(str(tiny_pt2))
    artifact = export_model(resolved, ExportOptions(runtime=runtime))
    prov = artifact.provenance
    assert prov["parity"]["passed"] and artifact.input_shape == (1, 3, 64, 64)
    assert prov["export"]["exporter"].startswith("torch.export.load (.pt2)")
    assert prov["model"]["file_sha256"] == resolved.checkpoint_sha256 and prov["model"]["weights"] == ".pt2 program"
    if runtime == "executorch":
        assert prov["delegation"]["delegates"] >= 1 and not prov["export"]["graph_rewrites"]


def test_program_export_refusals(tiny_pt2: Path, tmp_path: Path, no_cards) -> None:
    with pytest.raises(UsageError, match="keeps the input shape it was exported with; drop --dynamic-batch"):
        export_model(resolve_model(str(tiny_pt2)), ExportOptions(dynamic_batch=True))
    copy = tmp_path / "changing.pt2"
    copy.write_bytes(tiny_pt2.read_bytes())
    resolved = resolve_model(str(copy))
    copy.write_bytes(tiny_pt2.read_bytes() + b"\0")
    with pytest.raises(MobilebenchError, match="changing.pt2 changed since it was resolved"):
        export_model(resolved, ExportOptions(), cache_dir=tmp_path / "cache")
