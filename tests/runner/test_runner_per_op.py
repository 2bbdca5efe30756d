"""Per-operator profiles: the runner's ETDump, read with ExecuTorch's Inspector and the
export's ETRecord, joined to fvcore's multiply-adds (mobilebench.bench.per_op)."""

from __future__ import annotations

import json
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mobilebench.bench.measurement import RunnerRequest
from mobilebench.bench.per_op import OpProfile, profile_ops
from mobilebench.bench.runners import get_adapter
from mobilebench.errors import MobilebenchError

WARMUP, ITERATIONS = 2, 12


@dataclass(frozen=True)
class Traced:
    pte: Path
    etrecord: Path
    flops_by_module: dict[str, int]


def small_net() -> Any:
    """Every kind of layer the join handles: a dense 3x3 convolution, a depthwise one and a
    1x1 one (each with a batch norm XNNPACK folds into it), global pooling and a linear layer."""
    import torch
    from torch import nn

    class SmallNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.Hardswish())
            self.pw = nn.Sequential(nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.pool(self.pw(self.dw(self.stem(x)))), 1))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return SmallNet().eval()


def export_traced(model: Any, shape: tuple[int, ...], directory: Path, *, per_op: bool = False) -> Traced:
    """A .pte and the ETRecord of its lowering, straight through ExecuTorch, and fvcore's
    multiply-adds per module (what mobilebench.flops reports for zoo models)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from fvcore.nn import FlopCountAnalysis

    x = torch.zeros(shape)
    partitioner = XnnpackPartitioner(per_op_mode=per_op)
    lowered = to_edge_transform_and_lower(
        torch.export.export(model, (x,)), partitioner=[partitioner], generate_etrecord=True
    ).to_executorch()
    pte, etrecord = directory / "model.pte", directory / "model.etrecord"
    pte.write_bytes(lowered.buffer)
    lowered.get_etrecord().save(str(etrecord))
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    return Traced(pte, etrecord, {name: int(n) for name, n in analysis.by_module().items()})


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    return export_traced(small_net(), (1, 3, 64, 64), tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def small_per_op(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    return export_traced(small_net(), (1, 3, 64, 64), tmp_path_factory.mktemp("small_per_op"), per_op=True)


def trace(run_runner: Callable[..., Any], pte: Path, directory: Path) -> tuple[Path, Any]:
    """A traced run through the runner adapter, as the profile session makes one."""
    adapter = get_adapter("mobilebench_runner")
    request = RunnerRequest(str(pte), warmup=WARMUP, iterations=ITERATIONS, etdump=str(directory / "trace.etdp"))
    result = run_runner(*adapter.argv("", request)[1:])
    assert result.returncode == 0, result.describe()
    output = adapter.parse("".join(json.dumps(e) + "\n" for e in result.events), request=request)
    assert output.trace is not None
    assert (output.trace.executions, output.trace.warmup) == (WARMUP + ITERATIONS, WARMUP)
    return Path(output.trace.path), result


def by_name(profile: OpProfile) -> dict[str, Any]:
    return {op.name: op for op in profile.ops}


def test_each_layer_is_one_row_with_its_multiply_adds(
    run_runner: Callable[..., Any], small: Traced, tmp_path: Path
) -> None:
    etdump, result = trace(run_runner, small.pte, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profile = profile_ops(etdump, small.etrecord, small.flops_by_module, warmup=WARMUP, run_id=7)
    # The devtools' warnings per graph node would bury the table on a user's terminal.
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
    assert profile.variant == "program" and profile.delegate_ops and profile.slowdown is None
    assert profile.iterations == ITERATIONS
    rows = by_name(profile)
    flops = small.flops_by_module
    # XNNPACK's operator for each layer, with fvcore's multiply-adds of the layer (and of
    # the batch norm folded into it).
    expected = {
        "stem.0": ("Convolution (NHWC, F32) IGEMM", flops["stem.0"] + flops["stem.1"]),
        "dw.0": ("Convolution (NHWC, F32) DWConv", flops["dw.0"] + flops["dw.1"]),
        "pw.0": ("Fully Connected (NC, F32) GEMM", flops["pw.0"] + flops["pw.1"]),
        "pool": ("Mean (ND) Reduce2", flops["pool"]),
        "fc": ("Fully Connected (NC, F32) GEMM", flops["fc"]),
    }
    for name, (kind, macs) in expected.items():
        assert (rows[name].kind, rows[name].macs, rows[name].delegate) == (kind, macs, "XnnpackBackend"), name
        assert rows[name].run_id == 7 and rows[name].calls == 1
    assert profile.macs == profile.fvcore_macs == flops[""]
    # Element-wise operators are rows without multiply-adds.
    assert any(op.kind.startswith("HardSwish") and op.macs is None for op in profile.ops)
    # Slowest first; ranks 0..n-1; medians over the timed executions only.
    assert [op.rank for op in profile.ops] == list(range(len(profile.ops)))
    assert [op.ms for op in profile.ops] == sorted((op.ms for op in profile.ops), reverse=True)
    assert rows["stem.0"].ms > 0 and rows["stem.0"].gmacs == rows["stem.0"].macs / (rows["stem.0"].ms * 1e6)
    # Method::execute is what the runner timed (plus its few microseconds of bookkeeping).
    runner_median = statistics.median(result.timed_ms)
    assert profile.median_ms == pytest.approx(runner_median, rel=0.5)
    assert 0 < profile.ops_ms <= profile.median_ms * 1.5
    as_dict = profile.as_dict()
    assert {"name", "kind", "delegate", "ms", "macs"} <= set(as_dict["ops"][0])
    assert as_dict["variant"] == "program" and as_dict["iterations"] == ITERATIONS


def test_the_per_operator_delegated_export_is_labelled_with_its_slowdown(
    run_runner: Callable[..., Any], small: Traced, small_per_op: Traced, tmp_path: Path
) -> None:
    etdump, _ = trace(run_runner, small.pte, tmp_path)
    normal = profile_ops(etdump, small.etrecord, small.flops_by_module, warmup=WARMUP)
    etdump, _ = trace(run_runner, small_per_op.pte, tmp_path)
    per_op = profile_ops(
        etdump, small_per_op.etrecord, small_per_op.flops_by_module, warmup=WARMUP,
        variant="per-op", reference_median_ms=normal.median_ms,
    )  # fmt: skip
    assert per_op.variant == "per-op"
    assert per_op.slowdown == pytest.approx(per_op.median_ms / normal.median_ms)
    # Every operator is its own delegate call, each layer still a row with its multiply-adds.
    rows = by_name(per_op)
    assert rows["stem.0"].macs == small.flops_by_module["stem.0"]
    assert rows["fc"].macs == small.flops_by_module["fc"]
    assert per_op.macs == per_op.fvcore_macs


class Node:
    """The few fields of an fx node the join reads (hashable by identity, like fx nodes)."""

    def __init__(self, target: str, handle: int, module: str) -> None:
        self.op, self.target, self.args = "call_function", SimpleNamespace(__name__=target), ()
        self.meta = {"debug_handle": handle, "nn_module_stack": {"m": (module, "Module")}}


def event(name: str, raw: list[float], **fields: Any) -> SimpleNamespace:
    """An Inspector event: its name, one time per execution, and where it points."""
    defaults = {"debug_handles": None, "op_types": [], "is_delegated_op": False, "delegate_backend_name": None}
    start = [10.0 * k for k in range(len(raw))]
    return SimpleNamespace(name=name, perf_data=SimpleNamespace(raw=raw), start_time=start, **(defaults | fields))


def test_a_delegate_call_without_operator_events_is_one_row() -> None:
    """A delegate that records nothing inside its calls (XNNPACK built without profiling):
    the call is one row holding all its nodes' multiply-adds, and a note says what to do."""
    from mobilebench.bench.per_op import _EdgeGraph, _Profile

    graph = _EdgeGraph(
        [Node("aten.convolution.default", 1, "conv"), Node("aten.relu.default", 2, "act")],
        {"": 1000, "conv": 1000, "act": 0},
    )
    events = [
        event("Method::execute", [9.0, 5.0, 5.2, 4.8]),
        event("DELEGATE_CALL", [8.9, 4.9, 5.1, 4.7], debug_handles=[1, 2], delegate_backend_name="XnnpackBackend"),
    ]
    profile = _Profile(events, graph, warmup=1, run_id=3).build(variant="program", reference_median_ms=None,
                                                                fvcore_macs=1000)  # fmt: skip
    (row,) = profile.ops
    assert (row.name, row.kind, row.delegate, row.ms, row.macs) == (
        "XnnpackBackend call (2 nodes)", "DELEGATE_CALL", "XnnpackBackend", 4.9, 1000
    )
    assert not profile.delegate_ops and "per_op_mode" in profile.notes[-1]
    assert (profile.iterations, profile.median_ms) == (3, 5.0)


