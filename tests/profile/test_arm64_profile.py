"""``mobilebench profile`` on an arm64 phone (``emulator --abi arm64-v8a``): the session
learns the device's ABI, pushes the runner bundle (once) and starts it through its own
loader under taskset; a runner of the wrong ABI is refused with a clear line.

Under qemu a latency is not a latency (100-500x a phone's): few iterations, small input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobilebench.bench.runner_builds import NATIVE_RUNNER_BUILDS
from mobilebench.device.emulator import PhoneEmulator
from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow

SMALL = ["mobilenet_v3_small", "--input-size", "96", "--warmup", "0", "--iterations", "2", "--runner-timeout", "300"]


@pytest.fixture
def arm64_phone(tmp_path: Path, adb_key: Path):
    if not (NATIVE_RUNNER_BUILDS["linux-arm64"] / "manifest.json").is_file():
        pytest.fail("the arm64 bundle is not built; run `make runner-arm64`", pytrace=False)
    with PhoneEmulator(tmp_path / "arm64", abi="arm64-v8a", accepted_keys=[adb_key.with_name("adbkey.pub")]) as phone:
        yield phone


def test_profile_on_an_arm64_phone_runs_the_bundle(cli, arm64_phone, tmp_path: Path) -> None:
    db = tmp_path / "arm64.sqlite"
    args = ["profile", *SMALL, "--device", "emulator", "--address", arm64_phone.address, "--db", db, "--format", "json"]
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    (run,) = json.loads(first.stdout)
    assert run["status"] == "ok" and run["n"] == 2 and run["emulated"]
    assert (run["abi"], run["runner_build"]) == ("arm64-v8a", "linux-arm64")
    bundle = Path(arm64_phone.root.root, "data/local/tmp/mobilebench/bin/linux-arm64")
    mtimes = {p: p.stat().st_mtime_ns for p in bundle.rglob("*") if p.is_file()}
    assert len(mtimes) > 5  # the runner, the loader, glibc, libstdc++, ExecuTorch ...
    second = cli(*args)
    assert second.exit_code == 0, second.stderr
    assert {p: p.stat().st_mtime_ns for p in bundle.rglob("*") if p.is_file()} == mtimes  # nothing pushed again


def test_a_runner_of_the_wrong_abi_is_refused_by_name(cli, arm64_phone, tmp_path: Path) -> None:
    host_build = NATIVE_RUNNER_BUILDS["host"]
    devices = tmp_path / "devices.toml"
    devices.write_text(
        f'[x86_on_arm]\ntransport = "adb-tcp"\naddress = "{arm64_phone.address}"\ncpus = [7]\nemulated = true\n'
        f'[x86_on_arm.runners]\nexecutorch = "mobilebench_runner:{host_build}"\n'
    )
    db = tmp_path / "wrong.sqlite"
    result = cli("profile", *SMALL, "--device", "x86_on_arm", "--devices-file", devices, "--db", db)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "wrong ABI" in line and "the device is arm64-v8a: it needs the linux-arm64 bundle" in line, line
    with ResultsStore(db, create=False) as store:
        (run,) = store.runs()
        assert run.status == "failed" and "wrong ABI" in run.error
