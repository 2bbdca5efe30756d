"""Does the device compute what this computer computes? (``mobilebench eval --device``)

A few inputs go through the device's runner, one runner call each (``--input``, no
warm-up, one iteration, ``--dump-output``), and output 0 is compared with what
ExecuTorch's runtime on this computer gave for the same .pte and the same input: the
golden outputs of a device-side numeric check, as FAI-PEP does it.

The unit is one input. Its difference is the largest ``|device - host|`` over its
outputs, divided by the host output's scale (its largest absolute value), so logits of
any size compare alike; the check passes when every input is within the tolerance.
XNNPACK picks other kernels on other CPUs, so fp32 sums round differently (about 1e-6
of the scale between x86-64 and arm64, results/README.md); int8 kernels add one
requantisation, where one step of a full-range output is 2/255 of its scale. Top-1
agreement is reported beside it: nearly tied classes may swap within the tolerance.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilebench.bench.hooks import ProgressHooks
from mobilebench.bench.measurement import RunnerRequest
from mobilebench.bench.session import ProfileConfig, ProfileSession
from mobilebench.device import connect
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import Artifact

#: Largest accepted difference relative to the output's scale, per dtype: fp32 leaves
#: room for a thousand times the cross-CPU rounding seen; int8 about four output steps.
DEFAULT_TOLERANCE = {"fp32": 1e-3, "int8": 3e-2}


@dataclass(frozen=True)
class Agreement:
    """How the device's outputs compare with the host's on ``inputs`` inputs.

    ``max_rel_diff``: the largest per-input difference (see the module docstring; inf
    when the device gave a non-finite output). ``top1_same``: inputs whose top-1 class
    is the host's. ``device_model``/``abi``/``runner``: what computed the outputs.
    """

    device: str
    inputs: int
    max_rel_diff: float
    top1_same: int
    tolerance: float
    device_model: str | None
    abi: str | None
    runner: str
    notes: tuple[str, ...] = ()

    @property
    def agrees(self) -> bool:
        return self.max_rel_diff <= self.tolerance


def relative_difference(device: np.ndarray, host: np.ndarray) -> float:
    """``max |device - host| / max |host|`` over one input's outputs (inf: non-finite
    device values; an all-zero host output counts absolute differences)."""
    device, host = np.ravel(device), np.ravel(host)
    if device.shape != host.shape:
        raise MobilebenchError(f"the device's output has {device.size} values, this computer's {host.size}")
    if not np.isfinite(device).all():
        return math.inf
    scale = float(np.abs(host).max()) or 1.0
    return float(np.abs(device.astype(np.float64) - host).max()) / scale


def check_on_device(
    config: ProfileConfig,
    artifact: Artifact,
    inputs: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    *,
    tolerance: float | None = None,
    hooks: ProgressHooks | None = None,
) -> Agreement:
    """Run ``artifact`` on ``config.device`` for each of ``inputs`` (float32 arrays of
    the artifact's input shape) and compare output 0 with ``expected`` (the host's)."""
    if artifact.runtime != "executorch":
        raise UsageError("the on-device check runs ExecuTorch programs: use --runtime executorch")
    if not inputs or len(inputs) != len(expected):
        raise UsageError(f"{len(inputs)} inputs and {len(expected)} expected outputs: need as many of each, at least one")
    tolerance = DEFAULT_TOLERANCE[artifact.dtype] if tolerance is None else tolerance
    if not 0 <= tolerance < math.inf:
        raise UsageError(f"the tolerance must be a finite number >= 0, got {tolerance}")
    hooks = hooks or ProgressHooks()
    session = ProfileSession(config, None, hooks=hooks)
    name = session.profile.name
    diffs, top1_same = [], 0
    hooks.stage(f"connecting to {name} ({session.profile.endpoint})")
    with (
        connect(session.profile, timeout_s=config.connect_timeout_s) as device,
        tempfile.TemporaryDirectory(prefix="mobilebench-check-") as folder,
    ):
        state = session.read_state(device)
        ledger = session.ledger(state)
        remote_model = session.push_artifact(device, ledger, artifact)
        binary = session.push_runner(device, ledger)
        remote = f"{session.profile.workdir.rstrip('/')}/check"
        adapter = session.runner.adapter
        device.run(["mkdir", "-p", "--", remote], timeout_s=30, idempotent=True)
        try:
            for k, (x, host) in enumerate(zip(inputs, expected)):
                hooks.stage(f"checking input {k + 1} of {len(inputs)} on {name}")
                # A name per input: an output the runner did not write cannot pass for one.
                request = RunnerRequest(
                    model_path=remote_model, warmup=0, iterations=1,
                    input_file=f"{remote}/input-{k}.f32", dump_output=f"{remote}/output-{k}.f32",
                )  # fmt: skip
                local_input, local_output = Path(folder, f"input-{k}.f32"), Path(folder, f"output-{k}.f32")
                np.ascontiguousarray(x, dtype="<f4").tofile(local_input)
                device.push(local_input, request.input_file)
                argv = session.pinned(adapter.argv(binary, request))
                session.run_runner(device, argv, state, total=1, parse=lambda out, r=request: adapter.parse(out, request=r))
                device.pull(request.dump_output, local_output)
                out = np.fromfile(local_output, dtype="<f4")
                diffs.append(relative_difference(out, host))
                top1_same += int(np.argmax(out) == np.argmax(host)) if np.isfinite(out).all() else 0
        finally:
            with contextlib.suppress(MobilebenchError):  # the error that got us here matters more
                device.run(["rm", "-rf", "--", remote], timeout_s=30, idempotent=True)
    notes = []
    if all(not np.any(host) for host in expected):
        notes.append("this computer's outputs are all zero (random weights in int8?): the check compares little")
    return Agreement(
        device=name,
        inputs=len(diffs),
        max_rel_diff=max(diffs),
        top1_same=top1_same,
        tolerance=tolerance,
        device_model=state.model,
        abi=state.abi or session.runner.abi,
        runner=session.runner.build or session.runner.adapter.name,
        notes=tuple(notes),
    )
