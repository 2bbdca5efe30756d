"""``export_model``: a resolved model in, a parity-checked, cached artifact out.

An export is a cache lookup (nothing is built for it) and, on a miss, named stages in
the order of ExecuTorch's XNNPACK tester:

    capture -> [quantize] -> lower -> check -> serialize -> parity

- ``capture``: build the model, run it eagerly on the parity inputs, ``torch.export``
  (plus the XNNPACK-friendly rewrites of :mod:`~mobilebench.export.capture`);
- ``quantize`` (int8): PT2E with the XNNPACK quantizer, calibrated on the
  :class:`~mobilebench.export.calibration.Calibration` inputs, captured again;
- ``lower``: ``to_edge_transform_and_lower`` with the XNNPACK partitioner, or
  ``torch.onnx.export``;
- ``check``: the delegation summary (ExecuTorch), ``onnx.checker`` (ONNX);
- ``serialize``: the artifact's bytes;
- ``parity``: the bytes run in their runtime against eager PyTorch.

The bytes are written into the cache only after parity passes, so a failure at any
stage leaves no file behind. Progress is reported to an :class:`ExportHooks` (the CLI
draws it); the default reports nothing.

Models from outside the zoo: an import path is exported like a zoo model (its cache key
holds the built module's fingerprint instead of a checkpoint hash); a ``.pt2`` program
is lowered as it is (no second ``torch.export``, except to re-capture after int8
quantization) and keyed on the file's SHA-256; a ready ``.pte``/``.onnx`` file is
returned as it is (``ready.py``), with no cache entry.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import UsageError
from mobilebench.export import cache as artifact_cache
from mobilebench.export.calibration import Calibration, HashingInputs, synthetic_calibration
from mobilebench.export.capture import capture, rewrite_for_xnnpack
from mobilebench.export.inputs import fixed_input
from mobilebench.export.options import (
    ARTIFACT_SUFFIX,
    EXECUTORCH_MAX_BATCH,
    INT8_PARITY_INPUTS,
    ONNX_OPSET,
    Artifact,
    ExportOptions,
)
from mobilebench.export.parity import check_parity
from mobilebench.export.ready import ready_artifact
from mobilebench.toolchain import quiet_toolchain
from mobilebench.zoo.resolve import ArtifactFile, ProgramFile, ResolvedModel

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The stages of an export, in order (``quantize`` for int8 only).
STAGES = ("capture", "quantize", "lower", "check", "serialize", "parity")
#: Calibration images per forward pass of an int8 export.
CALIBRATION_BATCH = 16


class ExportHooks:
    """What :func:`export_model` reports while it works; the CLI draws it.

    ``stage`` is one of :data:`STAGES`; ``label`` says what the stage does for this
    export ("lower to XNNPACK"); ``total`` counts the items of a stage that has them
    (calibration inputs), each reported by :meth:`advanced`. The default does nothing.
    """

    def started(self, title: str) -> None:
        """An export begins (a cache miss): ``title`` names the model and target."""

    def stage_started(self, stage: str, label: str, total: int | None = None) -> None:
        """A stage began."""

    def advanced(self, stage: str) -> None:
        """One of a stage's ``total`` items is done."""

    def stage_finished(self, stage: str, seconds: float, *, failed: bool = False) -> None:
        """A stage ended, after ``seconds``; ``failed``: it raised (the export stops)."""


# ------------------------------------------------------------------------ key, record


def plan_calibration(resolved: ResolvedModel, options: ExportOptions) -> Calibration | None:
    """The calibration of an int8 export: the one asked for; without one, synthetic
    inputs for a randomly initialised zoo model (it has no trained activations to fit);
    any other model is refused."""
    if options.dtype != "int8":
        return None
    if options.calibration is not None:
        return options.calibration
    if resolved.random_init:
        return synthetic_calibration(resolved.input_shape)
    raise UsageError(
        f"int8 export of {resolved.name} needs calibration inputs, the images it will see: pass --calibration "
        "(a dataset such as digits, a folder of images, or a number N of random inputs, labelled synthetic)"
    )


