"""Per-operator profiles: the runner's ETDump, read by ExecuTorch's Inspector, joined to fvcore.

A traced run (``mobilebench_runner --etdump``) records, for every execution, ExecuTorch's
events. What the ExecuTorch 1.5.1 runtime and its XNNPACK delegate record (measured on
this project's zoo models):

- ``Method::execute``, the whole execution: the traced run's latency;
- for each instruction outside a delegate, an ``OPERATOR_CALL`` (its debug handle names
  the nodes of the ETRecord's edge graph it runs, hence their modules) wrapping the
  kernel's own ``native_call_<op>`` event;
- for each delegate call a ``DELEGATE_CALL``, whose debug handles list every edge node
  the delegate took, in graph order;
- inside the XNNPACK delegate, one event per XNNPACK operator, named by XNNPACK with its
  kind and a running count of that kind (``Convolution (NHWC, F32) IGEMM #3``, ``Fully
  Connected (NC, F32) GEMM #7``, ``HardSwish (NC) #1``), timed by XNNPACK itself to the
  microsecond. These carry no debug handle: XNNPACK does not say which node an operator
  came from.

The join to the model. XNNPACK keeps its subgraph in the order the delegate serialised
it (graph order) and never merges two multiply-add operators into one, so within one
delegate call the k-th convolution / fully-connected operator is the k-th convolution /
linear node among the call's nodes, and the k-th mean / average-pooling operator the
k-th pooling node. Each pair is checked (a ``DWConv`` must be a depthwise convolution, a
``Fully Connected`` a linear layer or a 1x1 convolution); a call whose operators do not
match its nodes gets no multiply-adds, and a note says so. A batch norm whose input is a
convolution runs inside it (XNNPACK folds it into the weights) and is charged to it.

Multiply-adds are fvcore's (:func:`mobilebench.flops.count_flops`, one multiply-add =
one flop): each edge node is charged its module's own count (the module's total minus
its children's), split evenly over the fvcore-counted nodes (convolutions, linear
layers, batch norms, pooling, ...) whose innermost module it is. Element-wise operators
(activations, additions, the SE scaling) cost no multiply-adds, as in fvcore. So the
rows' multiply-adds add up to fvcore's total, less what nothing could be matched to.

Times: a row's ``ms`` is the median over the traced iterations (warm-up executions
dropped) of that operator's time; rows sum to slightly less than ``Method::execute``
(argument handling and the delegate's own work between operators are in no row).
Tracing costs time (XNNPACK's per-operator timers, the event records): a traced run is
stored apart from latency runs and never feeds a table or a comparison.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobilebench.errors import MobilebenchError
from mobilebench.records import OpRecord
from mobilebench.toolchain import quiet_toolchain

#: ``variant`` of a profile of the program as it is measured (delegate calls split into
#: the delegate's own operators), and of a per-operator-delegated export (every operator
#: its own delegate call: XNNPACK's ``per_op_mode``), used only when a delegate records
#: nothing inside its calls.
VARIANTS = ("program", "per-op")

_COUNT_SUFFIX = re.compile(r"\s+#\d+$")

# Edge-dialect operator names (the part after "aten." / before the overload).
_MAC_TARGETS = {"convolution", "linear", "addmm", "mm", "bmm", "matmul"}
_POOL_TARGETS = {"mean", "avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool2d"}
_BATCH_NORM_TARGETS = {"_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm"}
# Everything fvcore counts by default (plus average pooling, as mobilebench.flops does).
_COUNTED_TARGETS = (
    _MAC_TARGETS
    | _POOL_TARGETS
    | _BATCH_NORM_TARGETS
    | {"upsample_nearest2d", "upsample_bilinear2d", "native_layer_norm", "native_group_norm", "einsum"}
)

# XNNPACK operator kinds (how their event names start).
_XNN_MAC_KINDS = ("Convolution", "Fully Connected", "Deconvolution", "Batch Matrix Multiply")
_XNN_POOL_KINDS = ("Mean", "Average Pooling", "Global Average Pooling")
_XNN_LAYOUT_KINDS = ("Transpose", "Copy", "Convert", "Static Reshape", "Static Transpose")


@dataclass(frozen=True)
class OpProfile:
    """A traced run's operators, slowest first, and how they add up.

    ``ops`` are :class:`~mobilebench.records.OpRecord` rows (``rank`` 0 = slowest).
    ``median_ms`` is the median of ``Method::execute`` over the ``iterations`` traced
    executions (warm-up dropped), ``ops_ms`` the sum of the rows' medians. ``macs`` is
    what the rows carry, ``fvcore_macs`` fvcore's total for the model. ``variant`` is one
    of :data:`VARIANTS`; ``slowdown`` is, for the ``per-op`` variant, its traced median
    over the normal program's (None otherwise). ``delegate_ops`` is False when a delegate
    call recorded no operators inside it (it is then one row).
    """

    ops: tuple[OpRecord, ...]
    iterations: int
    median_ms: float
    ops_ms: float
    macs: float
    fvcore_macs: int
    variant: str = "program"
    slowdown: float | None = None
    delegate_ops: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary fields and ``ops`` (name, kind, delegate, ms, macs, gmacs, calls)."""
        return {
            "variant": self.variant,
            "slowdown": self.slowdown,
            "iterations": self.iterations,
            "median_ms": self.median_ms,
            "ops_ms": self.ops_ms,
            "macs": self.macs,
            "fvcore_macs": self.fvcore_macs,
            "delegate_ops": self.delegate_ops,
            "notes": list(self.notes),
            "ops": [
                {"rank": op.rank, "name": op.name, "kind": op.kind, "delegate": op.delegate, "ms": op.ms,
                 "macs": op.macs, "gmacs": op.gmacs, "calls": op.calls}
                for op in self.ops
            ],
        }  # fmt: skip


