"""Ready artifacts: a ``.pte`` or ``.onnx`` file the user already has, used as it is.

There is no export step and no cache entry: the :class:`Artifact` points at the user's
file, keyed by its SHA-256. Nor is there a parity check (there is no PyTorch model to
compare with); the provenance says so ("ready artifact, not verified"). The file runs
on the runtime its suffix names, exactly as it was exported: asking for the other
runtime, int8 or a dynamic batch is an error rather than a silent conversion.

:func:`artifact_signature` reads a file's input shape and class count with the runtime
libraries (``onnx``, ``executorch.runtime``), once per file content.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mobilebench import paths
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export.cache import CACHE_FORMAT, library_versions, write_atomic
from mobilebench.export.options import Artifact, ExportOptions
from mobilebench.files import file_sha256
from mobilebench.toolchain import native_errors, quiet_import
from mobilebench.zoo.outside import FileSignature, check_image_input, check_requested_size, last_dim, shape_text
from mobilebench.zoo.resolve import ArtifactFile

NOT_VERIFIED = "ready artifact, not verified"
_RUNTIME_LABEL = {"executorch": "ExecuTorch .pte", "onnx": "ONNX"}


def artifact_signature(path: Path, input_size: int | None = None, *, sha256: str | None = None) -> FileSignature:
    """Input shape (and class count) of a ready ``.pte`` or ``.onnx`` file, checked to be
    one ``N x C x H x W`` image tensor (of side ``input_size``, when given).

    With the file's ``sha256`` the shapes read are kept under it in the user's cache:
    reading a ``.pte`` imports ExecuTorch's exporter (seconds), once per file."""
    inputs, output = _cached_shapes(path, sha256) if sha256 else _read_shapes(path)
    if len(inputs) != 1:
        raise UsageError(f"{path.name} takes {len(inputs)} inputs; mobilebench feeds exactly one image tensor")
    shape = inputs[0]
    if path.suffix.lower() == ".onnx":
        if len(shape) == 4 and not isinstance(shape[0], int):
            shape[0] = 1  # a symbolic batch: the ONNX runners feed batch 1
        return FileSignature(check_image_input(path, shape, input_size), last_dim(output))
    # An ExecuTorch program states the largest shape it was planned for; the runner
    # feeds exactly that, so that is what is measured and recorded.
    if len(shape) != 4:
        raise UsageError(
            f"{path.name} takes input {shape_text(shape)}, not a 4-d image tensor (NxCxHxW); mobilebench feeds one NCHW image"
        )
    check_requested_size(path, tuple(shape), input_size)
    return FileSignature(tuple(shape), last_dim(output))


Shapes = tuple[list[list[Any]], list[Any]]  # the inputs' shapes, the first output's


def _cached_shapes(path: Path, sha256: str) -> Shapes:
    entry = paths.cache_dir() / "ready-artifacts" / f"{sha256}.json"
    try:
        cached = json.loads(entry.read_text())
        return cached["inputs"], cached["output"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not read before (or a damaged entry): read the file
    inputs, output = _read_shapes(path)
    try:
        write_atomic(entry, json.dumps({"inputs": inputs, "output": output}).encode())
    except OSError:
        pass  # a read-only or full cache costs the next call the same seconds, nothing else
    return inputs, output


def _read_shapes(path: Path) -> Shapes:
    return _onnx_shapes(path) if path.suffix.lower() == ".onnx" else _pte_shapes(path)


def _onnx_shapes(path: Path) -> Shapes:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise UsageError(f"{path} is not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    initializers = {t.name for t in proto.graph.initializer}

    def dims(info: Any) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in info.type.tensor_type.shape.dim]

    inputs = [dims(i) for i in proto.graph.input if i.name not in initializers]
    return inputs, dims(proto.graph.output[0]) if proto.graph.output else []


def _pte_shapes(path: Path) -> Shapes:
    Runtime = quiet_import("executorch.runtime").Runtime  # noqa: N806 - the library's class

    def refused(exc: Exception) -> str:
        return f"{path} is not a loadable ExecuTorch program with a forward method ({exc})"

    with native_errors(refused, UsageError):
        method = Runtime.get().load_program(path).metadata("forward")
        inputs = [list(method.input_tensor_meta(i).sizes()) for i in range(method.num_inputs())]
        output = list(method.output_tensor_meta(0).sizes()) if method.num_outputs() else []
    return inputs, output


def ready_artifact(resolved: ArtifactFile, options: ExportOptions) -> Artifact:
    """The ready file of ``resolved`` as an :class:`Artifact`, its signature read and
    checked against what was asked."""
    source, runtime = resolved.source, resolved.runtime
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
        sha, size_bytes = file_sha256(source), source.stat().st_size
    except OSError as exc:
        raise MobilebenchError(f"cannot read {source}: {exc.strerror or exc}") from None
    if sha != resolved.checkpoint_sha256:
        raise MobilebenchError(
            f"{source} changed since it was resolved (sha256 {str(resolved.checkpoint_sha256)[:12]} -> {sha[:12]})"
        )
    signature = artifact_signature(source, resolved.input_size, sha256=sha)
    provenance: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": resolved.name,
            "kind": resolved.kind,
            "arch": resolved.arch,
            "source": str(source),
            "num_classes": signature.num_classes,
            "input_size": signature.input_shape[-2],
            "weights": resolved.weights_label(),
            **resolved.weights_identity(),
        },
        "artifact": {
            "runtime": runtime,
            # The label profile asked for; mobilebench neither converted nor quantized the file.
            "dtype": options.dtype,
            "input_shape": list(signature.input_shape),
            "dynamic_batch": False,
            "file": source.name,
            "sha256": sha,
            "size_bytes": size_bytes,
            "ready": True,
        },
        "export": None,
        "verification": NOT_VERIFIED,
        "parity": None,
        "versions": library_versions(),
        "export_seconds": 0.0,
    }
    return Artifact(
        path=source,
        sha256=sha,
        runtime=runtime,
        dtype=options.dtype,
        input_shape=tuple(signature.input_shape),
        provenance=provenance,
        cached=False,
    )