def key_material(resolved: ResolvedModel, options: ExportOptions, calibration: Calibration | None) -> dict[str, Any]:
    """Everything the artifact's bytes depend on; cheap (nothing is built or traced)."""
    return {
        "cache_format": artifact_cache.CACHE_FORMAT,
        "model": {
            "kind": resolved.kind,
            "arch": resolved.arch,
            "options": resolved.options,
            "num_classes": resolved.num_classes,
            "input_size": resolved.input_size,
            "weights": resolved.weights_identity(),
        },
        "export": {
            "runtime": options.runtime,
            "dtype": options.dtype,
            "dynamic_batch": options.dynamic_batch,
            "executorch_max_batch": EXECUTORCH_MAX_BATCH if options.dynamic_batch else None,
            "onnx_opset": ONNX_OPSET if options.runtime == "onnx" else None,
            "calibration": calibration.key if calibration else None,
        },
        "versions": artifact_cache.library_versions(),
        "sources": artifact_cache.source_hashes(),
    }


def _model_record(resolved: ResolvedModel) -> dict[str, Any]:
    card = resolved.card
    source = resolved.source if isinstance(resolved, ProgramFile) else None
    return {
        "name": resolved.name,
        "kind": resolved.kind,
        "arch": resolved.arch,
        "card": str(card.path) if card is not None and card.path else None,
        "source": str(source) if source else None,
        "options": resolved.options,
        "num_classes": resolved.num_classes,
        "input_size": resolved.input_size,
        "weights": resolved.weights_label(),
        "checkpoint": str(resolved.checkpoint) if resolved.checkpoint else None,
        **resolved.weights_identity(),
    }


def _artifact(entry: artifact_cache.CacheEntry, provenance: dict[str, Any], *, cached: bool) -> Artifact:
    info = provenance["artifact"]
    return Artifact(
        path=entry.artifact_path,
        sha256=info["sha256"],
        runtime=info["runtime"],
        dtype=info["dtype"],
        input_shape=tuple(info["input_shape"]),
        provenance=provenance,
        cached=cached,
        etrecord_path=entry.etrecord_path if entry.etrecord_path.is_file() else None,
    )


# ------------------------------------------------------------------------ export


def export_model(
    resolved: ResolvedModel,
    options: ExportOptions = ExportOptions(),
    *,
    cache_dir: Path | None = None,
    hooks: ExportHooks | None = None,
) -> Artifact:
    """Export ``resolved`` for ``options.runtime``/``options.dtype``, parity-check, cache.

    ``cache_dir`` is the artifacts folder (default ``paths.cache_dir()/artifacts``). A
    cached artifact with the same key is returned without building the model
    (``Artifact.cached``). Every failure is a :class:`MobilebenchError` and leaves no
    artifact behind. A ready ``.pte``/``.onnx`` is returned as it is: no export, no
    cache, no parity check.
    """
    if isinstance(resolved, ArtifactFile):
        if options.etrecord:
            raise UsageError(
                f"{resolved.name} is a ready artifact: there is no lowering of it to record (ETRecord); "
                "give the model it was exported from (card, registry name, import path or .pt2)"
            )
        return ready_artifact(resolved, options)
    if isinstance(resolved, ProgramFile) and options.dynamic_batch:
        raise UsageError(
            f"{resolved.name} is a .pt2 program: it keeps the input shape it was exported with; drop --dynamic-batch"
        )
    root = artifact_cache.prepare_cache_root(Path(cache_dir) if cache_dir else artifact_cache.default_cache_root())
    calibration = plan_calibration(resolved, options)
    material = key_material(resolved, options, calibration)
    key = artifact_cache.key_of(material)
    entry = artifact_cache.CacheEntry.for_export(
        root,
        name=resolved.name,
        runtime=options.runtime,
        dtype=options.dtype,
        dynamic_batch=options.dynamic_batch,
        suffix=ARTIFACT_SUFFIX[options.runtime],
        key=key,
    )
    if (provenance := entry.lookup()) is not None and (not options.etrecord or entry.etrecord_path.is_file()):
        return _artifact(entry, provenance, cached=True)

    started = time.perf_counter()
    run = _ExportRun(resolved, options, calibration, hooks or ExportHooks())
    data, facts = run.run()
    provenance = {
        "format": artifact_cache.CACHE_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": _model_record(resolved),
        "artifact": {
            "runtime": options.runtime,
            "dtype": options.dtype,
            "input_shape": list(resolved.input_shape),
            "dynamic_batch": options.dynamic_batch,
            "batch_range": _batch_range(options),
        },
        **facts,
        "versions": material["versions"],
        "sources": material["sources"],
        "export_seconds": round(time.perf_counter() - started, 2),
        "stage_seconds": run.seconds,
    }
    return _artifact(entry, entry.commit(data, provenance, etrecord=run.etrecord), cached=False)


def _batch_range(options: ExportOptions) -> list[int | None]:
    if not options.dynamic_batch:
        return [1, 1]
    return [1, EXECUTORCH_MAX_BATCH if options.runtime == "executorch" else None]


