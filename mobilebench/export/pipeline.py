"""``export_model``: a resolved model in, a parity-checked, cached artifact out.

Steps (shown as a rich progress list on stderr): cache lookup (no model is built for
it), build, capture (``torch.export``), [int8: quantize + calibrate], lower, serialize,
parity. The artifact is written under a temp name and only renamed into the cache
after parity passes; a failure at any step leaves no file behind (see ``cache.py``).

Models from outside the zoo (``ResolvedModel.kind``): an import path is exported like a
zoo model (its cache key holds the built module's fingerprint instead of a checkpoint
hash); a ``.pt2`` program is loaded and lowered as it is (no second ``torch.export``,
except to re-capture after int8 quantization) and keyed on the file's SHA-256; a ready
``.pte``/``.onnx`` file is returned as it is (``ready.py``), with no cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import UsageError
from mobilebench.export import cache as artifact_cache
from mobilebench.export.capture import capture, quiet_toolchain, rewrite_for_xnnpack
from mobilebench.export.inputs import (
    CROP_FRACTION,
    find_images,
    fixed_input,
    load_image,
    synthetic_calibration,
)
from mobilebench.export.options import (
    ARTIFACT_SUFFIX,
    CALIBRATION_SEED_BASE,
    EXECUTORCH_MAX_BATCH,
    INT8_PARITY_INPUTS,
    MAX_CALIBRATION_IMAGES,
    ONNX_OPSET,
    SYNTHETIC_CALIBRATION_INPUTS,
    Artifact,
    ExportOptions,
)
from mobilebench.export.parity import check_parity
from mobilebench.export.ready import ready_artifact

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mobilebench.zoo.resolve import ResolvedModel


# --------------------------------------------------------------------------- progress


class Steps:
    """Named, timed steps, drawn as a rich progress list on stderr when ``enabled``."""

    def __init__(self, title: str, *, enabled: bool) -> None:
        self.title = title
        self.enabled = enabled
        self.seconds: dict[str, float] = {}
        self._progress: Any = None

    def __enter__(self) -> Steps:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}", markup=False),
                TextColumn("{task.fields[detail]}", style="dim", markup=False),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),  # bound now: quiet_toolchain swaps sys.stderr
            )
            self._progress.start()
            self._progress.console.print(self.title, style="bold", markup=False, highlight=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextlib.contextmanager
    def step(self, label: str, total: int | None = None) -> Iterator[Callable[[], None]]:
        """Time a step; yields ``advance()`` for steps made of ``total`` items."""
        done = 0
        task = None
        if self._progress is not None:
            task = self._progress.add_task(label, total=total, detail=f"0/{total}" if total else "")

        def advance() -> None:
            nonlocal done
            done += 1
            if task is not None:
                self._progress.update(task, advance=1, detail=f"{done}/{total}" if total else "")

        start = time.perf_counter()
        try:
            yield advance
        except BaseException:
            if task is not None:
                self._progress.remove_task(task)
                self._progress.console.print(f"✗ {label}", style="red", markup=False, highlight=False)
            raise
        finally:
            self.seconds[label] = round(time.perf_counter() - start, 3)
        if task is not None:
            self._progress.update(task, total=total or 1, completed=total or 1)


# ------------------------------------------------------------------------ calibration


@dataclass(frozen=True)
class CalibrationPlan:
    """Where int8 calibration inputs come from: ``files`` (images) or synthetic inputs.

    ``key`` identifies the calibration content for the cache (image bytes, not paths);
    ``record`` is what the provenance says about it.
    """

    files: tuple[Path, ...]
    count: int
    key: dict[str, Any]
    record: dict[str, Any]

    def inputs(self, input_shape: tuple[int, ...]) -> Iterator[torch.Tensor]:
        if self.files:
            for path in self.files:
                yield load_image(path, height=input_shape[-2], width=input_shape[-1])
        else:
            yield from synthetic_calibration(input_shape, self.count, CALIBRATION_SEED_BASE)


def plan_calibration(options: ExportOptions, input_shape: tuple[int, ...]) -> CalibrationPlan | None:
    """How an int8 export of a model taking ``input_shape`` (NCHW) is calibrated."""
    if options.dtype != "int8":
        return None
    if options.calibration_dir is None:
        last = CALIBRATION_SEED_BASE + SYNTHETIC_CALIBRATION_INPUTS - 1
        generator = f"mobilebench.export.fixed_input seeds {CALIBRATION_SEED_BASE}..{last} (uniform [-1, 1))"
        record = {"source": "synthetic", "inputs": SYNTHETIC_CALIBRATION_INPUTS, "generator": generator}
        return CalibrationPlan((), SYNTHETIC_CALIBRATION_INPUTS, dict(record), record)
    if len(input_shape) != 4 or input_shape[1] != 3:
        raise UsageError(
            f"--calibration-dir needs a model taking RGB images (N x 3 x H x W), this one takes "
            f"{'x'.join(map(str, input_shape))}; leave it out to calibrate on synthetic inputs"
        )
    height, width = input_shape[-2:]
    folder = find_images(options.calibration_dir, MAX_CALIBRATION_IMAGES)
    digest = hashlib.sha256()
    for path in folder.files:
        digest.update(path.relative_to(folder.root).as_posix().encode() + b"\0")
        digest.update(artifact_cache.file_sha256(path).encode())
    preprocessing = (
        f"scaled to cover {height}x{width} / {CROP_FRACTION}, center crop {height}x{width}, ImageNet mean/std"
    )
    key = {
        "source": "images",
        "images": len(folder.files),
        "content_sha256": digest.hexdigest(),
        "preprocessing": preprocessing,
    }
    record = {**key, "dir": str(folder.root.resolve()), "images_found": folder.total_found}
    return CalibrationPlan(folder.files, len(folder.files), key, record)


# ------------------------------------------------------------------------ key, record


def _weights(resolved: ResolvedModel) -> dict[str, Any]:
    """Checkpoint hash or init seed; outside the zoo, the file's hash (.pt2) or the
    built module's fingerprint (import path: weights, structure and source hashes)."""
    return resolved.weights_identity()


