"""Which stored run stands for a model on a device: the newest successful one.

Runs are keyed by (model, device profile, runtime, dtype, emulated). Emulated runs form
their own key, so a result from the phone emulator can never stand in for a phone.
Failed, aborted and still-running rows are never selected, nor traced (per-op) runs
(tracing slows the program down), nor the runs of a comparison (two programs shared
one runner process: their ratio is the result, not their absolute latencies).
"""

from __future__ import annotations

from dataclasses import dataclass

from mobilebench.records import RunRecord
from mobilebench.store import ResultsStore


@dataclass(frozen=True, order=True)
class RunKey:
    model: str
    device: str
    runtime: str
    dtype: str
    emulated: bool


def run_key(record: RunRecord) -> RunKey:
    m = record.meta
    return RunKey(m.model, m.device_profile, m.runtime, m.dtype, m.emulated)


def newest_ok_runs(
    store: ResultsStore,
    *,
    model: str | None = None,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
    emulated: bool | None = None,
) -> dict[RunKey, RunRecord]:
    """The newest ``ok`` run for every key matching the filters."""
    runs = store.runs(
        model=model,
        device=device,
        runtime=runtime,
        dtype=dtype,
        status="ok",
        emulated=emulated,
        purpose="latency",
        in_comparison=False,
        newest_per_key=True,
    )
    return {run_key(record): record for record in runs}