class _ExportRun:
    """One export's stages (a cache miss), each timed and reported to the hooks."""

    def __init__(
        self, resolved: ResolvedModel, options: ExportOptions, calibration: Calibration | None, hooks: ExportHooks
    ) -> None:
        self.resolved, self.options, self.calibration, self.hooks = resolved, options, calibration, hooks
        self.seconds: dict[str, float] = {}
        self.etrecord: Any = None  # ExecuTorch's ETRecord of the lowering, when asked for
        # torch.export specialises a batch of 1, so a dynamic batch is traced at 2.
        batch = 2 if options.dynamic_batch else 1
        self.example = fixed_input((batch, *resolved.input_shape[1:]), 0)
        self.max_batch = EXECUTORCH_MAX_BATCH if options.dynamic_batch else None

    @contextlib.contextmanager
    def stage(self, stage: str, label: str, total: int | None = None) -> Iterator[None]:
        self.hooks.stage_started(stage, label, total)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.seconds[stage] = round(time.perf_counter() - start, 3)
            self.hooks.stage_finished(stage, self.seconds[stage], failed=True)
            raise
        self.seconds[stage] = round(time.perf_counter() - start, 3)
        self.hooks.stage_finished(stage, self.seconds[stage])

    def run(self) -> tuple[bytes, dict[str, Any]]:
        """The checked artifact's bytes and what the provenance says about its making."""
        resolved, options = self.resolved, self.options
        self.hooks.started(f"export {resolved.name} -> {options.runtime} {options.dtype}")
        with quiet_toolchain():
            program, model, rewrites = self.capture()
            parity_inputs = _parity_inputs(resolved.input_shape, options)
            reference = _eager(model, parity_inputs)
            calibration = None
            if self.calibration is not None:
                program, calibration = self.quantize(program, model, self.calibration)
            if options.runtime == "onnx":
                data, check = self.onnx(program)
            else:
                data, check = self.executorch(program)
            with self.stage("parity", f"parity with eager ({options.runtime})"):
                parity = check_parity(data, options.runtime, options.dtype, parity_inputs, reference, what=resolved.name)
        parity["input_generator"] = _parity_input_description(options)
        captured = "torch.export.load (.pt2)" if isinstance(resolved, ProgramFile) else "torch.export"
        facts: dict[str, Any] = {
            "graph_rewrites": rewrites,
            "quantization": _QUANTIZATION if options.dtype == "int8" else None,
        }
        if options.runtime == "onnx":
            facts |= {"exporter": f"{captured} + torch.onnx.export(dynamo=True)", "onnx": check}
        else:
            facts |= {"exporter": f"{captured} + executorch.exir.to_edge_transform_and_lower",
                      "partitioner": "XnnpackPartitioner"}
        return data, {
            "export": facts,
            "delegation": check if options.runtime == "executorch" else None,
            "calibration": calibration,
            "parity": parity,
        }

    def capture(self) -> tuple[torch.export.ExportedProgram, nn.Module, dict[str, int]]:
        """The program to lower, the eager model it came from, and the rewrites made.
        A ``.pt2`` is taken as it is (its graph module is the eager reference)."""
        resolved = self.resolved
        if isinstance(resolved, ProgramFile):
            with self.stage("capture", "load .pt2 program"):
                program = resolved.program()
                return program, program.module(), {}
        with self.stage("capture", "build + torch.export"):
            model = resolved.build()
            if self.options.runtime == "executorch":
                program, rewrites = self._capture_for_xnnpack(model, self.example, self.max_batch)
            else:  # 0 = no upper bound on the batch (onnxruntime sizes its buffers per call)
                program, rewrites = self._capture(model, 0 if self.options.dynamic_batch else None), {}
        return program, model, rewrites

    def _capture(
        self, module: nn.Module, max_batch: int | None, example: torch.Tensor | None = None
    ) -> torch.export.ExportedProgram:
        example = self.example if example is None else example
        return capture(module, example, dynamic_batch_max=max_batch, what=self.resolved.name)

    def _capture_for_xnnpack(
        self, model: nn.Module, example: torch.Tensor, max_batch: int | None
    ) -> tuple[torch.export.ExportedProgram, dict[str, int]]:
        """``torch.export`` with the rewrites of :func:`rewrite_for_xnnpack`; the graph is
        traced again after them, so that every node carries fresh shape metadata."""
        program = self._capture(model, max_batch, example)
        graph_module = program.module()
        rewrites = rewrite_for_xnnpack(graph_module)
        if rewrites:
            program = self._capture(graph_module, max_batch, example)
        return program, rewrites

    def quantize(
        self, program: torch.export.ExportedProgram, model: nn.Module, calibration: Calibration
    ) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
        """int8 PT2E, calibrated: the quantized program, captured again at the export's
        batch, and the provenance record of its calibration (with the hash of what was
        fed). Many inputs run in batches of :data:`CALIBRATION_BATCH` on a capture with a
        dynamic batch: the observers cost per forward, not per image, which repays the
        extra capture; a few run one by one on the program, as does a ``.pt2``'s."""
        from mobilebench.export.executorch_lower import quantize_int8

        inputs = HashingInputs(calibration)
        with self.stage("quantize", f"quantize int8 (calibrate on {calibration.label})", total=calibration.count):
            if isinstance(self.resolved, ProgramFile) or calibration.count <= CALIBRATION_BATCH:
                module, batch = program.module(), 1
            else:
                example = fixed_input((2, *self.resolved.input_shape[1:]), 0)
                module = self._capture_for_xnnpack(model, example, CALIBRATION_BATCH)[0].module()
                batch = CALIBRATION_BATCH
            converted = quantize_int8(module, self._batches(inputs, batch))
            quantized = self._capture(converted, self.max_batch)
        record = {
            **calibration.record,
            "synthetic": calibration.synthetic,
            "label": calibration.label,
            "inputs_fed": inputs.count,
            "inputs_sha256": inputs.sha256,
        }
        return quantized, record

    def _batches(self, inputs: Iterable[torch.Tensor], size: int) -> Iterator[torch.Tensor]:
        """``inputs`` (each of batch 1) concatenated into batches of up to ``size``."""
        import torch

        pending: list[torch.Tensor] = []
        for tensor in inputs:
            pending.append(tensor)
            self.hooks.advanced("quantize")
            if len(pending) == size:
                yield torch.cat(pending)
                pending = []
        if pending:
            yield torch.cat(pending)

    def executorch(self, program: torch.export.ExportedProgram) -> tuple[bytes, dict[str, Any]]:
        from mobilebench.export import executorch_lower

        with self.stage("lower", "lower to XNNPACK"):
            edge = executorch_lower.lower_to_xnnpack(program, etrecord=self.options.etrecord)
        with self.stage("check", "check delegation"):
            delegation = executorch_lower.delegation_summary(edge)
        with self.stage("serialize", "serialize .pte"):
            data, self.etrecord = executorch_lower.serialize(edge, etrecord=self.options.etrecord)
        return data, delegation

    def onnx(self, program: torch.export.ExportedProgram) -> tuple[bytes, dict[str, Any]]:
        from mobilebench.export.onnx_export import check_onnx, convert_to_onnx, serialize_onnx

        with self.stage("lower", "convert to ONNX (torch.onnx.export)"):
            proto = convert_to_onnx(program, what=self.resolved.name)
        with self.stage("check", "onnx.checker"):
            facts = check_onnx(proto, what=self.resolved.name)
        with self.stage("serialize", "serialize .onnx"):
            data = serialize_onnx(proto)
        return data, facts