def _weights_label(resolved: ResolvedModel) -> str:
    if resolved.kind == "program":
        return ".pt2 program"
    if resolved.kind == "import" and resolved.checkpoint is None:
        return f"built by {resolved.arch}"
    return "checkpoint" if resolved.checkpoint is not None else "random-init"


def key_material(
    resolved: ResolvedModel, options: ExportOptions, calibration: CalibrationPlan | None
) -> dict[str, Any]:
    """Everything the artifact's bytes depend on; cheap (nothing is built or traced)."""
    return {
        "cache_format": artifact_cache.CACHE_FORMAT,
        "model": {
            "kind": getattr(resolved, "kind", "zoo"),
            "arch": resolved.arch,
            "options": resolved.options,
            "num_classes": resolved.num_classes,
            "input_size": resolved.input_size,
            "weights": _weights(resolved),
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
    return {
        "name": resolved.name,
        "kind": resolved.kind,
        "arch": resolved.arch,
        "card": str(card.path) if card is not None and getattr(card, "path", None) else None,
        "source": str(resolved.source) if resolved.source else None,
        "options": resolved.options,
        "num_classes": resolved.num_classes,
        "input_size": resolved.input_size,
        "weights": _weights_label(resolved),
        "checkpoint": str(resolved.checkpoint) if resolved.checkpoint else None,
        **_weights(resolved),
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
    )


# ------------------------------------------------------------------------ export


def export_model(
    resolved: ResolvedModel,
    options: ExportOptions = ExportOptions(),
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Artifact:
    """Export ``resolved`` for ``options.runtime``/``options.dtype``, parity-check, cache.

    ``cache_dir`` is the artifacts folder (default ``paths.cache_dir()/artifacts``). A
    cached artifact with the same key is returned without building the model
    (``Artifact.cached``). Every failure is a :class:`MobilebenchError` and leaves no
    artifact behind. A ready ``.pte``/``.onnx`` (kind ``"artifact"``) is returned as it
    is: no export, no cache, no parity check.
    """
    if resolved.kind == "artifact":
        return ready_artifact(resolved, options)
    if resolved.kind == "program" and options.dynamic_batch:
        raise UsageError(
            f"{resolved.name} is a .pt2 program: it keeps the input shape it was exported with; drop --dynamic-batch"
        )
    root = artifact_cache.prepare_cache_root(Path(cache_dir) if cache_dir else artifact_cache.default_cache_root())
    calibration = plan_calibration(options, tuple(resolved.input_shape))
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
    if (provenance := entry.lookup()) is not None:
        return _artifact(entry, provenance, cached=True)

    title = f"export {resolved.name} -> {options.runtime} {options.dtype}"
    started = time.perf_counter()
    with Steps(title, enabled=progress) as steps, quiet_toolchain():
        with steps.step("load .pt2 program" if resolved.kind == "program" else "build model"):
            # A program is lowered as it is; its graph module gives the eager reference.
            program = resolved.program() if resolved.kind == "program" else None
            model = program.module() if program is not None else resolved.build()
            parity_inputs = _parity_inputs(resolved.input_shape, options)
            reference = _eager(model, parity_inputs)
        partial = entry.new_partial()
        try:
            if options.runtime == "onnx":
                facts = _export_onnx(model, resolved, options, partial, steps, program)
            else:
                facts = _export_executorch(model, resolved, options, calibration, partial, steps, program)
            with steps.step("parity check"):
                parity = check_parity(partial, options.runtime, options.dtype, parity_inputs, reference)
            parity["input_generator"] = _parity_input_description(options)
            delegation = facts.pop("delegation", None)
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
                "export": facts,
                "delegation": delegation,
                "calibration": calibration.record if calibration else None,
                "parity": parity,
                "versions": material["versions"],
                "sources": material["sources"],
                "export_seconds": round(time.perf_counter() - started, 2),
                "step_seconds": steps.seconds,
            }
            provenance = entry.commit(partial, provenance)
        except BaseException:
            entry.discard(partial)
            raise
    return _artifact(entry, provenance, cached=False)


def _batch_range(options: ExportOptions) -> list[int | None]:
    if not options.dynamic_batch:
        return [1, 1]
    return [1, EXECUTORCH_MAX_BATCH if options.runtime == "executorch" else None]


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


def _capture_example(resolved: ResolvedModel, options: ExportOptions) -> torch.Tensor:
    # torch.export specialises a batch of 1, so a dynamic batch is traced at 2.
    batch = 2 if options.dynamic_batch else 1
    return fixed_input((batch, *resolved.input_shape[1:]), 0)


def _export_onnx(
    model: nn.Module,
    resolved: ResolvedModel,
    options: ExportOptions,
    partial: Path,
    steps: Steps,
    program: torch.export.ExportedProgram | None = None,
) -> dict[str, Any]:
    """``program``: a loaded ``.pt2`` to convert as it is (else ``model`` is captured)."""
    from mobilebench.export.onnx_export import export_onnx

    exporter = "torch.export.load (.pt2) + torch.onnx.export(dynamo=True)"
    if program is None:
        exporter = "torch.export + torch.onnx.export(dynamo=True)"
        example = _capture_example(resolved, options)
        with steps.step("capture (torch.export)"):
            # 0 = no upper bound: onnxruntime sizes its buffers per call.
            program = capture(
                model, example, dynamic_batch_max=0 if options.dynamic_batch else None, what=resolved.name
            )
    with steps.step("export ONNX + onnx.checker"):
        onnx_facts = export_onnx(program, partial, what=resolved.name)
    return {"exporter": exporter, "onnx": onnx_facts}


def _export_executorch(
    model: nn.Module,
    resolved: ResolvedModel,
    options: ExportOptions,
    calibration: CalibrationPlan | None,
    partial: Path,
    steps: Steps,
    given: torch.export.ExportedProgram | None = None,
) -> dict[str, Any]:
    """``given``: a loaded ``.pt2`` program, lowered as it is (no capture, no graph
    rewrites: those would mean a second ``torch.export``; int8 still re-captures the
    quantized graph, as for every model)."""
    from mobilebench.export import executorch_lower

    example = _capture_example(resolved, options)
    max_batch = EXECUTORCH_MAX_BATCH if options.dynamic_batch else None

    def recapture(module: nn.Module) -> torch.export.ExportedProgram:
        return capture(module, example, dynamic_batch_max=max_batch, what=resolved.name)

    if given is not None:
        program, rewrites = given, {}
    else:
        with steps.step("capture (torch.export)"):
            program = recapture(model)
            graph_module = program.module()
            rewrites = rewrite_for_xnnpack(graph_module)
            if rewrites:  # re-trace so every node carries fresh shape metadata
                program = recapture(graph_module)
    if calibration is not None:
        what = "images" if calibration.files else "synthetic inputs"
        label = f"quantize int8 (calibrate on {calibration.count} {what})"
        with steps.step(label, total=calibration.count) as advance:
            converted = executorch_lower.quantize_int8(
                program.module(), calibration.inputs(resolved.input_shape), on_batch=advance
            )
            program = recapture(converted)
    with steps.step("lower to XNNPACK"):
        edge = executorch_lower.lower_to_xnnpack(program)
        delegation = executorch_lower.delegation_summary(edge)
    with steps.step("serialize .pte"):
        partial.write_bytes(executorch_lower.serialize(edge))
    facts: dict[str, Any] = {
        "exporter": ("torch.export.load (.pt2)" if given is not None else "torch.export")
        + " + executorch.exir.to_edge_transform_and_lower",
        "partitioner": "XnnpackPartitioner",
        "graph_rewrites": rewrites,
        "delegation": delegation.as_dict(),
    }
    if options.dtype == "int8":
        facts["quantization"] = {
            "flow": "PT2E static (torchao prepare_pt2e/convert_pt2e)",
            "quantizer": "XNNPACKQuantizer, get_symmetric_quantization_config(is_per_channel=True)",
            "weights": "int8 symmetric per-channel",
            "activations": "int8 per-tensor (histogram observer)",
        }
    return facts
