"""The results database as pandas DataFrames, for notebooks and scripts.

>>> from mobilebench.results import runs_frame
>>> runs = runs_frame(status="ok", purpose="latency", newest_per_key=True)   # Table 2's runs
>>> runs.pivot_table(index="model", columns="device_profile", values="median_ms")
>>> iterations = runs_frame(model="skipnet_m", samples=True)
>>> iterations[~iterations.warmup].groupby("run_id").latency_ms.describe()

The database is the default one (``MOBILEBENCH_DB``, else ``results/mobilebench.sqlite``)
or ``db``: a file path or a ``postgresql://`` URL. Filters are those of
:func:`mobilebench.store.runs_query` (model, device, runtime, dtype, status, emulated,
purpose, comparison_id, newest_per_key, limit). Rows come newest first. Latencies are in
milliseconds; what the statistics are is in :mod:`mobilebench.bench.stats`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from mobilebench.schema import samples_table
from mobilebench.store import ResultsStore, runs_query

#: The run columns repeated on every row of the long (per-sample) frame: what the run
#: measured and where. The rest of a run is one merge away (``on="run_id"``).
SAMPLE_RUN_COLUMNS = (
    "created_at",
    "status",
    "model",
    "checkpoint_sha256",
    "artifact_sha256",
    "runtime",
    "backend",
    "dtype",
    "device_profile",
    "emulated",
    "device_model",
    "cpu",
    "runner_name",
    "purpose",
    "comparison_id",
)


def runs_frame(db: str | Path | None = None, *, samples: bool = False, **filters: Any) -> pd.DataFrame:
    """The runs matching ``filters``, one row each, or with ``samples=True`` their samples.

    A run row has every ``runs`` column (see :mod:`mobilebench.schema`): provenance,
    device state before and after, and the statistics of ``ok`` runs (NULL otherwise).
    ``created_at``/``finished_at`` are UTC timestamps, ``emulated`` a bool, ``warnings``
    a list and ``state_before``/``state_after``/``extra`` dicts.

    With ``samples=True`` the frame is long: one row per iteration of the matching runs
    (``run_id``, ``i``, ``latency_ms``, ``warmup`` (bool: a warm-up iteration, not
    timed), ``averaged_over`` (> 1: the mean of that many iterations, from runners that
    print only a total), ``pair`` (the interleaved pair of a comparison)) with the run's
    :data:`SAMPLE_RUN_COLUMNS`, in run order (newest first), then iteration order.
    """
    runs = runs_query(**filters)
    with ResultsStore(db, create=False) as store, store.reading() as conn:
        if not samples:
            return _typed(pd.read_sql(runs, conn))
        chosen = runs.subquery()
        query = (
            sa.select(
                samples_table.c.run_id,
                samples_table.c.i,
                samples_table.c.latency_ms,
                samples_table.c.warmup,
                samples_table.c.averaged_over,
                samples_table.c.pair,
                *(chosen.c[name] for name in SAMPLE_RUN_COLUMNS),
            )
            .join(chosen, samples_table.c.run_id == chosen.c.id)
            .order_by(chosen.c.created_at.desc(), chosen.c.id.desc(), samples_table.c.i)
        )
        frame = _typed(pd.read_sql(query, conn))
    frame["warmup"] = frame["warmup"].astype(bool)
    return frame


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns the store encodes (timestamps, JSON, 0/1) as their Python types."""
    for name in ("created_at", "finished_at"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    if "emulated" in frame:
        frame["emulated"] = frame["emulated"].astype(bool)
    # Missing text comes back as NaN or None, depending on the column's other values.
    if "warnings" in frame:
        frame["warnings"] = pd.Series([json.loads(t) if isinstance(t, str) else [] for t in frame["warnings"]], dtype=object)
    for name in ("state_before", "state_after", "extra"):
        if name in frame:
            frame[name] = pd.Series([json.loads(t) if isinstance(t, str) else None for t in frame[name]], dtype=object)
    return frame

