"""torch.export capture, and ExecuTorch (XNNPACK) and ONNX export with parity."""

from __future__ import annotations

import pytest
import torch

from mobilebench.export import ExportOptions, export_model
from mobilebench.zoo import create_model
from mobilebench.zoo.resolve import resolve_model

NEW_MODELS = ("ghostnet_130", "mnasnet_a1", "mnasnet1_0")


@pytest.mark.parametrize("name", NEW_MODELS)
def test_torch_export_captures_at_batch_2(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 3, 224, 224)
    program = torch.export.export(model, (x,), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_MODELS)
def test_executorch_xnnpack_lowers_fully_with_parity(name: str) -> None:
    artifact = export_model(resolve_model(name), ExportOptions(runtime="executorch"))
    provenance = artifact.provenance
    # The model lowers as written: no rewrite was needed and nothing runs outside XNNPACK.
    assert provenance["export"]["graph_rewrites"] == {}
    delegation = provenance["delegation"]
    assert delegation["portable_ops"] == 0, delegation["portable_op_counts"]
    assert delegation["delegated_op_counts"].get("aten_convolution_default", 0) > 50
    assert provenance["parity"]["passed"] is True
    assert artifact.path.stat().st_size > 10_000_000


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_MODELS)
def test_onnx_export_with_parity(name: str) -> None:
    artifact = export_model(resolve_model(name), ExportOptions(runtime="onnx"))
    assert artifact.provenance["parity"]["passed"] is True
    assert artifact.path.suffix == ".onnx"