_QUANTIZATION = {
    "flow": "PT2E static (torchao prepare_pt2e/convert_pt2e)",
    "quantizer": "XNNPACKQuantizer, get_symmetric_quantization_config(is_per_channel=True)",
    "weights": "int8 symmetric per-channel",
    "activations": "int8 per-tensor (histogram observer)",
}


def _parity_inputs(input_shape: tuple[int, ...], options: ExportOptions) -> list[torch.Tensor]:
    """Seed 0 (fp32) or seeds 0..7 (int8, for a top-1 agreement rate), batch 1; a dynamic
    batch adds the seed-0 input at batch 2 to check the symbolic dimension."""
    count = INT8_PARITY_INPUTS if options.dtype == "int8" else 1
    inputs = [fixed_input(input_shape, seed) for seed in range(count)]
    if options.dynamic_batch:
        inputs.append(fixed_input((2, *input_shape[1:]), 0))
    return inputs


def _parity_input_description(options: ExportOptions) -> str:
    seeds = f"seeds 0..{INT8_PARITY_INPUTS - 1}" if options.dtype == "int8" else "seed 0"
    extra = " plus seed 0 at batch 2" if options.dynamic_batch else ""
    return f"mobilebench.export.fixed_input {seeds} at batch 1{extra}"


def _eager(model: nn.Module, inputs: list[torch.Tensor]) -> list[Any]:
    import torch

    with torch.no_grad():
        return [model(x).detach().numpy().copy() for x in inputs]
