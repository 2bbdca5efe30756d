"""The profile session: from a model name to a stored latency number a paper can defend.

One :class:`ProfileSession` drives one device. It exports every model first (cached;
:func:`mobilebench.export.export_model`), connects once, and then, for every
(repeat, model) pair in interleaved order (A B A B ...) so that drift hits every model
alike:

1. inserts a ``running`` row in the results database;
2. reads the device state (identity, governor, frequency, temperatures);
3. optionally waits until the pinned core is cooler than ``cooldown_c``;
4. pushes the artifact and the runner when the device's copy differs (hash; a device
   file whose hash was verified before and whose size and mtime have not changed since
   is not hashed again, see :mod:`mobilebench.bench.pushed_files`);
5. runs the runner pinned with ``taskset`` to one core, one thread, warm-up then timed
   iterations (fixed, or adaptive until the median's confidence interval is tight),
   reporting iterations live from the runner's output;
6. reads the device state again, parses the runner's output, computes statistics and
   stores everything (metadata, statistics, samples) in one transaction.

Any failure after step 1 is stored as a ``failed`` run with its one-line error and
raised (naming the run); the runs before it stay as they were and are in
:attr:`ProfileSession.outcomes`. A process killed outright leaves the ``running`` row,
which the next profile marks ``aborted`` (:meth:`ResultsStore.mark_stale_runs_aborted`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from mobilebench.bench.hooks import ProgressHooks
from mobilebench.bench.measurement import Measurement
from mobilebench.bench.per_op import OpProfile, profile_ops
from mobilebench.bench.pushed_files import PushLedger
from mobilebench.bench.runner_builds import plan_runner, refused_for_its_abi, wrong_abi_message
from mobilebench.bench.runners import RunnerOutput
from mobilebench.bench.stats import warnings as stats_warnings
from mobilebench.device import Device, DeviceProfile, connect, get_profile
from mobilebench.device.cache import trim_model_cache
from mobilebench.device.state import DeviceState
from mobilebench.errors import MobilebenchError, Terminated, UsageError
from mobilebench.export import Artifact, ExportHooks, ExportOptions, export_model
from mobilebench.files import file_sha256
from mobilebench.flops import count_flops
from mobilebench.records import LatencyStats, RunMeta, RunRecord
from mobilebench.store import ResultsStore
from mobilebench.zoo.resolve import ResolvedModel

#: A pinned core this warm (degrees C) when a run starts without a cool-down gets a
#: warning: phones throttle from the low 40s, and react-native-executorch waits for 37 C.
WARM_START_C = 40.0

#: Governors that hold the frequency where the user put it: a change under them is real.
#: Under the others (schedutil, interactive, ondemand, ...) the core idles low before a
#: run and ramps up under load, which is not throttling.
FIXED_FREQUENCY_GOVERNORS = ("performance", "powersave", "userspace")

T = TypeVar("T")

Exporter = Callable[[ResolvedModel, ExportOptions, ExportHooks], Artifact]
"""``(model, options, hooks) -> artifact``; the default is :func:`export_model`."""


def _export_with_cache(resolved: ResolvedModel, options: ExportOptions, hooks: ExportHooks) -> Artifact:
    return export_model(resolved, options, hooks=hooks)


@dataclass(frozen=True, kw_only=True)
class ProfileConfig(Measurement):
    """How to measure (:class:`Measurement`) on which device, and how to run a session.

    ``cooldown_poll_s`` is how often the cool-down reads the temperature. ``repeat``
    measures every model that many times, interleaved. ``devices_file`` is an extra
    devices.toml read after the usual ones. ``per_op`` makes every run a traced one
    (:mod:`mobilebench.bench.per_op`): an ExecuTorch event trace of every iteration,
    read into one row per operator; such runs are stored with purpose ``per-op``, apart
    from latency runs (tracing costs time).
    """

    device: str
    address: str | None = None
    cooldown_poll_s: float = 5.0
    repeat: int = 1
    connect_timeout_s: float = 10.0
    devices_file: Path | None = None
    per_op: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.repeat < 1:
            raise UsageError(f"--repeat must be >= 1, got {self.repeat}")
        if self.cooldown_poll_s <= 0 or self.connect_timeout_s <= 0:
            raise UsageError("timeouts must be positive")
        if self.per_op and self.runtime != "executorch":
            raise UsageError("--per-op profiles ExecuTorch programs: drop --runtime onnx")


@dataclass
class ProfileOutcome:
    """One finished run as stored (``notes``: the warnings stored with it)."""

    run_id: int
    model: str
    record: RunRecord
    notes: list[str] = field(default_factory=list)
    #: The operators of a traced run (``ProfileConfig.per_op``), slowest first.
    ops: OpProfile | None = None


class IterationCounter:
    """Counts the runner's ``{"event": "iteration", ...}`` lines as its output streams in.

    Output arrives in pieces that need not end at line breaks, so the unfinished last
    line is kept until its end arrives. ``on_count(total_so_far)`` is called whenever
    the count grows.
    """

    _ITERATION = re.compile(r'^\s*\{\s*"event"\s*:\s*"iteration"')

    def __init__(self, on_count: Callable[[int], None]) -> None:
        self._on_count = on_count
        self._partial = ""
        self.count = 0

    def feed(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        found = sum(1 for line in lines if self._ITERATION.match(line))
        if found:
            self.count += found
            self._on_count(self.count)


@dataclass
class DeviceResult:
    """What one device's worker of :func:`profile_on_devices` did: its stored runs, and
    the error that stopped it (None when every run finished)."""

    device: str
    outcomes: list[ProfileOutcome]
    error: MobilebenchError | None = None


def profile_on_devices(
    configs: Sequence[ProfileConfig],
    db: str | Path | None,
    models: Sequence[ResolvedModel],
    *,
    hooks_for: Callable[[str], ProgressHooks] | None = None,
    export: Exporter | None = None,
) -> list[DeviceResult]:
    """Profile ``models`` on several devices at once, one worker thread per device.

    The models are exported once, before any device is touched; then each worker runs
    its own :class:`ProfileSession` (its own database connection) on its device: each
    phone still runs one pinned, single-threaded runner at a time. Two runners pinned
    to the same core of one computer (two emulated phones backed by one host core) would
    measure each other: give each emulator its own host core. ``hooks_for(device)`` gives
    a worker's progress hooks; ``export`` replaces :func:`export_model` (as for
    :class:`ProfileSession`). A failing device stops only its own worker.

    Worker threads are daemons: on Ctrl-C or SIGTERM the process ends without waiting
    for them, and their unfinished runs are marked aborted by the next profile.
    """
    if not configs:
        raise UsageError("no devices to profile on")
    seen: dict[tuple[str, str | None], str] = {}
    for config in configs:
        key = (config.device, config.address)
        if key in seen:
            raise UsageError(f"device {config.device!r} is named twice: two workers would measure on one device")
        seen[key] = config.device
        get_profile(config.device, address=config.address, extra_file=config.devices_file)  # known, before exporting
    first = configs[0]
    if any((c.runtime, c.dtype) != (first.runtime, first.dtype) for c in configs):
        raise UsageError("every device profiles the same runtime and dtype")
    options = ExportOptions(runtime=first.runtime, dtype=first.dtype)
    artifacts = {id(model): (export or _export_with_cache)(model, options, ExportHooks()) for model in models}

    def exported(model: ResolvedModel, options: ExportOptions, hooks: ExportHooks) -> Artifact:
        return artifacts[id(model)]

    results = [DeviceResult(config.device, []) for config in configs]

    def work(config: ProfileConfig, result: DeviceResult) -> None:
        session: ProfileSession | None = None
        try:
            with ResultsStore(db) as store:
                hooks = hooks_for(config.device) if hooks_for else ProgressHooks()
                session = ProfileSession(config, store, hooks=hooks, export=exported)
                with hooks:
                    session.run(models)
        except MobilebenchError as exc:
            result.error = exc
        except Exception as exc:  # a bug in one worker must not vanish with its thread
            result.error = MobilebenchError(f"{config.device}: {type(exc).__name__}: {exc}")
        finally:
            if session is not None:
                result.outcomes = list(session.outcomes)

    threads = [
        threading.Thread(target=work, args=(config, result), name=f"profile-{config.device}", daemon=True)
        for config, result in zip(configs, results)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def runs_on_this_computer(profile: DeviceProfile) -> bool:
    """Whether a runner on ``profile`` runs on this computer: the ``local`` transport, or
    an ADB device on a loopback address (the phone emulator)."""
    if profile.transport == "local":
        return True
    if profile.transport != "adb-tcp" or not profile.address:
        return False
    host = profile.address.rpartition(":")[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def off_the_core(cpu: int | None) -> Iterator[None]:
    """Keep this process (its calling thread and what it starts) off host core ``cpu``
    meanwhile: the core a runner measures on. Nothing changes when ``cpu`` is None, not
    ours to leave, or the only core we have."""
    allowed = os.sched_getaffinity(0)
    if cpu is None or cpu not in allowed or len(allowed) == 1:
        yield
        return
    os.sched_setaffinity(0, allowed - {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def interruption(exc: BaseException) -> str:
    """The error stored for a run that did not finish because of ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)"
    return f"interrupted: {type(exc).__name__}: {exc}"


