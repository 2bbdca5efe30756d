"""Which runner measures on a device, which build of it fits, and how it gets there and starts.

``android_app/runner`` builds three ways (android_app/README.md); the names are what
:attr:`mobilebench.records.RunMeta.runner_build` stores:

- ``host``: ``make runner``, for this computer. Also what the default phone emulator
  runs: its sandbox executes host code.
- ``android-arm64-v8a``: ``android_app/build_android.sh`` with the Android NDK; one
  static binary for arm64 phones.
- ``linux-arm64``: ``make runner-arm64``, cross-compiled against PyPI's aarch64
  ExecuTorch wheel, no NDK. A folder (the *bundle*) holding the runner, ``lib/`` with
  every library it needs and its own glibc loader, and ``manifest.json``; it starts as
  ``lib/ld-linux-aarch64.so.1 --library-path lib mobilebench_runner ...`` and so uses no
  library of the device (Android has no glibc).

The rule: the host build for ``host`` and for a device whose ABI is this computer's (the
default emulator); for an ``arm64-v8a`` device the NDK build when it was built, else the
bundle. A device's ABI is Android's name for it (``getprop ro.product.cpu.abi``:
``arm64-v8a``, ``x86_64``; :attr:`mobilebench.device.state.DeviceState.abi`); ``uname -m``
names (``aarch64``) are accepted too (:func:`~mobilebench.device.state.normalize_abi`).
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mobilebench.bench.measurement import RunnerRequest
from mobilebench.bench.runners import RunnerAdapter, get_adapter
from mobilebench.device import CommandResult, DeviceProfile
from mobilebench.device.base import start_failure
from mobilebench.device.state import normalize_abi
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.paths import project_root

_BUILD_DIR = project_root() / "android_app" / "build"

#: Where each build of the native runner lands: the binary, or for ``linux-arm64`` the
#: bundle folder.
NATIVE_RUNNER_BUILDS = {
    "host": _BUILD_DIR / "host" / "mobilebench_runner",
    "android-arm64-v8a": _BUILD_DIR / "android-arm64-v8a" / "mobilebench_runner",
    "linux-arm64": _BUILD_DIR / "linux-arm64",
}

#: How to make each build, for messages.
BUILD_COMMANDS = {
    "host": "make runner",
    "android-arm64-v8a": "android_app/build_android.sh (needs an Android NDK; see android_app/README.md)",
    "linux-arm64": "make runner-arm64",
}

#: Default runner per runtime when a profile names none.
DEFAULT_RUNNERS = {"executorch": "mobilebench_runner", "onnx": "ort_python"}

#: The bundle's manifest, library folder, and the least LOAD segment alignment (bytes)
#: every ELF file in it has: kernels with 16 KB pages (Pixel 8 and later on Android 15+)
#: refuse to map anything less.
BUNDLE_MANIFEST = "manifest.json"
BUNDLE_LIBRARY_DIR = "lib"
MIN_SEGMENT_ALIGNMENT = 16 * 1024

#: The ABI of this computer, hence of the host build.
HOST_ABI = normalize_abi(platform.machine())


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle: ``path`` relative to the bundle folder ('/'-separated),
    hex SHA-256, size in bytes, and the permission bits it gets on the device."""

    path: str
    sha256: str
    size: int
    mode: int


