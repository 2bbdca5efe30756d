"""Accuracy against latency, FLOPs or parameters, with the Pareto front (the paper's Figure 1).

One marker per model, labelled; the Pareto front (models no other model beats on both
axes: at most the cost and at least the accuracy, one of them strictly) is drawn as a
step line, because the best accuracy reachable within a budget stays flat until the
next front model. Latency is the median of the newest successful run on one device
(as in Table 2); FLOPs and parameters come from :mod:`mobilebench.flops` (fvcore's
convention: one multiply-add = one flop). Top-1 is measured if recorded, else quoted.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import write_bytes_atomic
from mobilebench.report.selection import newest_ok_runs
from mobilebench.report.table2 import QuotedTop1, card_top1, resolve_top1
from mobilebench.store import ResultsStore

X_METRICS = ("latency", "flops", "params")
IMAGE_FORMATS = ("png", "svg")


@dataclass(frozen=True)
class PlotPoint:
    model: str
    x: float
    top1: float  # percent


@dataclass(frozen=True)
class PlotData:
    points: list[PlotPoint]
    x_label: str
    title: str
    skipped: list[str] = field(default_factory=list)  # "model: why it is not plotted"


def pareto_front(points: Sequence[PlotPoint]) -> list[PlotPoint]:
    """Points not dominated by any other (lower x is better, higher top-1 is better), by x."""
    front: list[PlotPoint] = []
    # Cheapest first; at equal cost the most accurate first, so its twins are dominated.
    for point in sorted(points, key=lambda p: (p.x, -p.top1, p.model)):
        if not front or point.top1 > front[-1].top1:
            front.append(point)
    return front


def _pick_device(devices: set[str]) -> str:
    if len(devices) == 1:
        return next(iter(devices))
    if not devices:
        raise UsageError("no successful runs to plot: run `mobilebench profile` first")
    raise UsageError(f"runs exist on several devices ({', '.join(sorted(devices))}): choose one with --device")


def latency_points(
    store: ResultsStore,
    *,
    device: str | None = None,
    runtime: str = "executorch",
    dtype: str = "fp32",
    models: Sequence[str] | None = None,
    quoted_top1: QuotedTop1 = card_top1,
) -> PlotData:
    """Top-1 against the median latency of each model's newest successful run on ``device``."""
    newest = newest_ok_runs(store, runtime=runtime, dtype=dtype)
    device = device or _pick_device({k.device for k in newest})
    on_device = {k: r for k, r in newest.items() if k.device == device}
    if not on_device:
        raise UsageError(f"no successful {runtime}/{dtype} runs on device {device!r} in {store.location}")
    # Real measurements first; a device known only through the emulator is plotted as such.
    emulated = not any(not k.emulated for k in on_device)
    by_model = {k.model: r for k, r in on_device.items() if k.emulated == emulated}
    names = list(dict.fromkeys(models)) if models else sorted(by_model)
    points, skipped = [], []
    for name in names:
        run = by_model.get(name)
        top1 = resolve_top1(store, name, quoted_top1, runs=[run])
        if run is None or run.stats is None:
            skipped.append(f"{name}: no successful run on {device}")
        elif top1 is None:
            skipped.append(f"{name}: no top-1 (measured or in a model card)")
        else:
            points.append(PlotPoint(name, run.stats.median_ms, top1.value))
    suffix = ", emulated" if emulated else ""
    return PlotData(
        points=points,
        x_label=f"latency on {device} (ms, median, {runtime} {dtype}{suffix})",
        title=f"Top-1 vs latency on {device}{suffix}",
        skipped=skipped,
    )


def model_cost(name: str) -> tuple[float, float]:
    """(FLOPs, parameters) of a model by name, counted by :mod:`mobilebench.flops`."""
    try:
        from mobilebench.flops import count_flops
        from mobilebench.zoo.resolve import resolve_model
    except ImportError as exc:
        raise MobilebenchError(f"FLOPs and parameters need mobilebench.flops ({exc})") from exc
    report = count_flops(resolve_model(name))
    return float(report.flops), float(report.params)


def cost_points(
    store: ResultsStore | None,
    *,
    metric: str,
    models: Sequence[str] | None = None,
    cost_of: Callable[[str], tuple[float, float]] = model_cost,
    quoted_top1: QuotedTop1 = card_top1,
) -> PlotData:
    """Top-1 against FLOPs or parameters (millions) of each model.

    Models: ``models`` if given, else every model with a successful run or an accuracy
    record in the store. Without a store (no database yet) top-1 comes from model cards.
    """
    if metric not in ("flops", "params"):
        raise UsageError(f"unknown cost metric {metric!r}; expected flops or params")
    if models:
        names = list(dict.fromkeys(models))
    elif store is not None:
        names = sorted({k.model for k in newest_ok_runs(store)} | set(store.accuracy_models()))
    else:
        names = []
    if not names:
        where = store.location if store is not None else "the results database"
        raise UsageError(f"no models in {where}: profile or evaluate some, or pass --models")
    points, skipped = [], []
    for name in names:
        top1 = resolve_top1(store, name, quoted_top1)
        if top1 is None:
            skipped.append(f"{name}: no top-1 (measured or in a model card)")
            continue
        try:
            flops, params = cost_of(name)
        except MobilebenchError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        points.append(PlotPoint(name, (flops if metric == "flops" else params) / 1e6, top1.value))
    label = "FLOPs (millions; fvcore, 1 multiply-add = 1 flop)" if metric == "flops" else "parameters (millions)"
    return PlotData(
        points=points,
        x_label=label,
        title=f"Top-1 vs {'FLOPs' if metric == 'flops' else 'parameters'}",
        skipped=skipped,
    )


def draw(data: PlotData, output: Path, *, width_in: float = 7.0, height_in: float = 5.0, dpi: int = 150) -> None:
    """Draw the points and the Pareto front to ``output`` (.png or .svg), atomically.

    The PNG is exactly ``width_in * dpi`` x ``height_in * dpi`` pixels (no tight bbox).
    """
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"cannot write {output}: the figure must be .png or .svg")
    if not data.points:
        raise UsageError("nothing to plot: " + ("; ".join(data.skipped) if data.skipped else "no models"))
    # The object API with the Agg canvas: no pyplot, no global backend state, no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    front = pareto_front(data.points)
    on_front = {p.model for p in front}
    others = [p for p in data.points if p.model not in on_front]
    ax.scatter([p.x for p in others], [p.top1 for p in others], color="tab:gray", zorder=3, label="models")
    ax.scatter([p.x for p in front], [p.top1 for p in front], color="tab:red", zorder=4, label="Pareto front")
    if len(front) > 1:
        ax.step([p.x for p in front], [p.top1 for p in front], where="post", color="tab:red", linewidth=1.2, zorder=2)
    for p in data.points:
        ax.annotate(p.model, (p.x, p.top1), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost models
    ax.set_xlabel(data.x_label)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(data.title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    write_bytes_atomic(output, buffer.getvalue())
