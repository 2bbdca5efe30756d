"""The paper's Table 2: top-1 accuracy and single-core latency per phone, one row per model.

Rules (the provenance sidecar repeats them):

- A latency cell is ``median_ms`` of the newest ``ok`` run for (model, device profile,
  runtime, dtype). Failed, aborted and running rows are ignored; a missing run leaves
  the cell empty.
- Emulated runs never fill a phone's column: they get their own column headed
  ``<device> (ms, emulated)``.
- Top-1 is the newest record in the ``accuracy`` table (measured); without one, the
  model card's quoted figure; otherwise empty.

Columns: ``Model``, ``Top-1 (%)``, then one per device. Default devices: every device
profile with a successful run of the chosen runtime and dtype.
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
from mobilebench.records import RunRecord
from mobilebench.store import ResultsStore, utc_now

MODEL_COLUMN = "Model"
TOP1_COLUMN = "Top-1 (%)"
RULES = (
    "latency = median_ms of the newest run with status 'ok' per (model, device, runtime, dtype); "
    "emulated runs appear only in '(ms, emulated)' columns; top-1 = newest accuracy record (measured), "
    "else the model card (quoted); missing values are left empty"
)


@dataclass(frozen=True)
class Top1:
    """A top-1 accuracy in percent, and where it came from."""

    value: float
    kind: str  # "measured" (accuracy table) or "quoted" (model card)
    reference: dict[str, Any] = field(default_factory=dict)


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


def resolve_top1(store: ResultsStore | None, model: str, quoted: QuotedTop1 = card_top1) -> Top1 | None:
    """Measured top-1 (newest accuracy record) if any, else the quoted one (cards only without a store)."""
    record = store.accuracy(model) if store is not None else None
    if record is not None:
        return Top1(
            record.top1,
            "measured",
            {
                "accuracy_id": record.id,
                "dataset": record.dataset,
                "checkpoint_sha256": record.checkpoint_sha256,
                "source": record.source,
                "created_at": record.created_at,
            },
        )
    return quoted(model)


@dataclass(frozen=True)
class DeviceColumn:
    device: str
    emulated: bool

    @property
    def header(self) -> str:
        return f"{self.device} (ms, emulated)" if self.emulated else f"{self.device} (ms)"


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

    @property
    def headers(self) -> list[str]:
        return [MODEL_COLUMN, TOP1_COLUMN, *(c.header for c in self.columns)]

    def records(self) -> list[dict[str, Any]]:
        """One dict per row with the displayed values (ms and % rounded to 2 decimals)."""
        out = []
        for row in self.rows:
            record: dict[str, Any] = {
                MODEL_COLUMN: row.model,
                TOP1_COLUMN: round(row.top1.value, 2) if row.top1 else None,
            }
            for column, run in zip(self.columns, row.cells, strict=True):
                record[column.header] = round(run.stats.median_ms, 2) if run and run.stats else None
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
                entry[column.header] = _run_provenance(run) if run else None
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
    quoted_top1: QuotedTop1 = card_top1,
) -> Table2:
    """Table 2 from the store (see the module docstring for the rules)."""
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
        rows.append(Table2Row(model=name, top1=resolve_top1(store, name, quoted_top1), cells=cells))
    return Table2(runtime=runtime, dtype=dtype, columns=tuple(columns), rows=tuple(rows))


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