def taskset_mask(cpu: int) -> str:
    """The hexadecimal affinity mask taskset takes for one CPU (cpu7 -> ``80``)."""
    return format(1 << cpu, "x")


def describe_exit(code: int) -> str:
    """``139`` -> ``"killed by SIGSEGV (exit status 139)"``; shells report a program
    killed by signal N as 128 + N."""
    if 128 < code < 128 + 65:
        try:
            return f"killed by {signal.Signals(code - 128).name} (exit status {code})"
        except ValueError:
            pass
    return f"exited with status {code}"


def throttle_snapshots(before: DeviceState, after: DeviceState) -> tuple[dict, dict]:
    """The before/after values :func:`mobilebench.bench.stats.warnings` compares.

    ``freq_khz`` is the pinned core's current frequency, ``temp_c`` its thermal zone.
    Under a dynamic governor the reading before the run is the idle frequency and the
    one after it the loaded one, so a rise is the governor at work, not throttling: it
    is not passed on. A drop, or any change under a fixed-frequency governor, is.
    """
    f0, f1 = before.cur_freq_khz, after.cur_freq_khz
    if f0 is not None and f1 is not None and f1 > f0 and before.governor not in FIXED_FREQUENCY_GOVERNORS:
        f0 = f1
    return {"freq_khz": f0, "temp_c": before.cpu_temp_c}, {"freq_khz": f1, "temp_c": after.cpu_temp_c}