def test_operators_far_short_of_the_run_are_noted() -> None:
    from mobilebench.bench.per_op import _EdgeGraph, _Profile

    graph = _EdgeGraph([Node("aten.relu.default", 1, "act")], {"": 0, "act": 0})
    events = [event("Method::execute", [5.0, 5.0, 5.0]), event("OPERATOR_CALL", [1.0, 1.0, 1.0], debug_handles=1,
                                                                  op_types=["aten.relu.default"])]  # fmt: skip
    profile = _Profile(events, graph, warmup=0, run_id=0).build(variant="program", reference_median_ms=None,
                                                                fvcore_macs=0)  # fmt: skip
    assert [(op.name, op.kind, op.ms, op.macs) for op in profile.ops] == [("act", "aten.relu.default", 1.0, None)]
    assert profile.notes == ("the operators' medians add up to 20% of the traced run's median: the rest went to "
                             "other processes (a busy machine) or to work outside the operators",)  # fmt: skip


def test_an_etrecord_needs_a_lowering(small: Traced) -> None:
    from mobilebench.errors import UsageError
    from mobilebench.export import ExportOptions, export_model
    from mobilebench.zoo.resolve import resolve_model

    with pytest.raises(UsageError, match="needs --runtime executorch"):
        ExportOptions(runtime="onnx", etrecord=True)
    with pytest.raises(UsageError, match="is a ready artifact: there is no lowering of it to record"):
        export_model(resolve_model(str(small.pte)), ExportOptions(etrecord=True))


