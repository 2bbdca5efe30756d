"""``mobilebench emulator --abi arm64-v8a``: an arm64 phone on this computer. Pushed aarch64
programs run under qemu as a Cortex-A76, x86-64 ones are refused like a phone refuses
them, and ``devices --check`` starts the runner bundle there.

The bundle comes from ``make runner-arm64`` (``make test`` builds it); these tests fail,
not skip, without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mobilebench.bench.runner_builds import NATIVE_RUNNER_BUILDS, BundleManifest
from mobilebench.device import CommandResult, connect
from mobilebench.device.base import start_failure
from mobilebench.device.emulator import PhoneEmulator
from mobilebench.device.emulator.physics import descendants
from mobilebench.device.emulator.services import program_name
from mobilebench.errors import MobilebenchError
from mobilebench.paths import project_root

from .conftest import emulator_profile

BUNDLE_ON_PHONE = "/data/local/tmp/mobilebench/bin/linux-arm64"


@pytest.fixture(scope="module")
def bundle() -> tuple[Path, BundleManifest]:
    folder = NATIVE_RUNNER_BUILDS["linux-arm64"]
    if not (folder / "manifest.json").is_file():
        pytest.fail(f"the arm64 bundle is not built: {folder} is missing; run `make runner-arm64`", pytrace=False)
    return folder, BundleManifest.read(folder)


@pytest.fixture(scope="module")
def arm64_phone(tmp_path_factory, bundle):
    """An arm64 Pixel 4 with the runner bundle pushed (once for the module)."""
    from mobilebench.device.keys import ensure_key_pair

    key = ensure_key_pair()
    with PhoneEmulator(tmp_path_factory.mktemp("arm64") / "phone", abi="arm64-v8a", accepted_keys=[key.with_name("adbkey.pub")]) as phone:
        folder, manifest = bundle
        with connect(emulator_profile(phone)) as dev:
            for file in manifest.files:
                dev.push(folder / file.path, f"{BUNDLE_ON_PHONE}/{file.path}", mode=file.mode)
        yield phone


@pytest.fixture
def arm64_device(arm64_phone):
    with connect(emulator_profile(arm64_phone), timeout_s=10) as dev:
        yield dev


def loader(manifest: BundleManifest) -> list[str]:
    return [f"{BUNDLE_ON_PHONE}/{manifest.loader}", "--library-path", f"{BUNDLE_ON_PHONE}/{manifest.library_dir}"]


def test_the_phone_says_it_is_arm64(arm64_device) -> None:
    assert arm64_device.run(["getprop", "ro.product.cpu.abi"], timeout_s=10).stdout == "arm64-v8a\n"
    assert arm64_device.run(["uname", "-m"], timeout_s=10).stdout == "aarch64\n"
    state = arm64_device.read_state(7)
    assert state.abi == "arm64-v8a" and state.identity_known and state.emulated


def test_aarch64_programs_run_under_qemu_as_a_cortex_a76(arm64_phone, arm64_device, bundle) -> None:
    _, manifest = bundle
    runner = f"{BUNDLE_ON_PHONE}/{manifest.runner}"
    version = arm64_device.run(["taskset", "80", *loader(manifest), runner, "--version"], timeout_s=60)
    assert version.exit_code == 0, version.stdout
    assert json.loads(version.stdout.splitlines()[-1])["target"] == "Linux-aarch64"
    # Stop the runner under qemu with a hang fault, and read how qemu was started.
    arm64_phone.faults.hang_next_command = True
    arm64_phone.faults.hang_match = "mobilebench_runner"
    seen: list[list[str]] = []

    def watch() -> None:
        deadline = time.monotonic() + 3
        while not seen and time.monotonic() < deadline:
            for root in arm64_phone.processes.pids():
                for pid, _ in descendants(root):
                    try:
                        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                    except OSError:
                        continue
                    if program_name(argv) == "mobilebench_runner":
                        seen.append(argv)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with pytest.raises(MobilebenchError, match="did not finish"):
        arm64_device.run([*loader(manifest), runner, "--version"], timeout_s=4)
    watcher.join()
    assert arm64_phone.faults.hang_next_command is False and seen, "the runner was never seen running"
    argv = seen[-1]
    assert os.path.basename(argv[0]) == "qemu-aarch64-static"
    assert argv[argv.index("-cpu") + 1] == "cortex-a76"  # never qemu's default CPU (SME)


@pytest.mark.slow
def test_a_model_runs_on_the_arm64_phone(arm64_device, bundle, skipnet_pte: Path) -> None:
    """The bundle's runner loads and runs a model in the phone's sandbox, under qemu: its
    thread pool finds in the phone's /sys what it reads there (CPU lists, topology)."""
    _, manifest = bundle
    arm64_device.push(skipnet_pte, "/data/local/tmp/mobilebench/models/skipnet.pte")
    argv = ["taskset", "80", *loader(manifest), f"{BUNDLE_ON_PHONE}/{manifest.runner}"]
    argv += ["--model", "/data/local/tmp/mobilebench/models/skipnet.pte", "--warmup", "1", "--iterations", "1"]
    result = arm64_device.run(argv, timeout_s=300)
    assert result.exit_code == 0, result.stdout[-500:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"event"')]
    assert [e["event"] for e in events].count("iteration") == 2 and events[-1]["event"] == "summary"


def test_an_x86_64_program_is_refused_like_a_phone_refuses_it(arm64_device) -> None:
    host_runner = project_root() / "android_app" / "build" / "host" / "mobilebench_runner"
    arm64_device.push(host_runner, "/data/local/tmp/mobilebench/bin/mobilebench_runner", mode=0o755)
    for argv in (["/data/local/tmp/mobilebench/bin/mobilebench_runner", "--version"], ["taskset", "80", "/data/local/tmp/mobilebench/bin/mobilebench_runner", "--version"]):
        result = arm64_device.run(argv, timeout_s=30)
        assert result.exit_code == 126 and "Exec format error" in result.stdout, result.stdout
        assert start_failure(result).startswith("exec format error")
    # The phone's own toolbox still runs (it stands for the phone's system binaries).
    assert arm64_device.run(["sh", "-c", "echo ok"], timeout_s=10).stdout == "ok\n"


def test_start_failures_are_named_the_way_a_phone_shows_them() -> None:
    def reason(code: int, out: str) -> str | None:
        return start_failure(CommandResult(out, code, 0.1))

    assert reason(0, '{"event":"version"}') is None
    assert reason(126, "sh: ./r: Permission denied").startswith("exec not permitted")
    assert reason(159, "").startswith("a system call was refused")
    assert reason(127, "ld-linux-aarch64.so.1: No such file or directory").startswith("not found")
    assert reason(127, "error while loading: ELF load command address/offset not properly aligned").startswith("page size")
    assert reason(139, "").startswith("killed by SIGSEGV")
    assert reason(2, "usage").startswith("exit status 2")


@pytest.mark.slow
def test_devices_check_starts_the_bundle_on_an_arm64_phone(arm64_phone, tmp_path: Path) -> None:
    (tmp_path / "devices.toml").write_text(f'[emulator]\naddress = "{arm64_phone.address}"\n')

    def check() -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "mobilebench.cli.main", "devices", "emulator", "--check", "--format", "json"]
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    done = check()
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["state"]["abi"] == "arm64-v8a"
    assert (row["runner_check"]["build"], row["runner_check"]["status"]) == ("linux-arm64", "ok")
    # A loader that dies at start is reported with the reason and the NDK fallback.
    arm64_phone.faults.crash_next_command = True
    arm64_phone.faults.crash_match = "mobilebench_runner"
    done = check()
    assert done.returncode == 1
    (row,) = json.loads(done.stdout)
    detail = row["runner_check"]["detail"]
    assert "linux-arm64 bundle of mobilebench_runner" in detail and "killed by SIGSEGV" in detail, detail
    assert "build the runner with the NDK instead" in detail
    assert done.stderr.count("\n") == 1


def test_the_emulator_knows_which_abis_it_runs(tmp_path: Path) -> None:
    from mobilebench.errors import UsageError

    with pytest.raises(UsageError, match=r"programs, not 'mips'"):
        PhoneEmulator(tmp_path / "phone", abi="mips")
