"""End to end: real zoo models exported, run in their real runtimes, cached.

The three skipnet_m artifacts (fp32 .pte, int8 .pte, .onnx) are exported once per
session (conftest.py). Exporting every zoo model in both runtimes takes about 10 CPU
minutes, too long for the default suite; set MOBILEBENCH_EXPORT_MATRIX=1 to run it.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import onnx
import pytest
import torch

from mobilebench.export import ExportOptions, export_model, fixed_input
from mobilebench.export.cache import key_of
from mobilebench.export.options import FP32_RELATIVE_TOLERANCE
from mobilebench.export.parity import run_executorch, run_onnxruntime
from mobilebench.export.pipeline import key_material
from mobilebench.zoo import list_models
from mobilebench.zoo.resolve import ResolvedModel, resolve_model

pytestmark = pytest.mark.slow


def _eager(resolved: ResolvedModel, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return resolved.build()(x).numpy()


def _check_sidecar(artifact) -> dict:
    sidecar = json.loads(artifact.path.with_suffix(".json").read_text())
    assert sidecar == artifact.provenance
    assert sidecar["artifact"]["sha256"] == artifact.sha256
    assert sidecar["artifact"]["size_bytes"] == artifact.path.stat().st_size
    assert sidecar["model"]["weights"] == "random-init" and sidecar["model"]["random_init_seed"] == 0
    assert {"torch", "executorch", "onnx", "onnxruntime"} <= set(sidecar["versions"])
    return sidecar


def test_skipnet_m_fp32_pte_is_fully_delegated_and_matches_eager(skipnet_m, skipnet_fp32_pte) -> None:
    artifact = skipnet_fp32_pte
    assert artifact.path.suffix == ".pte" and artifact.input_shape == (1, 3, 224, 224)
    prov = _check_sidecar(artifact)
    assert prov["parity"]["passed"] and prov["parity"]["relative_max_abs_diff"] <= FP32_RELATIVE_TOLERANCE
    delegation = prov["delegation"]  # ExecuTorch's get_delegation_info, by node name
    assert delegation["portable_op_counts"] == {} and delegation["delegates"] == 1
    assert delegation["delegated_op_counts"]["aten_convolution_default"] == 53
    # SkipNet's two skip-block pools run in XNNPACK as avg_pool2d (not on portable kernels).
    assert delegation["delegated_op_counts"]["aten_avg_pool2d_default"] == 2
    assert set(prov["stage_seconds"]) == {"capture", "lower", "check", "serialize", "parity"}

    # Independently of the export's own check: another input, same verdict.
    x = fixed_input(artifact.input_shape, seed=5)
    (out,) = run_executorch(artifact.path, [x])
    ref = _eager(skipnet_m, x)
    assert np.max(np.abs(out - ref)) <= FP32_RELATIVE_TOLERANCE * np.max(np.abs(ref))


def test_skipnet_m_int8_pte_runs_and_is_small(skipnet_m, skipnet_fp32_pte, skipnet_int8_pte) -> None:
    artifact = skipnet_int8_pte
    prov = _check_sidecar(artifact)
    assert artifact.dtype == "int8"
    assert artifact.path.stat().st_size < 0.35 * skipnet_fp32_pte.path.stat().st_size
    calibration = prov["calibration"]  # a random-init model: synthetic inputs, and labelled so
    assert calibration["source"] == "synthetic" and calibration["synthetic"] and calibration["inputs_fed"] == 8
    assert len(calibration["inputs_sha256"]) == 64
    assert "quantize" in prov["stage_seconds"]
    assert prov["delegation"]["portable_op_counts"] == {}
    delegated = prov["delegation"]["delegated_op_counts"]
    assert sum(n for op, n in delegated.items() if op.startswith("quantized_decomposed_dequantize_per_channel")) > 50
    parity = prov["parity"]
    assert parity["inputs"] == 8 and 0.0 <= parity["top1_agreement"] <= 1.0
    assert np.isfinite(parity["max_abs_diff"])
    (out,) = run_executorch(artifact.path, [fixed_input(artifact.input_shape, 0)])
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_skipnet_m_onnx_is_one_checked_file_with_static_batch(skipnet_m, skipnet_onnx) -> None:
    artifact = skipnet_onnx
    prov = _check_sidecar(artifact)
    assert artifact.path.suffix == ".onnx"
    assert prov["parity"]["passed"] and prov["parity"]["runtime"].startswith("onnxruntime")
    assert prov["export"]["onnx"]["opset"] >= 18
    model = onnx.load(str(artifact.path))  # self-contained: no external data to resolve
    onnx.checker.check_model(model, full_check=True)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 224, 224]
    x = fixed_input(artifact.input_shape, seed=9)
    (out,) = run_onnxruntime(artifact.path, [x])
    ref = _eager(skipnet_m, x)
    assert np.max(np.abs(out - ref)) <= FP32_RELATIVE_TOLERANCE * np.max(np.abs(ref))


def test_second_export_is_a_cache_hit_without_building(skipnet_m, skipnet_fp32_pte, monkeypatch) -> None:
    mtime = skipnet_fp32_pte.path.stat().st_mtime_ns

    def no_build(self):
        raise AssertionError("a cache hit must not build the model")

    monkeypatch.setattr(ResolvedModel, "build", no_build)
    again = export_model(resolve_model("skipnet_m"), ExportOptions())
    assert again.cached and again.path == skipnet_fp32_pte.path and again.sha256 == skipnet_fp32_pte.sha256
    assert again.path.stat().st_mtime_ns == mtime
    assert again.provenance == skipnet_fp32_pte.provenance


def test_changed_weights_or_options_miss_the_cache(skipnet_m, skipnet_fp32_pte) -> None:
    """Keys differ for another checkpoint, input size, options or runtime (nothing is exported)."""
    base = key_of(key_material(skipnet_m, ExportOptions(), None))
    assert base == skipnet_fp32_pte.provenance["cache_key"]
    variants = [
        dataclasses.replace(skipnet_m, checkpoint_sha256="0" * 64),
        dataclasses.replace(skipnet_m, input_size=192),
        dataclasses.replace(skipnet_m, options={"dropout": 0.0}),
    ]
    keys = {key_of(key_material(v, ExportOptions(), None)) for v in variants}
    keys.add(key_of(key_material(skipnet_m, ExportOptions(runtime="onnx"), None)))
    keys.add(key_of(key_material(skipnet_m, ExportOptions(dynamic_batch=True), None)))
    assert base not in keys and len(keys) == 5


def test_dynamic_batch_onnx_accepts_other_batch_sizes(tmp_path) -> None:
    resolved = resolve_model("mobilenet_v3_small", input_size=96)
    artifact = export_model(
        resolved, ExportOptions(runtime="onnx", dynamic_batch=True), cache_dir=tmp_path
    )
    assert artifact.provenance["artifact"]["batch_range"] == [1, None]
    assert artifact.provenance["parity"]["inputs"] == 2  # batch 1 and batch 2
    dims = onnx.load(str(artifact.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 96, 96]
    x = fixed_input((3, 3, 96, 96), 0)
    (out,) = run_onnxruntime(artifact.path, [x])
    ref = _eager(resolved, x)
    assert out.shape == (3, 1000)
    assert np.max(np.abs(out - ref)) <= FP32_RELATIVE_TOLERANCE * np.max(np.abs(ref))


MATRIX = os.environ.get("MOBILEBENCH_EXPORT_MATRIX") == "1"


@pytest.mark.skipif(not MATRIX, reason="full zoo export matrix: set MOBILEBENCH_EXPORT_MATRIX=1 (~10 CPU minutes)")
@pytest.mark.parametrize("runtime", ["executorch", "onnx"])
@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_exports_fp32_with_parity(name: str, runtime: str) -> None:
    artifact = export_model(resolve_model(name), ExportOptions(runtime=runtime))
    prov = artifact.provenance
    assert prov["parity"]["passed"] and prov["parity"]["relative_max_abs_diff"] <= FP32_RELATIVE_TOLERANCE
    if runtime == "executorch":
        assert prov["delegation"]["portable_op_counts"] == {}, f"{name}: ops left on the portable CPU path"
