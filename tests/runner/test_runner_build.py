"""The runner's build: versions, where it finds its libraries, the Android build script."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mobilebench.paths import project_root

ANDROID_SCRIPT = project_root() / "android_app" / "build_android.sh"


def test_version_line_names_the_executorch_wheel_it_was_built_against(run_runner: Callable[..., Any]) -> None:
    import executorch.version

    result = run_runner("--version")
    assert result.returncode == 0, result.describe()
    version = result.one("version")
    assert version["runner"] == "mobilebench_runner"
    assert version["runner_version"] == "0.1.0"
    assert version["executorch_version"] == executorch.version.__version__
    assert version["executorch_git_version"] == executorch.version.git_version
    assert version["etdump"] is True
    assert version["target"].endswith(os.uname().machine)


def test_start_event_reports_versions_and_settings(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    import executorch.version

    result = run_runner("--model", tiny_pte, "--warmup", "1", "--iterations", "2", "--seed", "7")
    assert result.returncode == 0, result.describe()
    start = result.events[0]
    assert start["event"] == "start"
    assert start["executorch_version"] == executorch.version.__version__
    assert (start["threads"], start["threadpool_threads"]) == (1, 1)
    assert (start["warmup"], start["iterations"], start["seed"]) == (1, 2, 7)
    assert start["model"] == str(tiny_pte)
    assert set(start["affinity"]) <= set(range(os.cpu_count() or 1)) and start["affinity"]
    assert [e["event"] for e in result.events] == ["start", "load"] + ["iteration"] * 3 + ["summary"]


def test_runpath_is_the_absolute_wheel_lib_dir(runner_path: Path) -> None:
    import executorch

    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) not installed")
    dynamic = subprocess.run([readelf, "-d", str(runner_path)], capture_output=True, text=True, check=True).stdout
    runpaths = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "RUNPATH" in line or "RPATH" in line]
    assert len(runpaths) == 1, dynamic
    wheel_lib = (Path(list(executorch.__path__)[0]) / "lib").resolve()
    # One absolute entry, no $ORIGIN and no empty entry (which would mean "current directory").
    assert runpaths[0].split(":") == [str(wheel_lib)]


def test_runs_when_copied_elsewhere(run_runner: Callable[..., Any], runner_path: Path, tiny_pte: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "mobilebench_runner"
    copy.parent.mkdir()
    shutil.copy2(runner_path, copy)
    result = run_runner("--model", tiny_pte, "--warmup", "0", "--iterations", "2", binary=copy)
    assert result.returncode == 0, result.describe()
    assert result.one("summary")["iterations"] == 2


@pytest.mark.slow
def test_runs_from_a_sandbox_with_the_host_read_only(runner_path: Path, tiny_pte: Path, tmp_path: Path) -> None:
    """The phone emulator's situation: binary and model pushed to a private /data/local/tmp,
    the host file system visible read-only at the same paths."""
    bwrap = shutil.which("bwrap")
    if bwrap is None or subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], capture_output=True).returncode != 0:
        pytest.skip("bubblewrap cannot create a sandbox here")
    data = tmp_path / "data"
    data.mkdir()
    script = (
        "set -e; mkdir -p /mnt/data/local/tmp/mb; cd /mnt/data/local/tmp/mb;"
        f" cp {runner_path} {tiny_pte} .; ./mobilebench_runner --model {tiny_pte.name} --warmup 0 --iterations 2"
    )
    proc = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/mnt",
         "--bind", str(data), "/mnt/data", "--unshare-pid", "sh", "-c", script],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-800:]
    assert '"event":"summary"' in proc.stdout.splitlines()[-1]


def test_missing_binary_fails_with_build_instructions(find_runner: Callable[[Path], Path], tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run `make runner`"):
        find_runner(tmp_path)


# --- build_android.sh: it cannot run here (no NDK), but it must refuse clearly ---------------


def _android_build(env_ndk: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ANDROID_NDK"}
    if env_ndk is not None:
        env["ANDROID_NDK"] = env_ndk
    return subprocess.run(["bash", str(ANDROID_SCRIPT), *args], capture_output=True, text=True, env=env, timeout=30)


@pytest.fixture()
def fake_ndk(tmp_path: Path) -> Path:
    toolchain = tmp_path / "ndk" / "build" / "cmake" / "android.toolchain.cmake"
    toolchain.parent.mkdir(parents=True)
    toolchain.write_text("# not a real toolchain\n")
    return tmp_path / "ndk"


def test_android_script_is_executable_bash() -> None:
    assert ANDROID_SCRIPT.stat().st_mode & stat.S_IXUSR
    subprocess.run(["bash", "-n", str(ANDROID_SCRIPT)], check=True)


def test_android_build_refuses_without_ndk(tmp_path: Path) -> None:
    proc = _android_build(None, str(tmp_path))
    assert proc.returncode == 2
    assert "ANDROID_NDK is not set" in proc.stderr
    proc = _android_build(str(tmp_path / "no-ndk"), str(tmp_path))
    assert proc.returncode == 2
    assert "is not an Android NDK" in proc.stderr


def test_android_build_refuses_without_executorch_checkout(fake_ndk: Path, tmp_path: Path) -> None:
    proc = _android_build(str(fake_ndk))
    assert proc.returncode == 2
    assert "no ExecuTorch source checkout given" in proc.stderr

    not_a_checkout = tmp_path / "empty"
    not_a_checkout.mkdir()
    proc = _android_build(str(fake_ndk), str(not_a_checkout))
    assert proc.returncode == 2
    assert "is not an ExecuTorch source checkout" in proc.stderr

    misnamed = tmp_path / "et-src"
    misnamed.mkdir()
    (misnamed / "CMakeLists.txt").write_text("project(executorch)\n")
    (misnamed / "version.txt").write_text("1.5.1\n")
    proc = _android_build(str(fake_ndk), str(misnamed))
    assert proc.returncode == 2
    assert "must be a directory named 'executorch'" in proc.stderr

    without_submodules = tmp_path / "executorch"
    without_submodules.mkdir()
    (without_submodules / "CMakeLists.txt").write_text("project(executorch)\n")
    (without_submodules / "version.txt").write_text("1.5.1\n")
    build_dir = tmp_path / "build"
    proc = _android_build(str(fake_ndk), str(without_submodules), str(build_dir))
    assert proc.returncode == 2
    assert "submodule update --init" in proc.stderr
    assert not build_dir.exists()  # refused before configuring anything