@dataclass(frozen=True)
class BundleManifest:
    """``manifest.json`` of a bundle: the runner, its loader and library folder (paths
    relative to the bundle), and every file (the runner and loader included)."""

    runner: str
    loader: str
    library_dir: str
    files: tuple[BundleFile, ...]

    FORMAT = 1

    def to_json(self) -> dict:
        return {
            "format": self.FORMAT,
            "runner": self.runner,
            "loader": self.loader,
            "library_dir": self.library_dir,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "mode": f"{f.mode:04o}"} for f in self.files],
        }

    @classmethod
    def read(cls, folder: Path) -> BundleManifest:
        """The manifest of the bundle in ``folder``, checked against the files there
        (presence and size; the push hashes them)."""
        path = folder / BUNDLE_MANIFEST
        hint = f"rebuild it with {BUILD_COMMANDS['linux-arm64']}"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != cls.FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {cls.FORMAT}")
            files = tuple(
                BundleFile(_relative(f["path"]), str(f["sha256"]), int(f["size"]), int(f["mode"], 8)) for f in doc["files"]
            )
            manifest = cls(_relative(doc["runner"]), _relative(doc["loader"]), _relative(doc["library_dir"]), files)
        except FileNotFoundError:
            raise MobilebenchError(f"the linux-arm64 runner bundle {folder} has no {BUNDLE_MANIFEST}; {hint}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MobilebenchError(f"{path} is not a valid bundle manifest ({exc}); {hint}") from None
        listed = {f.path for f in files}
        for name in (manifest.runner, manifest.loader):
            if name not in listed:
                raise MobilebenchError(f"{path} does not list {name}; {hint}")
        for f in files:
            local = folder / f.path
            if not local.is_file() or local.stat().st_size != f.size:
                raise MobilebenchError(f"the runner bundle {folder} is incomplete: {f.path} is missing or changed; {hint}")
        return manifest


def _relative(text: str) -> str:
    """A path inside the bundle: relative, no ``..`` (the manifest says what is pushed)."""
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{text!r} is not a path inside the bundle")
    return str(path)


@dataclass(frozen=True)
class PushFile:
    """A local file the device needs at ``remote`` (relative to the profile's workdir),
    with permission bits ``mode``."""

    local: Path
    remote: str
    mode: int


@dataclass(frozen=True)
class RunnerPlan:
    """Which runner measures, which build of it, what to push and how to start it.

    ``files`` are pushed (when the device's copy differs) before the run; empty when the
    binary is already there (a stock tool installed on the phone, or the Python
    interpreter for ``ort_python``). The runner starts as
    ``[*launcher, *adapter.argv(device_binary, request)]`` (under ``taskset``):
    ``launcher`` is the bundle's loader and ``--library-path``, empty otherwise.
    ``build`` is the native build (a :data:`NATIVE_RUNNER_BUILDS` key) or None for any
    other binary; ``abi`` the ABI it was picked for (None: the profile's default).
    """

    adapter: RunnerAdapter
    device_binary: str
    files: tuple[PushFile, ...] = ()
    launcher: tuple[str, ...] = ()
    build: str | None = None
    abi: str | None = None

    @property
    def local_binary(self) -> Path | None:
        """The local file pushed to ``device_binary`` (the runner itself), if any."""
        return next((f.local for f in self.files if self.device_binary.endswith(f"/{f.remote}")), None)

    def command(self, request: RunnerRequest) -> list[str]:
        """The argv that runs ``request`` on the device (to be put under ``taskset``)."""
        return [*self.launcher, *self.adapter.argv(self.device_binary, request)]


def plan_runner(profile: DeviceProfile, runtime: str, abi: str | None = None) -> RunnerPlan:
    """Pick the runner for ``runtime`` on ``profile`` and the build that fits ``abi``.

    A profile's ``runners`` table maps a runtime to a runner name
    (``mobilebench_runner``, ``executor_runner``, ``onnxruntime_perf_test``,
    ``ort_python``), optionally ``name:PATH`` to use a specific binary: a local file
    to push, or an absolute path already on the device. ``abi`` is the device's (see the
    module docstring); None means this computer's for ``local`` and emulated profiles,
    ``arm64-v8a`` for phones.
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
        return RunnerPlan(adapter=adapter, device_binary=sys.executable, abi=abi)
    if path:
        local = Path(path).expanduser()
        if local.is_file():
            return RunnerPlan(
                adapter=adapter, device_binary=f"{bin_dir}/{name}", files=(PushFile(local, f"bin/{name}", 0o755),), abi=abi
            )
        if path.startswith("/") and profile.transport != "local":
            return RunnerPlan(adapter=adapter, device_binary=path, abi=abi)
        raise UsageError(f"device {profile.name!r}: runner binary {path} does not exist")
    if name != "mobilebench_runner":
        raise UsageError(
            f"device {profile.name!r}: say where {name} is, e.g. runners.{runtime} = \"{name}:/path/to/{name}\""
        )
    abi = normalize_abi(abi) or (HOST_ABI if profile.transport == "local" or profile.emulated else "arm64-v8a")
    build = native_build_for(profile, abi)
    if build == "linux-arm64":
        return _bundle_plan(adapter, bin_dir, abi)
    local = NATIVE_RUNNER_BUILDS[build]
    if not local.is_file():
        raise MobilebenchError(
            f"the {build} build of mobilebench_runner is missing at {local}; build it with {BUILD_COMMANDS[build]}"
        )
    return RunnerPlan(
        adapter=adapter,
        device_binary=f"{bin_dir}/{name}",
        files=(PushFile(local, f"bin/{name}", 0o755),),
        build=build,
        abi=abi,
    )


def native_build_for(profile: DeviceProfile, abi: str) -> str:
    """The :data:`NATIVE_RUNNER_BUILDS` key that runs on ``profile`` with ABI ``abi``
    (the rule in the module docstring); an error for an ABI no build fits."""
    abi = normalize_abi(abi) or abi
    if profile.transport == "local" or (profile.emulated and abi == HOST_ABI):
        return "host"
    if abi == "arm64-v8a":
        return "android-arm64-v8a" if NATIVE_RUNNER_BUILDS["android-arm64-v8a"].is_file() else "linux-arm64"
    raise MobilebenchError(
        f"device {profile.name!r} has ABI {abi}; mobilebench_runner is built for arm64-v8a phones and for this computer "
        f"({HOST_ABI}) only"
    )


def _bundle_plan(adapter: RunnerAdapter, bin_dir: str, abi: str) -> RunnerPlan:
    folder = NATIVE_RUNNER_BUILDS["linux-arm64"]
    if not folder.is_dir():
        raise MobilebenchError(
            "no arm64 build of mobilebench_runner: build the bundle with "
            f"{BUILD_COMMANDS['linux-arm64']} (or the NDK build with {BUILD_COMMANDS['android-arm64-v8a']})"
        )
    manifest = BundleManifest.read(folder)
    remote = f"bin/{folder.name}"
    device_dir = f"{bin_dir}/{folder.name}"
    return RunnerPlan(
        adapter=adapter,
        device_binary=f"{device_dir}/{manifest.runner}",
        files=tuple(PushFile(folder / f.path, f"{remote}/{f.path}", f.mode) for f in manifest.files),
        launcher=(f"{device_dir}/{manifest.loader}", "--library-path", f"{device_dir}/{manifest.library_dir}"),
        build="linux-arm64",
        abi=abi,
    )


def describe_build(build: str) -> str:
    """``linux-arm64`` -> ``the linux-arm64 bundle of mobilebench_runner (make runner-arm64)``."""
    kind = "bundle" if build == "linux-arm64" else "build"
    return f"the {build} {kind} of mobilebench_runner ({BUILD_COMMANDS[build]})"


def refused_for_its_abi(result: CommandResult) -> bool:
    """Whether a device refused to start a program because it is built for another ABI
    (exec format error: how a phone refuses it, as
    :func:`mobilebench.device.base.start_failure` names it)."""
    reason = start_failure(result)
    return reason is not None and reason.startswith("exec format error")


def wrong_abi_message(plan: RunnerPlan, profile: DeviceProfile, device_abi: str | None) -> str:
    """The one-line error when ``profile``'s device refused to execute ``plan``'s runner
    (see :func:`refused_for_its_abi`): which build was pushed, the device's ABI, and the
    build it should have been given."""
    pushed = describe_build(plan.build) if plan.build else f"{plan.adapter.name} ({plan.device_binary})"
    message = f"wrong ABI: device {profile.name!r} refused to execute {pushed} (exec format error)"
    if not device_abi:
        return f"{message}; its ABI is unknown (getprop ro.product.cpu.abi gave nothing)"
    abi = normalize_abi(device_abi) or device_abi
    try:
        fits = native_build_for(profile, abi)
    except MobilebenchError:
        return f"{message}; the device is {abi}, for which mobilebench_runner has no build"
    return f"{message}; the device is {abi}: it needs {describe_build(fits)}"