def profile_ops(
    etdump: Path,
    etrecord: Path,
    flops_by_module: Mapping[str, int],
    *,
    warmup: int,
    run_id: int = 0,
    variant: str = "program",
    reference_median_ms: float | None = None,
) -> OpProfile:
    """One row per operator of the traced run ``etdump`` of the program whose export
    wrote ``etrecord``.

    ``flops_by_module`` is :attr:`mobilebench.flops.FlopsReport.flops_by_module` of the
    model (fvcore, "" = the whole model). The first ``warmup`` executions in the trace are
    dropped (the runner traces warm-up runs too). ``run_id`` goes into the rows. For the
    ``per-op`` variant, ``reference_median_ms`` (the normal program's median latency)
    gives ``slowdown``.
    """
    # Here, not at the top: the devtools import torch, which a profile without --per-op never needs.
    from executorch.devtools import Inspector
    from executorch.devtools.etrecord import parse_etrecord

    if variant not in VARIANTS:
        raise MobilebenchError(f"per-op profile variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    for path, what in ((etdump, "ETDump"), (etrecord, "ETRecord")):
        if not Path(path).is_file():
            raise MobilebenchError(f"{what} not found: {path}")
    try:
        # The devtools warn per graph node about kwargs they do not model and about the
        # tensor data a latency trace does not keep: nothing a user can act on.
        with quiet_toolchain():
            record = parse_etrecord(str(etrecord))
            inspector = Inspector(etdump_path=str(etdump), etrecord=record)
    except Exception as exc:  # the devtools raise assorted internal types on bad files
        raise MobilebenchError(f"cannot read the trace {etdump} with {etrecord}: {type(exc).__name__}: {exc}") from None
    events = [event for block in inspector.event_blocks if block.name == "Execute" for event in block.events]
    graph = _EdgeGraph(record.edge_dialect_program.graph_module.graph.nodes, flops_by_module)
    return _Profile(events, graph, warmup=warmup, run_id=run_id).build(
        variant=variant, reference_median_ms=reference_median_ms, fvcore_macs=int(flops_by_module.get("", 0))
    )


# --------------------------------------------------------------------- the edge graph


def _target_name(node: Any) -> str:
    """``aten.convolution.default`` -> ``convolution``."""
    name = getattr(node.target, "__name__", None) or str(node.target)
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 else parts[0]


class _EdgeGraph:
    """The ETRecord's edge program: nodes by debug handle, and fvcore's multiply-adds per node."""

    def __init__(self, nodes: Iterable[Any], flops_by_module: Mapping[str, int]) -> None:
        self.position: dict[Any, int] = {}
        self.by_handle: dict[int, list[Any]] = defaultdict(list)
        counted_in: dict[str, list[Any]] = defaultdict(list)
        for position, node in enumerate(nodes):
            if node.op != "call_function":
                continue
            self.position[node] = position
            handle = node.meta.get("debug_handle")
            if isinstance(handle, int):
                self.by_handle[handle].append(node)
            if _target_name(node) in _COUNTED_TARGETS:
                counted_in[self.module(node)].append(node)
        own = _own_flops(flops_by_module)
        self.macs: dict[Any, float] = {}
        for module, counted in counted_in.items():
            for node in counted:
                self.macs[node] = own.get(module, 0) / len(counted)

    @staticmethod
    def module(node: Any) -> str:
        """The path of the innermost module the node ran in ("" = the model itself)."""
        stack = node.meta.get("nn_module_stack") or {}
        return list(stack.values())[-1][0] if stack else ""

    def nodes(self, handles: Any) -> list[Any]:
        """The nodes of ``handles`` (an int or a list of them), in graph order."""
        wanted = [handles] if isinstance(handles, int) else list(handles or [])
        found = {node for handle in wanted for node in self.by_handle.get(handle, [])}
        return sorted(found, key=self.position.__getitem__)


def _own_flops(flops_by_module: Mapping[str, int]) -> dict[str, float]:
    """Each module's flops less its direct children's: what its own forward computes."""
    own = {name: float(value) for name, value in flops_by_module.items()}
    for name, value in flops_by_module.items():
        if name:
            parent = name.rpartition(".")[0]
            if parent in own:
                own[parent] -= value
    return own


def _is_depthwise(node: Any) -> bool:
    if _target_name(node) != "convolution":
        return False
    weight = node.args[1].meta.get("val")
    groups = node.args[8] if len(node.args) > 8 else 1
    return weight is not None and groups > 1 and groups == weight.shape[0] and weight.shape[1] == 1


def _is_pointwise(node: Any) -> bool:
    """A linear layer, or a 1x1 convolution with stride 1 and no padding (a matrix product)."""
    name = _target_name(node)
    if name != "convolution":
        return name in _MAC_TARGETS
    weight = node.args[1].meta.get("val")
    stride, padding = list(node.args[3]), list(node.args[4])
    groups = node.args[8] if len(node.args) > 8 else 1
    return (
        weight is not None and list(weight.shape[2:]) == [1, 1] and set(stride) == {1} and set(padding) == {0}
        and groups == 1
    )  # fmt: skip


def _compatible(kind: str, node: Any) -> bool:
    """Can XNNPACK operator ``kind`` be edge node ``node``?"""
    if kind.startswith("Fully Connected"):
        return _is_pointwise(node)
    if kind.startswith("Convolution"):
        return _target_name(node) == "convolution" and ("DWConv" in kind) == _is_depthwise(node)
    if kind.startswith("Deconvolution"):
        return _target_name(node) == "convolution" and bool(node.args[6])  # transposed
    return _target_name(node) in {"bmm", "matmul", "mm"}


# --------------------------------------------------------------------- the events


@dataclass
class _Row:
    name: str
    kind: str
    delegate: str | None
    times_ms: list[float]
    nodes: list[Any] = field(default_factory=list)  # edge nodes charged to this row


class _Profile:
    def __init__(self, events: Sequence[Any], graph: _EdgeGraph, *, warmup: int, run_id: int) -> None:
        self.graph, self.warmup, self.run_id = graph, warmup, run_id
        self.notes: list[str] = []
        execute = [e for e in events if e.name == "Method::execute"]
        if not execute or not execute[0].perf_data:
            raise MobilebenchError("the trace has no 'Method::execute' events: was it written by a traced run?")
        self.total = self._traced(execute[0])
        self.iterations = len(self.total)
        order = {id(e): self._start(e) for e in events}
        self.events = sorted((e for e in events if e.perf_data), key=lambda e: order[id(e)])

    def _traced(self, event: Any) -> list[float]:
        raw = list(event.perf_data.raw)
        if len(raw) <= self.warmup:
            raise MobilebenchError(
                f"the trace holds {len(raw)} executions, all of them warm-up ({self.warmup}): nothing traced to profile"
            )
        return [float(ms) for ms in raw[self.warmup :]]

    def _start(self, event: Any) -> float:
        starts = event.start_time or [0]
        return float(starts[min(self.warmup, len(starts) - 1)])

    def build(self, *, variant: str, reference_median_ms: float | None, fvcore_macs: int) -> OpProfile:
        rows: list[_Row] = []
        calls: list[tuple[Any, list[_Row]]] = []  # (DELEGATE_CALL event, its operators)
        for event in self.events:
            if event.name == "Method::execute" or event.name.startswith("native_call_"):
                continue  # the whole run; a kernel's own event inside its OPERATOR_CALL
            if event.name == "DELEGATE_CALL":
                calls.append((event, []))
            elif event.is_delegated_op:
                kind = _COUNT_SUFFIX.sub("", event.name)
                row = _Row(event.name, kind, event.delegate_backend_name, self._traced(event))
                if calls:
                    calls[-1][1].append(row)
                rows.append(row)
            elif event.name == "OPERATOR_CALL":
                rows.append(self._operator_row(event))
            else:
                self.notes.append(f"event {event.name!r} in the trace is not an operator; left out")
        delegate_ops = True
        for call, inner in calls:
            if inner:
                self._match(self.graph.nodes(call.debug_handles), inner)
            else:  # the delegate recorded nothing inside: the call is one row
                delegate_ops = False
                nodes = self.graph.nodes(call.debug_handles)
                backend = call.delegate_backend_name or "delegate"
                name = f"{backend} call ({len(nodes)} nodes)"
                rows.append(_Row(name, "DELEGATE_CALL", backend, self._traced(call), nodes))
        if not delegate_ops:
            self.notes.append(
                "a delegate call recorded no operators inside it: it is one row; profile a per-operator-delegated "
                "export (XnnpackPartitioner per_op_mode) for its operators"
            )
        return self._finish(rows, variant, reference_median_ms, fvcore_macs, delegate_ops)

    def _operator_row(self, event: Any) -> _Row:
        nodes = self.graph.nodes(event.debug_handles)
        kind = event.op_types[0] if event.op_types else "operator"
        name = self.graph.module(nodes[0]) if nodes else ""
        return _Row(name or kind, kind, None, self._traced(event), nodes)

    def _match(self, nodes: list[Any], inner: list[_Row]) -> None:
        """Charge a delegate call's nodes to its operators (see the module docstring)."""
        compute = [r for r in inner if not r.kind.startswith(_XNN_LAYOUT_KINDS)]
        if len(compute) == 1:
            # One operator (and layout changes): every node of the call is its work. This is
            # the per-operator-delegated export, where XNNPACK also runs a lone batch norm
            # as a 1x1 depthwise convolution.
            self._charge(compute[0], [n for n in nodes if n in self.graph.macs])
            return
        mac_rows = [r for r in inner if r.kind.startswith(_XNN_MAC_KINDS)]
        for what, rows, candidates in (
            ("multiply-add", mac_rows, [n for n in nodes if _target_name(n) in _MAC_TARGETS]),
            ("pooling", [r for r in inner if r.kind.startswith(_XNN_POOL_KINDS)],
             [n for n in nodes if _target_name(n) in _POOL_TARGETS]),
        ):  # fmt: skip
            pairs = list(zip(rows, candidates, strict=False))
            if len(rows) != len(candidates) or not all(
                what == "pooling" or _compatible(row.kind, node) for row, node in pairs
            ):
                self.notes.append(
                    f"a delegate call's {len(rows)} {what} operators do not match its {len(candidates)} {what} "
                    "nodes: their multiply-adds are left out"
                )
                continue
            for row, node in pairs:
                self._charge(row, [node])
        owner = {node: row for row in mac_rows for node in row.nodes}
        for node in nodes:
            if _target_name(node) in _BATCH_NORM_TARGETS and node.args and node.args[0] in owner:
                owner[node.args[0]].nodes.append(node)  # folded into the convolution

    def _charge(self, row: _Row, nodes: list[Any]) -> None:
        row.nodes.extend(nodes)
        if nodes and (module := self.graph.module(nodes[0])):
            row.name = module

    def _finish(
        self, rows: list[_Row], variant: str, reference_median_ms: float | None, fvcore_macs: int, delegate_ops: bool
    ) -> OpProfile:
        records = []
        ranked = sorted(rows, key=lambda r: statistics.median(r.times_ms), reverse=True)
        for rank, row in enumerate(ranked):
            macs = sum(self.graph.macs.get(node, 0.0) for node in row.nodes)
            records.append(
                OpRecord(
                    run_id=self.run_id,
                    rank=rank,
                    name=row.name,
                    kind=row.kind,
                    delegate=row.delegate,
                    ms=statistics.median(row.times_ms),
                    macs=macs if macs > 0 else None,
                )
            )
        median_ms = statistics.median(self.total)
        ops_ms = sum(r.ms for r in records)
        if ops_ms < 0.5 * median_ms:
            # Each operator's median misses the moments the process was preempted; the
            # run's median does not.
            self.notes.append(
                f"the operators' medians add up to {ops_ms / median_ms:.0%} of the traced run's median: the rest went "
                "to other processes (a busy machine) or to work outside the operators"
            )
        slowdown = None
        if variant == "per-op" and reference_median_ms:
            slowdown = median_ms / reference_median_ms
        return OpProfile(
            ops=tuple(records),
            iterations=self.iterations,
            median_ms=median_ms,
            ops_ms=ops_ms,
            macs=sum(r.macs or 0.0 for r in records),
            fvcore_macs=fvcore_macs,
            variant=variant,
            slowdown=slowdown,
            delegate_ops=delegate_ops,
            notes=tuple(dict.fromkeys(self.notes)),
        )
