"""The paper's Table 2: top-1 accuracy and single-core latency per phone, one row per model.

Rules (the provenance sidecar repeats them):

- A latency cell is ``median_ms`` of the newest ``ok`` run for (model, device profile,
  runtime, dtype). Failed, aborted and running rows are ignored; a missing run leaves
  the cell empty.
- Emulated runs never fill a phone's column: they get their own column headed
  ``<device> (ms, emulated)``.
- Top-1 is the accuracy measured on the artifact the row's runs timed (``mobilebench
  eval --runtime executorch|onnx``: the same sha256), else the newest one measured in
  eager PyTorch, else the model card's quoted figure; otherwise empty. ``Top-1 source``
  says which ("measured on the .pte, imagenet", "measured in eager PyTorch, ...",
  "quoted (...)").

Columns: ``Model``, ``Top-1 (%)``, ``Top-1 source``, then per device one column per metric
(default: the median latency; any of :data:`METRICS`, e.g. ``peak_rss_bytes``,
``warm_load_ms``, from the same run). Default devices: every device profile with a
successful run of the chosen runtime and dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobilebench.errors import UsageError
from mobilebench.files import write_text_atomic
from mobilebench.report.formats import render
from mobilebench.report.selection import RunKey, newest_ok_runs
from mobilebench.records import AccuracyRecord, RunRecord
from mobilebench.store import ResultsStore, utc_now
from mobilebench.text import suggest

MODEL_COLUMN = "Model"
TOP1_COLUMN = "Top-1 (%)"
TOP1_SOURCE_COLUMN = "Top-1 source"
RULES = (
    "latency = median_ms of the newest run with status 'ok' per (model, device, runtime, dtype); "
    "emulated runs appear only in '(ms, emulated)' columns; top-1 = accuracy measured on the timed artifact, "
    "else measured in eager PyTorch, else the model card (quoted); missing values are left empty"
)


@dataclass(frozen=True)
class Top1:
    """A top-1 accuracy in percent, and where it came from.

    ``kind``: ``artifact`` (measured on the very artifact that was timed, in its
    runtime), ``measured`` (measured in eager PyTorch) or ``quoted`` (a model card's).
    """

    value: float
    kind: str
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the tables print next to the number: "measured on the .pte, digits"."""
        dataset = self.reference.get("dataset")
        if self.kind == "artifact":
            suffix = ".pte" if self.reference.get("runtime") == "executorch" else ".onnx"
            int8 = " (int8)" if self.reference.get("dtype") == "int8" else ""
            return f"measured on the {suffix}{int8}" + (f", {dataset}" if dataset else "")
        if self.kind == "measured":
            return "measured in eager PyTorch" + (f", {dataset}" if dataset else "")
        return "quoted" + (f" ({self.reference['source']})" if self.reference.get("source") else "")


QuotedTop1 = Callable[[str], Top1 | None]


def card_top1(model: str) -> Top1 | None:
    """The top-1 a model card quotes (``models/<name>.toml``), or None."""
    try:
        from mobilebench.zoo.cards import get_card
    except ImportError:  # the zoo's cards are optional for reports
        return None
    card = get_card(model)
    accuracy = getattr(card, "accuracy", None) if card is not None else None
    top1 = getattr(accuracy, "top1", None)
    if top1 is None:
        return None
    reference = {
        "card": str(getattr(card, "path", None) or model),
        "dataset": getattr(accuracy, "dataset", None),
        "source": getattr(accuracy, "source", None),
    }
    return Top1(float(top1), "quoted", reference)


def resolve_top1(
    store: ResultsStore | None,
    model: str,
    quoted: QuotedTop1 = card_top1,
    *,
    runs: Sequence[RunRecord | None] = (),
) -> Top1 | None:
    """The top-1 shown next to ``runs`` (the latency cells of ``model``): the accuracy
    measured on the artifact those runs timed (newest run first), else one measured in
    eager PyTorch (on the runs' checkpoint when they name one), else the quoted one
    (cards only, without a store)."""
    if store is not None:
        timed = [r for r in runs if r is not None]
        newest_first = sorted(timed, key=lambda r: r.created_at, reverse=True)
        for artifact in dict.fromkeys(r.meta.artifact_sha256 for r in newest_first):
            if artifact and (record := store.accuracy(model, artifact_sha256=artifact)) is not None:
                return _measured(record, "artifact")
        checkpoints = {r.meta.checkpoint_sha256 for r in timed} - {None}
        record = None
        if len(checkpoints) == 1:
            record = store.accuracy(model, runtime="eager", checkpoint_sha256=checkpoints.pop())
        record = record or store.accuracy(model, runtime="eager")
        if record is not None:
            return _measured(record, "measured")
    return quoted(model)


def _measured(record: AccuracyRecord, kind: str) -> Top1:
    return Top1(
        record.top1,
        kind,
        {
            "accuracy_id": record.id,
            "dataset": record.dataset,
            "runtime": record.runtime,
            "dtype": record.dtype,
            "checkpoint_sha256": record.checkpoint_sha256,
            "artifact_sha256": record.artifact_sha256,
            "images": record.images,
            "source": record.source,
            "created_at": record.created_at,
        },
    )


#: Per-run numbers a device's columns can show (``RunRecord.as_dict`` keys); the median
#: latency is the paper's, and the default.
METRICS = (
    "median_ms", "mean_ms", "p10_ms", "p90_ms", "ci_low_ms", "ci_high_ms", "cv", "n",
    "load_ms", "warm_load_ms", "first_ms", "peak_rss_bytes", "planned_memory_bytes",
)  # fmt: skip


@dataclass(frozen=True)
class DeviceColumn:
    device: str
    emulated: bool

    def header(self, metric: str = "median_ms") -> str:
        """``pixel4 (ms)`` for the median latency (the paper's column), else
        ``pixel4 peak_rss_bytes``; emulated columns say so."""
        what = "ms" if metric == "median_ms" else metric
        if metric == "median_ms":
            return f"{self.device} (ms, emulated)" if self.emulated else f"{self.device} (ms)"
        return f"{self.device} {what}" + (" (emulated)" if self.emulated else "")


@dataclass(frozen=True)
class Table2Row:
    model: str
    top1: Top1 | None
    cells: tuple[RunRecord | None, ...]  # one per column, the run behind the latency


@dataclass(frozen=True)
class Table2:
    runtime: str
    dtype: str
    columns: tuple[DeviceColumn, ...]
    rows: tuple[Table2Row, ...]
    metrics: tuple[str, ...] = ("median_ms",)

    @property
    def headers(self) -> list[str]:
        devices = [c.header(metric) for c in self.columns for metric in self.metrics]
        return [MODEL_COLUMN, TOP1_COLUMN, TOP1_SOURCE_COLUMN, *devices]

    def records(self) -> list[dict[str, Any]]:
        """One dict per row with the displayed values (ms and % rounded to 2 decimals)."""
        out = []
        for row in self.rows:
            record: dict[str, Any] = {
                MODEL_COLUMN: row.model,
                TOP1_COLUMN: round(row.top1.value, 2) if row.top1 else None,
                TOP1_SOURCE_COLUMN: row.top1.label if row.top1 else None,
            }
            for column, run in zip(self.columns, row.cells, strict=True):
                values = run.as_dict() if run is not None else {}
                for metric in self.metrics:
                    record[column.header(metric)] = _rounded(values.get(metric))
            out.append(record)
        return out

    def provenance(self, *, database: str | None = None) -> dict[str, Any]:
        """Which run and which accuracy source fed every cell (JSON-ready)."""
        rows = []
        for row in self.rows:
            entry: dict[str, Any] = {MODEL_COLUMN: row.model}
            entry[TOP1_COLUMN] = (
                {"value": row.top1.value, "kind": row.top1.kind, **row.top1.reference} if row.top1 else None
            )
            for column, run in zip(self.columns, row.cells, strict=True):
                entry[column.header()] = _run_provenance(run) if run else None
            rows.append(entry)
        return {
            "generated_at": utc_now(),
            "database": str(database) if database else None,
            "runtime": self.runtime,
            "dtype": self.dtype,
            "rules": RULES,
            "columns": self.headers,
            "rows": rows,
        }


def _run_provenance(run: RunRecord) -> dict[str, Any]:
    m, s = run.meta, run.stats
    assert s is not None
    return {
        "run_id": run.id,
        "median_ms": s.median_ms,
        "ci_low_ms": s.ci_low_ms,
        "ci_high_ms": s.ci_high_ms,
        "n": s.n,
        "created_at": run.created_at,
        "emulated": m.emulated,
        "device_model": m.device_model,
        "cpu": m.cpu,
        "threads": m.threads,
        "backend": m.backend,
        "checkpoint_sha256": m.checkpoint_sha256,
        "artifact_sha256": m.artifact_sha256,
        "runner": m.runner_name,
        "runner_version": m.runner_version,
        "runtime_version": m.runtime_version,
        "warnings": list(m.warnings),
    }


def _columns(keys: Sequence[RunKey], devices: Sequence[str] | None) -> list[DeviceColumn]:
    real = {k.device for k in keys if not k.emulated}
    emulated = {k.device for k in keys if k.emulated}
    if not devices:
        # Measured devices first, then the emulated columns, each alphabetically.
        return [DeviceColumn(d, False) for d in sorted(real)] + [DeviceColumn(d, True) for d in sorted(emulated)]
    names = list(dict.fromkeys(devices))
    columns = []
    for name in names:
        # A requested device keeps its (empty) phone column unless only emulated runs exist.
        if name in real or name not in emulated:
            columns.append(DeviceColumn(name, emulated=False))
        if name in emulated:
            columns.append(DeviceColumn(name, emulated=True))
    return columns


def build_table2(
    store: ResultsStore,
    *,
    devices: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    runtime: str = "executorch",
    dtype: str = "fp32",
    metrics: Sequence[str] = ("median_ms",),
    quoted_top1: QuotedTop1 = card_top1,
) -> Table2:
    """Table 2 from the store (see the module docstring for the rules)."""
    if unknown := [m for m in metrics if m not in METRICS]:
        raise UsageError(f"unknown Table 2 column {unknown[0]!r}; {suggest(unknown[0], METRICS, noun='columns')}")
    if not metrics:
        raise UsageError("name at least one column")
    newest = newest_ok_runs(store, runtime=runtime, dtype=dtype)
    if not newest and not models:
        raise UsageError(f"no successful {runtime}/{dtype} runs in {store.location}: run `mobilebench profile` first")
    columns = _columns(list(newest), devices)
    shown = {(c.device, c.emulated) for c in columns}
    if models:
        names = list(dict.fromkeys(models))
    else:
        names = sorted({k.model for k in newest if (k.device, k.emulated) in shown})
    rows = []
    for name in names:
        cells = tuple(newest.get(RunKey(name, c.device, runtime, dtype, c.emulated)) for c in columns)
        top1 = resolve_top1(store, name, quoted_top1, runs=cells)
        rows.append(Table2Row(model=name, top1=top1, cells=cells))
    return Table2(runtime=runtime, dtype=dtype, columns=tuple(columns), rows=tuple(rows), metrics=tuple(metrics))


def _rounded(value: Any) -> Any:
    """Milliseconds and fractions to 2 decimals (bytes and counts stay whole)."""
    return round(value, 2) if isinstance(value, float) else value


def provenance_path(output: Path) -> Path:
    return output.with_name(output.name + ".provenance.json")


def write_table2(table: Table2, output: Path, *, database: str | None = None) -> Path:
    """Write the table (CSV, or Markdown/JSON by suffix) and its provenance sidecar, atomically.

    Returns the sidecar's path.
    """
    import json

    suffix = output.suffix.lower()
    fmt = "markdown" if suffix in (".md", ".markdown") else "json" if suffix == ".json" else "csv"
    sidecar = provenance_path(output)
    # Sidecar first: a table on disk always has provenance that is at least as new.
    write_text_atomic(sidecar, json.dumps(table.provenance(database=database), indent=2) + "\n")
    write_text_atomic(output, render(table.headers, table.records(), fmt))
    return sidecar
