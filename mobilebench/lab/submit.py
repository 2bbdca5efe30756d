"""Submitting jobs: what ``mobilebench lab submit`` does before the jobs are queued."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from mobilebench.bench.session import ProfileConfig
from mobilebench.device import get_profile
from mobilebench.errors import UsageError
from mobilebench.export import Artifact, ExportHooks, ExportOptions, export_model
from mobilebench.lab.queue import JobOptions, JobQueue, JobRecord, NewJob
from mobilebench.store import ResultsStore
from mobilebench.zoo.resolve import resolve_model


def submit_jobs(
    store: ResultsStore,
    names: Sequence[str],
    *,
    device: str,
    options: JobOptions,
    repeat: int = 1,
    devices_file: Path | None = None,
    export: Callable[..., Artifact] = export_model,
    hooks: ExportHooks | None = None,
) -> list[JobRecord]:
    """Queue ``repeat`` jobs per model, interleaved (A B A B ...); returns them.

    Every model is exported here first (the artifact cache makes that cheap when it was
    exported before): the artifact's hash goes with the job, and a worker whose own
    export differs fails the job instead of measuring something else. The device
    profile and the options are checked here as ``mobilebench profile`` checks them, so
    that a typo fails now, not on a worker an hour later.
    """
    if not names:
        raise UsageError("name at least one model to submit")
    if repeat < 1:
        raise UsageError(f"--repeat must be >= 1, got {repeat}")
    get_profile(device, extra_file=devices_file)
    ProfileConfig(device=device, **options.measurement())
    checkpoint = Path(options.checkpoint) if options.checkpoint else None
    if checkpoint is not None and len(names) != 1:
        raise UsageError("--checkpoint applies to a single model")
    export_options = ExportOptions(runtime=options.runtime, dtype=options.dtype)
    artifacts = [
        export(resolve_model(name, checkpoint=checkpoint, input_size=options.input_size), export_options, hooks=hooks)
        for name in names
    ]
    queue = JobQueue(store)
    ids = queue.submit(
        [
            NewJob(model=name, device_profile=device, options=options, artifact_sha256=artifact.sha256)
            for _ in range(repeat)
            for name, artifact in zip(names, artifacts)
        ]
    )
    return queue.jobs(ids)