class ProfileSession:
    """Profiles models on one device and stores every run (see the module docstring).

    Without a ``store`` it only reaches the device: the parts that read its state, push
    and run (:meth:`read_state`, :meth:`push_artifact`, :meth:`push_runner`,
    :meth:`run_runner`) serve :mod:`mobilebench.bench.agreement`, which stores nothing.
    """

    def __init__(
        self,
        config: ProfileConfig,
        store: ResultsStore | None,
        *,
        hooks: ProgressHooks | None = None,
        export: Exporter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.hooks = hooks or ProgressHooks()
        self.profile = get_profile(config.device, address=config.address, extra_file=config.devices_file)
        self.cpu = config.cpu if config.cpu is not None else self.profile.cpus[0]
        self.runner = plan_runner(self.profile, config.runtime)
        self._export = export or _export_with_cache
        self._pushed: set[str] = set()
        #: Whether the runner shares this computer's CPUs (``host``, an emulator on
        #: loopback): then the displays stay still while it measures.
        self.runs_on_this_computer = runs_on_this_computer(self.profile)
        #: Runs completed so far, in order; still valid when :meth:`run` raised.
        self.outcomes: list[ProfileOutcome] = []

    # -- the whole job ----------------------------------------------------------------

    def run(self, models: Sequence[ResolvedModel]) -> list[ProfileOutcome]:
        """Profile every model ``repeat`` times, interleaved (A B A B ...).

        Stops at the first failure: that run is stored as failed and its error raised,
        so the caller exits non-zero; the runs before it are stored and in ``outcomes``.
        """
        if not models:
            raise UsageError("no models to profile")
        options = ExportOptions(runtime=self.config.runtime, dtype=self.config.dtype, etrecord=self.config.per_op)
        artifacts = []
        for resolved in models:
            label = f"{resolved.name} ({self.config.runtime} {self.config.dtype})"
            self.hooks.stage(f"exporting {label}")
            with self.hooks.exporting(label) as export_hooks:
                artifacts.append(self._export(resolved, options, export_hooks))
        self.hooks.stage(f"connecting to {self.profile.name} ({self.profile.endpoint})")
        with connect(self.profile, timeout_s=self.config.connect_timeout_s) as device:
            for _ in range(self.config.repeat):
                for resolved, artifact in zip(models, artifacts):
                    self.outcomes.append(self.profile_one(device, resolved, artifact))
        return list(self.outcomes)

    # -- one run ----------------------------------------------------------------------

    def profile_one(
        self,
        device: Device,
        resolved: ResolvedModel,
        artifact: Artifact,
        *,
        comparison_id: int | None = None,
        pair: int | None = None,
    ) -> ProfileOutcome:
        """Measure one model once and store the run (``failed`` with its error if it fails).

        ``comparison_id`` and ``pair`` mark a run as one half of a pair of whole runs in
        a comparison (:mod:`mobilebench.bench.compare`): every sample carries ``pair``.
        """
        if self.store is None:
            raise UsageError("a profile session without a results store cannot profile")
        meta = self.run_meta(resolved, artifact, comparison_id=comparison_id)
        run_id = self.store.start_run(meta)
        try:
            before = self.read_state(device)
            meta = self._with_state(meta, before, None)
            before = self.cool_down(device, before)
            meta = self._with_state(meta, before, None)
            ledger = self.ledger(before)
            remote_model = self.push_artifact(device, ledger, artifact)
            binary = self.push_runner(device, ledger)
            # Frequency and temperatures right before and right after the runner (the
            # state above may be a push earlier); identity and free space stay as read.
            output, before, after = self._measure(device, binary, remote_model, before)
            samples = [replace(s, pair=pair) for s in output.samples] if pair is not None else output.samples
            meta, notes, stats = self.finish_meta(meta, output, before, after)
            ops = self._read_trace(device, resolved, artifact, output, run_id) if self.config.per_op else None
            if ops is not None:
                notes += list(ops.notes)
                meta = replace(meta, warnings=tuple(notes))
            self.store.complete_run(run_id, meta, stats, samples, ops=ops.ops if ops else ())
        except MobilebenchError as exc:
            stored = self._fail(run_id, str(exc), meta)
            state = "stored as failed" if stored else "left running, the next profile marks it aborted"
            raise MobilebenchError(
                f"{resolved.name} on {self.profile.name} (run {run_id}, {state}): {exc}", exit_code=exc.exit_code
            ) from None
        except BaseException as exc:
            # Ctrl-C, SIGTERM or a bug: the row must not stay 'running' (it is not a result).
            self._fail(run_id, interruption(exc), meta)
            raise
        record = self.store.get_run(run_id)
        assert record is not None
        return ProfileOutcome(run_id=run_id, model=resolved.name, record=record, notes=notes, ops=ops)

    def _read_trace(
        self, device: Device, resolved: ResolvedModel, artifact: Artifact, output: RunnerOutput, run_id: int
    ) -> OpProfile:
        """Pull a traced run's ETDump and read it, with the export's ETRecord, into one
        row per operator carrying fvcore's multiply-adds."""
        if output.trace is None or artifact.etrecord_path is None:
            raise MobilebenchError(f"{resolved.name}: the traced run left no event trace to read")
        self.hooks.stage(f"reading the operators of {resolved.name}")
        with tempfile.TemporaryDirectory(prefix="mobilebench-trace-") as folder:
            local = Path(folder) / "trace.etdp"
            device.pull(output.trace.path, local)
            device.run(["rm", "-f", "--", output.trace.path], timeout_s=30, idempotent=True)
            flops = count_flops(resolved).flops_by_module
            return profile_ops(local, artifact.etrecord_path, flops, warmup=output.trace.warmup, run_id=run_id)

    # -- the parts of a run (also used by comparisons) -----------------------------------

    def run_meta(self, resolved: ResolvedModel, artifact: Artifact, *, comparison_id: int | None = None) -> RunMeta:
        """The provenance known before the device is touched."""
        return RunMeta(
            model=resolved.name,
            arch=resolved.arch,
            checkpoint_sha256=resolved.checkpoint_sha256,
            artifact_sha256=artifact.sha256,
            artifact_path=str(artifact.path),
            runtime=artifact.runtime,
            backend="xnnpack" if artifact.runtime == "executorch" else "cpu",
            dtype=artifact.dtype,
            input_shape=artifact.input_shape,
            device_profile=self.profile.name,
            emulated=self.profile.emulated,
            device_serial=self.profile.serial or self.profile.address,
            cpu=self.cpu,
            threads=1,
            runner_name=self.runner.adapter.name,
            runner_build=self.runner.build or self.runner.adapter.name,
            abi=self.runner.abi,
            warmup=self.config.warmup,
            iterations=self.config.iterations,
            comparison_id=comparison_id,
            purpose="per-op" if self.config.per_op else "latency",
            extra={
                "driver_host": socket.gethostname(),
                "random_init": resolved.checkpoint_sha256 is None,
                "target_rel_ci": self.config.target_rel_ci,
                "max_iterations": self.config.max_iterations,
                "cooldown_c": self.config.cooldown_c,
            },
        )

    def ledger(self, state: DeviceState) -> PushLedger:
        """What this computer knows it pushed to the device in ``state``."""
        return PushLedger(f"{self.profile.transport}:{self.profile.endpoint}|{state.fingerprint or state.model}")

    def push_artifact(self, device: Device, ledger: PushLedger, artifact: Artifact) -> str:
        """The artifact's path on the device, pushed if the device's copy differs; the
        device's model folder is then trimmed to its budget (least recently used out)."""
        relative = f"models/{artifact.sha256[:16]}{artifact.path.suffix}"
        remote = self._push(device, ledger, artifact.path, artifact.sha256, relative, 0o644)
        trim_model_cache(device, keep=self._pushed)
        return remote

    def finish_meta(
        self, meta: RunMeta, output: RunnerOutput, before: DeviceState, after: DeviceState
    ) -> tuple[RunMeta, list[str], LatencyStats]:
        """The run's final provenance, its warnings and its statistics."""
        stats = output.stats()
        notes = list(output.notes) + self._start_warnings(before)
        notes += stats_warnings(stats, *throttle_snapshots(before, after))
        meta = replace(
            self._with_state(meta, before, after),
            runner_version=output.runner_version,
            runtime_version=output.runtime_version,
            runner_build=self.runner.build or self.runner.adapter.name,
            abi=before.abi or self.runner.abi,
            peak_rss_bytes=output.peak_rss_bytes,
            planned_memory_bytes=output.planned_memory_bytes,
            warnings=tuple(notes),
        )
        return meta, notes, stats

    def _fail(self, run_id: int, error: str, meta: RunMeta) -> bool:
        """Store the run as failed; False when even that write failed (a full disk, a
        locked database): the original error matters more, the row stays 'running' and
        the next profile marks it aborted."""
        try:
            self.store.fail_run(run_id, error, meta)
        except MobilebenchError:
            return False
        return True

    def read_state(self, device: Device) -> DeviceState:
        """The device's state, after checking it is the device the profile describes;
        the runner build is (re)chosen for the ABI it reports."""
        self.hooks.stage(f"reading {self.profile.name} state")
        state = device.read_state(self.cpu)
        name = self.profile.name
        if self.profile.transport != "local" and not state.identity_known:
            # A crashed or odd shell answers nothing: such numbers belong to no phone.
            raise MobilebenchError(
                f"device {name!r} did not say what it is (getprop gave no model or build fingerprint), so its "
                "numbers cannot be attributed to a phone; check it with `mobilebench devices --check`"
            )
        expected = self.profile.expected_model
        if expected and state.model != expected:
            raise MobilebenchError(
                f"device {name!r} reports model {state.model!r}, the profile expects {expected!r}; wrong phone attached?"
            )
        if state.abi and state.abi != self.runner.abi:
            # A device that says it is emulated runs on this computer: the host build fits it.
            profile = replace(self.profile, emulated=self.profile.emulated or state.emulated)
            self.runner = plan_runner(profile, self.config.runtime, abi=state.abi)
        return state

    def _start_warnings(self, before: DeviceState) -> list[str]:
        """A core that starts hot without a cool-down may already be throttled."""
        t = before.cpu_temp_c
        if self.config.cooldown_c is None and t is not None and t >= WARM_START_C:
            return [
                f"the run started with cpu{self.cpu} at {t:.1f} C (>= {WARM_START_C:g} C) and no cool-down: "
                f"it may have been throttled; pass --cooldown-c {WARM_START_C:g}"
            ]
        return []

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

    def cool_down(self, device: Device, state: DeviceState) -> DeviceState:
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
                    f"device {self.profile.name!r}: cpu{self.cpu} ({state.cpu_temp_zone}) stayed at "
                    f"{state.cpu_temp_c:.1f} C, above the {threshold:g} C cool-down threshold, for "
                    f"{self.config.cooldown_timeout_s:g} s; let it cool or raise --cooldown-timeout"
                )
            self.hooks.stage(f"cooling down: cpu{self.cpu} at {state.cpu_temp_c:.1f} C, waiting for < {threshold:g} C")
            time.sleep(min(self.config.cooldown_poll_s, max(0.0, deadline - time.monotonic())))
            state = device.read_state(self.cpu)
        return state

    def _push(self, device: Device, ledger: PushLedger, local: Path, sha256: str, relative: str, mode: int) -> str:
        """Make ``workdir/relative`` a copy of ``local`` (whose hash is ``sha256``).

        Once per session per file. A device file the ledger knows to hold ``sha256`` at
        its current size and mtime is taken as is (one ``stat``); otherwise the device
        hashes its copy and gets a new one if it differs.
        """
        remote = f"{self.profile.workdir.rstrip('/')}/{relative}"
        if remote in self._pushed:
            return remote
        self.hooks.stage(f"pushing {local.name}")
        current = device.stat(remote)
        if current is not None and current.permissions == mode and ledger.is_current(remote, sha256, current):
            size = local.stat().st_size
            self.hooks.transfer(local.name, size, size)
        else:
            device.push_if_changed(
                local, remote, mode=mode, progress=lambda done, total: self.hooks.transfer(local.name, done, total)
            )
            if (pushed := device.stat(remote)) is not None:
                ledger.record(remote, sha256, pushed)
        self._pushed.add(remote)
        return remote

    def push_runner(self, device: Device, ledger: PushLedger) -> str:
        """Push the runner's files that the device lacks (the bundle's, one by one);
        its path on the device."""
        for file in self.runner.files:
            self._push(device, ledger, file.local, file_sha256(file.local), file.remote, file.mode)
        return self.runner.device_binary

    def _measure(
        self, device: Device, binary: str, remote_model: str, state: DeviceState
    ) -> tuple[RunnerOutput, DeviceState, DeviceState]:
        """Run the runner; its parsed output and the device state right before and after."""
        request = self.config.request(remote_model)
        if self.config.per_op:
            folder = f"{self.profile.workdir.rstrip('/')}/traces"
            device.run(["mkdir", "-p", "--", folder], timeout_s=30, idempotent=True)
            request = replace(request, etdump=f"{folder}/{remote_model.rsplit('/', 1)[-1]}.etdp")
        adapter = self.runner.adapter
        argv = self.pinned(adapter.argv(binary, request))
        total = None if request.target_rel_ci else request.warmup + request.iterations
        output, before, after = self.run_runner(
            device, argv, state, total=total, parse=lambda out: adapter.parse(out, request=request)
        )
        self.hooks.iteration(len(output.samples), len(output.samples))
        return output, before, after

    def pinned(self, runner_argv: Sequence[str]) -> list[str]:
        """The runner's command line pinned to the measured core, under the build's launcher."""
        return ["taskset", taskset_mask(self.cpu), *self.runner.launcher, *runner_argv]

    def run_runner(
        self, device: Device, argv: list[str], state: DeviceState, *, total: int | None, parse: Callable[[str], T]
    ) -> tuple[T, DeviceState, DeviceState]:
        """Run the runner's ``argv`` (already under taskset) and ``parse`` its stdout; the
        device state right before and after it (frequency and temperatures).

        ``total`` is how many iteration events to expect (None: not known). A runner
        that fails is explained by its own error line when it printed one, else by its
        exit status and how far it got.
        """
        name = self.runner.adapter.name
        counter = IterationCounter(lambda done: self.hooks.iteration(done, total))
        timeout_s = self.config.runner_timeout_s
        self.hooks.stage(f"running {name} on cpu{self.cpu}")
        self.hooks.iteration(0, total)
        started = time.monotonic()
        try:
            host_cpu = self.cpu if self.profile.transport == "local" else None
            with self.hooks.measuring(on_this_computer=self.runs_on_this_computer), off_the_core(host_cpu):
                snapshot_before, result, snapshot_after = device.run_with_snapshots(
                    argv, cpu=self.cpu, timeout_s=timeout_s, on_output=counter.feed
                )
        except MobilebenchError as exc:
            progress = f"after {counter.count} of {total if total is not None else '?'} iterations"
            if time.monotonic() - started >= timeout_s:
                raise MobilebenchError(
                    f"{name} did not finish within {timeout_s:g} s ({progress}); "
                    "a hung runner or a slow model: raise --runner-timeout if it was making progress"
                ) from None
            raise MobilebenchError(f"{name} on cpu{self.cpu} ({progress}): {exc}") from None
        if result.exit_code != 0:
            if refused_for_its_abi(result):
                raise MobilebenchError(wrong_abi_message(self.runner, self.profile, state.abi))
            how = describe_exit(result.exit_code)
            try:
                parse(result.stdout)
            except MobilebenchError as exc:
                raise MobilebenchError(f"{name} {how} after {counter.count} iterations: {exc}") from exc
            raise MobilebenchError(f"{name} {how}")
        zone = self.profile.thermal_zone
        before = state.with_snapshot(snapshot_before, thermal_zone=zone)
        return parse(result.stdout), before, state.with_snapshot(snapshot_after, thermal_zone=zone)
