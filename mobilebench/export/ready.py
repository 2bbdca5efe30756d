"""Ready artifacts: a ``.pte`` or ``.onnx`` file the user already has, used as it is.

There is no export step and no cache entry: the :class:`Artifact` points at the user's
file, keyed by its SHA-256. Nor is there a parity check (there is no PyTorch model to
compare with); the provenance says so ("ready artifact, not verified"). The file runs
on the runtime its suffix names, exactly as it was exported: asking for the other
runtime, int8 or a dynamic batch is an error rather than a silent conversion.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import cache as artifact_cache
from mobilebench.export.options import Artifact, ExportOptions

if TYPE_CHECKING:
    from mobilebench.zoo.resolve import ResolvedModel

NOT_VERIFIED = "ready artifact, not verified"
_RUNTIME_LABEL = {"executorch": "ExecuTorch .pte", "onnx": "ONNX"}


def ready_artifact(resolved: ResolvedModel, options: ExportOptions) -> Artifact:
    """The ready file of ``resolved`` (kind ``"artifact"``) as an :class:`Artifact`."""
    source, runtime = resolved.source, resolved.artifact_runtime
    if resolved.kind != "artifact" or source is None or runtime is None:
        raise MobilebenchError(f"{resolved.name} is not a ready artifact")
    if options.runtime != runtime:
        raise UsageError(
            f"{source.name} is a ready {_RUNTIME_LABEL[runtime]} file: it runs on {runtime}, not {options.runtime}; "
            f"use --runtime {runtime} (mobilebench does not convert ready artifacts)"
        )
    if options.dtype != "fp32" or options.dynamic_batch:
        asked = "--dtype int8" if options.dtype != "fp32" else "--dynamic-batch"
        raise UsageError(
            f"{source.name} is a ready artifact and runs as it was exported; {asked} needs the PyTorch model "
            "(its model card, import path or .pt2 program)"
        )
    try:
        sha, size_bytes = artifact_cache.file_sha256(source), source.stat().st_size
    except OSError as exc:
        raise MobilebenchError(f"cannot read {source}: {exc.strerror or exc}") from None
    if sha != resolved.checkpoint_sha256:
        raise MobilebenchError(
            f"{source} changed since it was resolved (sha256 {str(resolved.checkpoint_sha256)[:12]} -> {sha[:12]})"
        )
    provenance: dict[str, Any] = {
        "format": artifact_cache.CACHE_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": resolved.name,
            "kind": resolved.kind,
            "arch": resolved.arch,
            "source": str(source),
            "num_classes": resolved.num_classes,
            "input_size": resolved.input_size,
            "weights": "ready artifact",
            **resolved.weights_identity(),
        },
        "artifact": {
            "runtime": runtime,
            # The label profile asked for; mobilebench neither converted nor quantized the file.
            "dtype": options.dtype,
            "input_shape": list(resolved.input_shape),
            "dynamic_batch": False,
            "file": source.name,
            "sha256": sha,
            "size_bytes": size_bytes,
            "ready": True,
        },
        "export": None,
        "verification": NOT_VERIFIED,
        "parity": None,
        "versions": artifact_cache.library_versions(),
        "export_seconds": 0.0,
    }
    return Artifact(
        path=source,
        sha256=sha,
        runtime=runtime,
        dtype=options.dtype,
        input_shape=tuple(resolved.input_shape),
        provenance=provenance,
        cached=False,
    )