def test_bad_traces_are_one_line_errors(run_runner: Callable[..., Any], small: Traced, tmp_path: Path) -> None:
    with pytest.raises(MobilebenchError, match="ETDump not found"):
        profile_ops(tmp_path / "none.etdp", small.etrecord, small.flops_by_module, warmup=0)
    etdump, _ = trace(run_runner, small.pte, tmp_path)
    with pytest.raises(MobilebenchError, match=f"holds {WARMUP + ITERATIONS} executions, all of them warm-up"):
        profile_ops(etdump, small.etrecord, small.flops_by_module, warmup=WARMUP + ITERATIONS)
    garbage = tmp_path / "garbage.etdp"
    garbage.write_bytes(b"not a trace" * 10)
    with pytest.raises(MobilebenchError, match="cannot read the trace") as failure:
        profile_ops(garbage, small.etrecord, small.flops_by_module, warmup=0)
    assert "\n" not in str(failure.value)
    with pytest.raises(MobilebenchError, match="variant must be one of"):
        profile_ops(etdump, small.etrecord, small.flops_by_module, warmup=0, variant="fast")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_large", "skipnet_m"])
def test_zoo_models_profile_into_operators_that_add_up(
    run_runner: Callable[..., Any], zoo_pte: Callable[..., Any], tmp_path: Path, name: str
) -> None:
    """The acceptance of a per-op profile, through the project's export: at least 10
    operators, their multiply-adds add up to fvcore's total within 20 % and their times to
    the traced run's median within 50 %."""
    from mobilebench.export import ExportOptions, export_model
    from mobilebench.files import file_sha256
    from mobilebench.flops import count_flops
    from mobilebench.zoo.resolve import resolve_model

    plain = zoo_pte(name, "fp32")  # the latency artifact, cached without an ETRecord
    resolved = resolve_model(name)
    artifact = export_model(resolved, ExportOptions(etrecord=True))
    # The ETRecord is a record of the lowering, not a different program.
    assert artifact.path == plain.path and artifact.sha256 == file_sha256(plain.path)
    assert artifact.etrecord_path is not None and artifact.etrecord_path.is_file()
    assert export_model(resolved, ExportOptions(etrecord=True)).cached
    etdump, _ = trace(run_runner, artifact.path, tmp_path)
    report = count_flops(resolved)
    profile = profile_ops(etdump, artifact.etrecord_path, report.flops_by_module, warmup=WARMUP)
    assert len(profile.ops) >= 10
    assert profile.fvcore_macs == report.flops
    assert profile.macs == pytest.approx(report.flops, rel=0.20)
    assert profile.ops_ms == pytest.approx(profile.median_ms, rel=0.50)
    # Nearly all the multiply-adds are in convolutions and linear layers, matched to their modules.
    matched = [op for op in profile.ops if op.macs]
    assert sum(op.macs for op in matched if op.kind.startswith(("Convolution", "Fully Connected"))) >= (
        report.conv_linear_flops
    )
    assert all(op.name in report.flops_by_module for op in matched)
    assert not profile.notes, profile.notes
