"""The arm64 bundle as built by ``make runner-arm64``: what is in it, that every file
would map on a 16 KB-page kernel, and that it runs with nothing of this system."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mobilebench.bench.runner_builds import MIN_SEGMENT_ALIGNMENT, BundleManifest
from mobilebench.files import file_sha256

from .conftest import QEMU_CPU, DigitsModel, Run, events, loader_argv


def readelf(*args: str | Path) -> str:
    return subprocess.run(["readelf", "-W", *map(str, args)], check=True, capture_output=True, text=True).stdout


def test_manifest_lists_exactly_the_files_with_their_hashes(bundle: Path, manifest: BundleManifest) -> None:
    on_disk = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    assert {f.path for f in manifest.files} == on_disk
    for f in manifest.files:
        path = bundle / f.path
        assert (file_sha256(path), path.stat().st_size, path.stat().st_mode & 0o777) == (f.sha256, f.size, f.mode), f.path
    assert manifest.runner == "mobilebench_runner" and manifest.loader == "lib/ld-linux-aarch64.so.1"
    modes = {f.path: f.mode for f in manifest.files}
    assert modes[manifest.runner] == modes[manifest.loader] == 0o755


def test_lib_holds_what_the_runner_needs_and_nothing_else(bundle: Path, manifest: BundleManifest) -> None:
    needed: set[str] = set()
    pending = [bundle / manifest.runner]
    while pending:
        names = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", pending.pop()))) - needed
        needed |= names
        pending += [bundle / "lib" / name for name in names]
    libraries = {p.name for p in (bundle / "lib").iterdir()}
    assert libraries == needed | {"ld-linux-aarch64.so.1"}
    assert {"libc.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libexecutorch.so", "libexecutorch_backend_xnnpack.so"} <= needed
    assert not any("openvino" in name for name in libraries)  # in the wheel, not needed


def test_every_elf_is_aarch64_with_load_segments_aligned_for_16k_pages(manifest: BundleManifest, bundle: Path) -> None:
    for f in manifest.files:
        path = bundle / f.path
        assert re.search(r"Machine:\s+AArch64", readelf("-h", path)), f.path
        aligns = [int(line.split()[-1], 16) for line in readelf("-l", path).splitlines() if line.split()[:1] == ["LOAD"]]
        assert aligns and min(aligns) >= MIN_SEGMENT_ALIGNMENT, f"{f.path}: LOAD alignments {aligns}"
    assert "$ORIGIN/lib" in readelf("-d", bundle / manifest.runner)  # no path of this machine


def test_version_through_the_loader_names_the_installed_executorch(run_arm64: Run) -> None:
    from executorch.version import __version__

    version = run_arm64("--version").one("version")
    assert version["target"] == "Linux-aarch64"
    assert version["executorch_version"] == __version__


@pytest.mark.slow
def test_runs_in_a_sandbox_with_no_system_of_its_own(
    bundle: Path, manifest: BundleManifest, qemu: Path, digits_model: DigitsModel
) -> None:
    """Only the bundle, the model, qemu (static), /proc, /dev and /sys: no /usr, no /lib."""
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing; run `make setup`", pytrace=False)
    sandbox = [
        "bwrap", "--unshare-all", "--die-with-parent", "--clearenv",
        "--ro-bind", str(bundle), "/bundle", "--ro-bind", str(qemu), "/qemu",
        "--ro-bind", str(digits_model.pte["fp32"]), "/model.pte", "--ro-bind", str(digits_model.inputs[0]), "/input.f32",
        "--proc", "/proc", "--dev", "/dev", "--ro-bind", "/sys", "/sys", "--tmpfs", "/tmp", "--chdir", "/tmp",
        "/qemu", "-cpu", QEMU_CPU,
    ]  # fmt: skip
    measure = ["--model", "/model.pte", "--input", "/input.f32", "--warmup", "0", "--iterations", "1"]
    proc = subprocess.run(
        [*sandbox, *loader_argv("/bundle", manifest), *measure, "--dump-output", "/tmp/out"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = [e["event"] for e in events(proc.stdout)]
    assert ran == ["start", "load", "iteration", "output", "summary"]

    # Control: started the ordinary way, the runner asks for /lib/ld-linux-aarch64.so.1,
    # which the sandbox does not have (so the run above used nothing but the bundle).
    proc = subprocess.run([*sandbox, "/bundle/mobilebench_runner", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "ld-linux-aarch64.so.1" in proc.stderr, proc.stderr
