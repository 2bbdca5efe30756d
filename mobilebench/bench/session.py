"""The profile session: from a model name to a stored latency number a paper can defend.

One :class:`ProfileSession` drives one device. For every (model, repeat) pair, in
interleaved order (A B A B ...) so that drift hits every model alike, it:

1. exports the model (cached; :func:`mobilebench.export.export_model`), once per model;
2. inserts a ``running`` row in the results database;
3. reads the device state (identity, governor, frequency, temperatures);
4. optionally waits until the pinned core is cooler than ``cooldown_c``;
5. pushes the artifact and the runner when the device's copy differs (hash);
6. runs the runner pinned with ``taskset`` to one core, one thread, warm-up then timed
   iterations (fixed, or adaptive until the median's confidence interval is tight);
7. reads the device state again, parses the runner's output, computes statistics and
   stores everything in one transaction.

Any failure after step 2 is stored as a ``failed`` run with its one-line error and
re-raised; earlier runs stay as they were.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from mobilebench.bench.runners import RunnerAdapter, RunnerOutput, RunnerRequest, get_adapter
from mobilebench.bench.stats import LatencyStats
from mobilebench.bench.stats import warnings as stats_warnings
from mobilebench.device import Device, DeviceProfile, connect
from mobilebench.device.state import DeviceState
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import Artifact, ExportOptions, export_model
from mobilebench.paths import project_root
from mobilebench.store import RunMeta, RunRecord, ResultsStore
from mobilebench.zoo.resolve import ResolvedModel

Runtime = Literal["executorch", "onnx"]
DType = Literal["fp32", "int8"]

#: Where ``make runner`` (host) and ``android_app/build_android.sh`` put the native runner.
NATIVE_RUNNER_BUILDS = {
    "host": project_root() / "android_app" / "build" / "host" / "mobilebench_runner",
    "arm64-v8a": project_root() / "android_app" / "build" / "android-arm64-v8a" / "mobilebench_runner",
}

#: Default runner per runtime when a profile names none.
DEFAULT_RUNNERS = {"executorch": "mobilebench_runner", "onnx": "ort_python"}


@dataclass(frozen=True)
class ProfileConfig:
    """How to measure. Times are seconds, temperatures degrees C.

    ``iterations`` timed iterations follow ``warmup`` untimed ones; with
    ``target_rel_ci`` the runner continues until the 95 % confidence interval of the
    median is within ±target_rel_ci of it, up to ``max_iterations``. ``cpu`` overrides
    the profile's pinned core. ``cooldown_c`` waits (polling every ``cooldown_poll_s``)
    until the pinned core's thermal zone reads below it, failing after
    ``cooldown_timeout_s``. ``runner_timeout_s`` bounds one runner invocation.
    """

    device: str
    address: str | None = None
    runtime: Runtime = "executorch"
    dtype: DType = "fp32"
    warmup: int = 10
    iterations: int = 50
    target_rel_ci: float | None = None
    max_iterations: int | None = None
    cpu: int | None = None
    cooldown_c: float | None = None
    cooldown_timeout_s: float = 300.0
    cooldown_poll_s: float = 5.0
    repeat: int = 1
    runner_timeout_s: float = 600.0
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.runtime not in ("executorch", "onnx"):
            raise UsageError(f"unknown runtime {self.runtime!r}; use executorch or onnx")
        if self.dtype not in ("fp32", "int8"):
            raise UsageError(f"unknown dtype {self.dtype!r}; use fp32 or int8")
        if self.runtime == "onnx" and self.dtype != "fp32":
            raise UsageError("int8 is available for the executorch runtime only")
        if self.repeat < 1:
            raise UsageError(f"--repeat must be >= 1, got {self.repeat}")
        if self.cooldown_timeout_s <= 0 or self.runner_timeout_s <= 0:
            raise UsageError("timeouts must be positive")
        # Validates warm-up/iterations/CI target the same way the runners will.
        self.request("model")

    def request(self, model_path: str) -> RunnerRequest:
        return RunnerRequest(
            model_path=model_path,
            warmup=self.warmup,
            iterations=self.iterations,
            threads=1,
            target_rel_ci=self.target_rel_ci,
            max_iterations=self.max_iterations,
        )


@dataclass(frozen=True)
class RunnerPlan:
    """Which runner measures, and where its binary comes from and lives on the device.

    ``local_binary`` is pushed to ``device_binary`` before the run; None means the
    binary is already there (a stock tool installed on the phone, or the Python
    interpreter for the ``ort_python`` runner).
    """

    adapter: RunnerAdapter
    device_binary: str
    local_binary: Path | None


@dataclass
class ProfileOutcome:
    """One finished (or failed) run as stored."""

    run_id: int
    model: str
    record: RunRecord
    notes: list[str] = field(default_factory=list)


class ProgressHooks:
    """What the session reports while it works; the CLI draws rich progress from it.

    The default does nothing, so library users and tests get a quiet session.
    """

    def stage(self, text: str) -> None:
        """A new step started (connecting, reading state, cooling down, running)."""

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        """Bytes pushed so far for ``what``."""

    def iteration(self, done: int, total: int | None) -> None:
        """Runner iterations finished so far (warm-up included)."""


def plan_runner(profile: DeviceProfile, runtime: str) -> RunnerPlan:
    """Pick the runner for ``runtime`` on ``profile`` and locate its binary.

    A profile's ``runners`` table maps a runtime to a runner name
    (``mobilebench_runner``, ``executor_runner``, ``onnxruntime_perf_test``,
    ``ort_python``), optionally ``name:PATH`` to use a specific binary: a local file
    to push, or an absolute path already on the device.
    """
    spec = profile.runners.get(runtime) or DEFAULT_RUNNERS[runtime]
    name, _, path = spec.partition(":")
    adapter = get_adapter(name)
    if adapter.runtime != runtime:
        raise UsageError(f"device {profile.name!r}: runner {name!r} runs {adapter.runtime} models, not {runtime}")
    bin_dir = f"{profile.workdir.rstrip('/')}/bin"
    if name == "ort_python":
        if profile.transport != "local" and not profile.emulated:
            raise UsageError(
                f"device {profile.name!r}: the ort_python runner needs this computer's Python; "
                "use onnxruntime_perf_test on a phone"
            )
        # The emulator's sandbox sees this computer's filesystem read-only, so the same
        # interpreter runs there too.
        return RunnerPlan(adapter=adapter, device_binary=sys.executable, local_binary=None)
    if path:
        local = Path(path).expanduser()
        if local.is_file():
            return RunnerPlan(adapter=adapter, device_binary=f"{bin_dir}/{name}", local_binary=local)
        if path.startswith("/") and profile.transport != "local":
            return RunnerPlan(adapter=adapter, device_binary=path, local_binary=None)
        raise UsageError(f"device {profile.name!r}: runner binary {path} does not exist")
    if name != "mobilebench_runner":
        raise UsageError(
            f"device {profile.name!r}: say where {name} is, e.g. runners.{runtime} = \"{name}:/path/to/{name}\""
        )
    build = "arm64-v8a" if profile.transport != "local" and not profile.emulated else "host"
    local = NATIVE_RUNNER_BUILDS[build]
    if not local.is_file():
        hint = "make runner" if build == "host" else "android_app/build_android.sh (see android_app/README.md)"
        raise MobilebenchError(f"the {build} build of mobilebench_runner is missing at {local}; build it with {hint}")
    return RunnerPlan(adapter=adapter, device_binary=f"{bin_dir}/{name}", local_binary=local)


def taskset_mask(cpu: int) -> str:
    """The hexadecimal affinity mask taskset takes for one CPU (cpu7 -> ``80``)."""
    return format(1 << cpu, "x")


def _state_for_stats(state: DeviceState | None) -> dict:
    if state is None:
        return {}
    return {"freq_khz": state.cur_freq_khz, "temp_c": state.cpu_temp_c}


class ProfileSession:
    """Profiles models on one device and stores every run (see the module docstring)."""

    def __init__(
        self,
        config: ProfileConfig,
        store: ResultsStore,
        *,
        hooks: ProgressHooks | None = None,
        export: Callable[[ResolvedModel, ExportOptions], Artifact] | None = None,
    ) -> None:
        from mobilebench.device import get_profile

        self.config = config
        self.store = store
        self.hooks = hooks or ProgressHooks()
        self.profile = get_profile(config.device, address=config.address)
        self.cpu = config.cpu if config.cpu is not None else self.profile.cpus[0]
        if self.cpu < 0:
            raise UsageError(f"--cpu must be >= 0, got {self.cpu}")
        self.runner = plan_runner(self.profile, config.runtime)
        self._export = export or (lambda resolved, options: export_model(resolved, options))
        self._pushed: set[str] = set()

    # -- the whole job ----------------------------------------------------------------

    def run(self, models: Sequence[ResolvedModel]) -> list[ProfileOutcome]:
        """Profile every model ``repeat`` times, interleaved (A B A B ...).

        Stops at the first failure: that run is stored as failed and its error raised,
        so the caller exits non-zero; the runs before it are already stored.
        """
        if not models:
            raise UsageError("no models to profile")
        options = ExportOptions(runtime=self.config.runtime, dtype=self.config.dtype)
        artifacts = []
        for resolved in models:
            self.hooks.stage(f"exporting {resolved.name} ({self.config.runtime} {self.config.dtype})")
            artifacts.append(self._export(resolved, options))
        outcomes: list[ProfileOutcome] = []
        self.hooks.stage(f"connecting to {self.profile.name} ({self.profile.endpoint})")
        with connect(self.profile, timeout_s=self.config.connect_timeout_s) as device:
            for _ in range(self.config.repeat):
                for resolved, artifact in zip(models, artifacts):
                    outcomes.append(self.profile_one(device, resolved, artifact))
        return outcomes

    # -- one run ----------------------------------------------------------------------

    def profile_one(self, device: Device, resolved: ResolvedModel, artifact: Artifact) -> ProfileOutcome:
        meta = RunMeta(
            model=resolved.name,
            arch=resolved.arch,
            checkpoint_sha256=resolved.checkpoint_sha256,
            artifact_sha256=artifact.sha256,
            artifact_path=str(artifact.path),
            runtime=self.config.runtime,
            backend="xnnpack" if self.config.runtime == "executorch" else "cpu",
            dtype=self.config.dtype,
            input_shape=artifact.input_shape,
            device_profile=self.profile.name,
            emulated=self.profile.emulated,
            device_serial=self.profile.serial or self.profile.address,
            cpu=self.cpu,
            threads=1,
            runner_name=self.runner.adapter.name,
            warmup=self.config.warmup,
            iterations=self.config.iterations,
            extra={
                "driver_host": socket.gethostname(),
                "random_init": resolved.checkpoint_sha256 is None,
                "target_rel_ci": self.config.target_rel_ci,
                "max_iterations": self.config.max_iterations,
            },
        )
        run_id = self.store.start_run(meta)
        try:
            before = self._read_state(device)
            meta = self._with_state(meta, before, None)
            before = self._cool_down(device, before)
            meta = self._with_state(meta, before, None)
            remote_model = self._push(device, artifact.path, f"models/{artifact.sha256[:16]}{artifact.path.suffix}", 0o644)
            binary = self._push_runner(device)
            output = self._measure(device, binary, remote_model)
            after = self._read_state(device)
            stats = output.stats()
            notes = list(output.notes) + stats_warnings(stats, _state_for_stats(before), _state_for_stats(after))
            meta = replace(
                self._with_state(meta, before, after),
                runner_version=output.runner_version,
                runtime_version=output.runtime_version,
                warnings=tuple(notes),
            )
            self.store.complete_run(run_id, meta, stats, output.samples)
        except MobilebenchError as exc:
            self.store.fail_run(run_id, str(exc), meta)
            raise
        except BaseException as exc:
            # A bug or Ctrl-C: the row must not stay 'running' (it is not a result).
            self.store.fail_run(run_id, f"{type(exc).__name__}: {exc}", meta)
            raise
        record = self.store.get_run(run_id)
        assert record is not None
        return ProfileOutcome(run_id=run_id, model=resolved.name, record=record, notes=notes)

    def _read_state(self, device: Device) -> DeviceState:
        self.hooks.stage(f"reading {self.profile.name} state")
        state = device.read_state(self.cpu)
        expected = self.profile.expected_model
        if expected and state.model and state.model != expected:
            raise MobilebenchError(
                f"device {self.profile.name!r} reports model {state.model!r}, the profile expects {expected!r}; "
                "wrong phone attached?"
            )
        return state

    @staticmethod
    def _with_state(meta: RunMeta, before: DeviceState, after: DeviceState | None) -> RunMeta:
        return replace(
            meta,
            emulated=meta.emulated or before.emulated,
            device_model=before.model,
            device_board=before.board,
            android_version=before.android_version,
            fingerprint=before.fingerprint,
            governor=before.governor,
            freq_khz_before=before.cur_freq_khz,
            max_freq_khz=before.max_freq_khz,
            temp_c_before=before.cpu_temp_c,
            state_before=before.to_dict(),
            freq_khz_after=after.cur_freq_khz if after else None,
            temp_c_after=after.cpu_temp_c if after else None,
            state_after=after.to_dict() if after else None,
        )

    def _cool_down(self, device: Device, state: DeviceState) -> DeviceState:
        threshold = self.config.cooldown_c
        if threshold is None:
            return state
        if state.cpu_temp_c is None:
            raise MobilebenchError(
                f"device {self.profile.name!r}: cannot cool down to {threshold:g} C, no thermal zone for cpu{self.cpu} "
                "(set thermal_zone in devices.toml)"
            )
        deadline = time.monotonic() + self.config.cooldown_timeout_s
        while state.cpu_temp_c is not None and state.cpu_temp_c >= threshold:
            if time.monotonic() >= deadline:
                raise MobilebenchError(
                    f"device {self.profile.name!r} stayed at {state.cpu_temp_c:.1f} C, above the {threshold:g} C "
                    f"cool-down threshold, for {self.config.cooldown_timeout_s:g} s; let it cool or raise --cooldown-timeout"
                )
            self.hooks.stage(f"cooling down: {state.cpu_temp_c:.1f} C -> below {threshold:g} C")
            time.sleep(min(self.config.cooldown_poll_s, max(0.0, deadline - time.monotonic())))
            state = device.read_state(self.cpu)
        return state

    def _push(self, device: Device, local: Path, relative: str, mode: int) -> str:
        remote = f"{self.profile.workdir.rstrip('/')}/{relative}"
        if remote not in self._pushed:
            self.hooks.stage(f"pushing {local.name}")
            device.push_if_changed(
                local, remote, mode=mode, progress=lambda done, total: self.hooks.transfer(local.name, done, total)
            )
            self._pushed.add(remote)
        return remote

    def _push_runner(self, device: Device) -> str:
        plan = self.runner
        if plan.local_binary is None:
            return plan.device_binary
        relative = plan.device_binary[len(self.profile.workdir.rstrip("/")) + 1 :]
        return self._push(device, plan.local_binary, relative, 0o755)

    def _measure(self, device: Device, binary: str, remote_model: str) -> RunnerOutput:
        request = self.config.request(remote_model)
        argv = ["taskset", taskset_mask(self.cpu), *self.runner.adapter.argv(binary, request)]
        total = request.warmup + request.iterations
        self.hooks.stage(f"running {self.runner.adapter.name} on cpu{self.cpu}")
        self.hooks.iteration(0, None if request.target_rel_ci else total)
        result = device.run(argv, timeout_s=self.config.runner_timeout_s)
        if result.exit_code != 0:
            # The runner's own error line (JSON) is the best explanation; fall back to
            # the exit status (139 = segfault, 137 = killed).
            try:
                self.runner.adapter.parse(result.stdout, request=request)
            except MobilebenchError as exc:
                raise MobilebenchError(f"runner exited with status {result.exit_code}: {exc}") from None
            raise MobilebenchError(f"runner exited with status {result.exit_code}")
        output = self.runner.adapter.parse(result.stdout, request=request)
        self.hooks.iteration(len(output.samples), len(output.samples))
        return output
