"""Which runner and build a device gets, what is pushed and how it starts; the bundle
manifest's checks; the wrong-ABI message."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.bench.measurement import RunnerRequest
from mobilebench.bench.runner_builds import (
    HOST_ABI,
    NATIVE_RUNNER_BUILDS,
    BundleFile,
    BundleManifest,
    PushFile,
    plan_runner,
    refused_for_its_abi,
    wrong_abi_message,
)
from mobilebench.device import CommandResult, get_profile, load_profiles
from mobilebench.errors import MobilebenchError, UsageError

WORKDIR = "/data/local/tmp/mobilebench"


def fake_bundle(folder: Path, *, runner: bytes = b"runner") -> Path:
    """A bundle-shaped folder (the plan only reads its manifest and file sizes)."""
    contents = {"mobilebench_runner": (runner, 0o755), "lib/ld-linux-aarch64.so.1": (b"ld", 0o755), "lib/libc.so.6": (b"c", 0o644)}
    (folder / "lib").mkdir(parents=True)
    files = []
    for relative, (data, mode) in contents.items():
        (folder / relative).write_bytes(data)
        files.append(BundleFile(relative, "0" * 64, len(data), mode))
    manifest = BundleManifest("mobilebench_runner", "lib/ld-linux-aarch64.so.1", "lib", tuple(files))
    (folder / "manifest.json").write_text(json.dumps(manifest.to_json()))
    return folder


@pytest.fixture
def builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """NATIVE_RUNNER_BUILDS pointed at tmp_path: a host binary and a bundle, no NDK build."""
    host = tmp_path / "host" / "mobilebench_runner"
    host.parent.mkdir()
    host.write_bytes(b"host")
    fake = {"host": host, "android-arm64-v8a": tmp_path / "ndk" / "mobilebench_runner", "linux-arm64": fake_bundle(tmp_path / "linux-arm64")}
    for key, path in fake.items():
        monkeypatch.setitem(NATIVE_RUNNER_BUILDS, key, path)
    return fake


def test_host_build_for_host_and_the_default_emulator(builds: dict[str, Path]) -> None:
    for name in ("host", "emulator"):
        plan = plan_runner(get_profile(name), "executorch")
        workdir = get_profile(name).workdir
        assert plan.adapter.name == "mobilebench_runner" and (plan.build, plan.abi) == ("host", HOST_ABI)
        assert plan.files == (PushFile(builds["host"], "bin/mobilebench_runner", 0o755),) and plan.launcher == ()
        assert plan.device_binary == f"{workdir}/bin/mobilebench_runner" and plan.local_binary == builds["host"]
    # An emulator reporting this computer's ABI is the same case.
    assert plan_runner(get_profile("emulator"), "executorch", abi=HOST_ABI).build == "host"


def test_an_arm64_device_gets_the_bundle_pushed_as_a_folder_and_started_through_its_loader(builds: dict[str, Path]) -> None:
    bundle = builds["linux-arm64"]
    for profile, abi in ((get_profile("pixel4"), None), (get_profile("pixel4"), "arm64-v8a"), (get_profile("emulator"), "aarch64")):
        plan = plan_runner(profile, "executorch", abi=abi)
        base = f"{WORKDIR}/bin/linux-arm64"
        assert (plan.build, plan.abi) == ("linux-arm64", "arm64-v8a")
        assert plan.device_binary == f"{base}/mobilebench_runner" and plan.local_binary == bundle / "mobilebench_runner"
        assert plan.launcher == (f"{base}/lib/ld-linux-aarch64.so.1", "--library-path", f"{base}/lib")
        assert plan.command(RunnerRequest("m.pte", warmup=1, iterations=2, threads=1))[:6] == [
            *plan.launcher, f"{base}/mobilebench_runner", "--model", "m.pte"
        ]
        assert set(plan.files) == {
            PushFile(bundle / "lib/ld-linux-aarch64.so.1", "bin/linux-arm64/lib/ld-linux-aarch64.so.1", 0o755),
            PushFile(bundle / "lib/libc.so.6", "bin/linux-arm64/lib/libc.so.6", 0o644),
            PushFile(bundle / "mobilebench_runner", "bin/linux-arm64/mobilebench_runner", 0o755),
        }


def test_the_ndk_build_wins_when_it_was_built(builds: dict[str, Path]) -> None:
    ndk = builds["android-arm64-v8a"]
    ndk.parent.mkdir()
    ndk.write_bytes(b"static")
    plan = plan_runner(get_profile("pixel4"), "executorch")
    assert (plan.build, plan.launcher, plan.files) == ("android-arm64-v8a", (), (PushFile(ndk, "bin/mobilebench_runner", 0o755),))


def test_missing_builds_say_how_to_make_them(builds: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NATIVE_RUNNER_BUILDS, "linux-arm64", tmp_path / "nothing")
    with pytest.raises(MobilebenchError, match=r"no arm64 build.*make runner-arm64.*build_android\.sh"):
        plan_runner(get_profile("pixel4"), "executorch")
    monkeypatch.setitem(NATIVE_RUNNER_BUILDS, "host", tmp_path / "nothing")
    with pytest.raises(MobilebenchError, match="host build of mobilebench_runner is missing.*make runner"):
        plan_runner(get_profile("host"), "executorch")
    with pytest.raises(MobilebenchError, match="ABI armeabi-v7a; mobilebench_runner is built for arm64-v8a"):
        plan_runner(get_profile("pixel4"), "executorch", abi="armeabi-v7a")


def test_bundle_manifest_is_checked(builds: dict[str, Path]) -> None:
    bundle = builds["linux-arm64"]
    manifest = BundleManifest.read(bundle)
    assert [f.mode for f in manifest.files] == [0o755, 0o755, 0o644]
    doc = json.loads((bundle / "manifest.json").read_text())
    assert doc["files"][0]["mode"] == "0755"  # octal text, as ls shows it

    (bundle / "lib/libc.so.6").write_bytes(b"changed")
    with pytest.raises(MobilebenchError, match=r"incomplete: lib/libc\.so\.6 is missing or changed; rebuild it with make runner-arm64"):
        BundleManifest.read(bundle)
    for bad in ("../../etc/passwd", "/etc/passwd", ""):
        (bundle / "manifest.json").write_text(json.dumps({**doc, "files": [{**doc["files"][0], "path": bad}]}))
        with pytest.raises(MobilebenchError, match="is not a valid bundle manifest.*not a path inside the bundle"):
            BundleManifest.read(bundle)
    (bundle / "manifest.json").write_text(json.dumps({**doc, "files": doc["files"][1:]}))
    with pytest.raises(MobilebenchError, match="does not list mobilebench_runner"):
        BundleManifest.read(bundle)
    (bundle / "manifest.json").write_text("{")
    with pytest.raises(MobilebenchError, match="not a valid bundle manifest"):
        BundleManifest.read(bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(MobilebenchError, match="has no manifest.json; rebuild it with make runner-arm64"):
        BundleManifest.read(bundle)


def test_wrong_abi_names_the_build_that_fits(builds: dict[str, Path]) -> None:
    emulator = get_profile("emulator")
    pushed = plan_runner(emulator, "executorch")  # the host build: this computer's ABI assumed
    assert wrong_abi_message(pushed, emulator, "arm64-v8a") == (
        "wrong ABI: device 'emulator' refused to execute the host build of mobilebench_runner (make runner) "
        "(exec format error); the device is arm64-v8a: it needs the linux-arm64 bundle of mobilebench_runner "
        "(make runner-arm64)"
    )
    assert wrong_abi_message(pushed, emulator, None).endswith("its ABI is unknown (getprop ro.product.cpu.abi gave nothing)")
    assert wrong_abi_message(pushed, emulator, "mips").endswith("the device is mips, for which mobilebench_runner has no build")
    assert refused_for_its_abi(CommandResult("taskset: exec mobilebench_runner: Exec format error\n", 126, 0.1))
    assert refused_for_its_abi(CommandResult("/system/bin/sh: ./mobilebench_runner: not executable: 64-bit ELF file\n", 126, 0.1))
    assert not refused_for_its_abi(CommandResult("Segmentation fault\n", 139, 0.1))
    assert not refused_for_its_abi(CommandResult('{"event":"version"}\n', 0, 0.1))


def test_runners_per_profile_and_runtime(builds: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx = plan_runner(get_profile("emulator"), "onnx")
    assert (onnx.adapter.name, onnx.device_binary, onnx.files, onnx.build) == ("ort_python", sys.executable, (), None)
    # A phone's ONNX runner is a stock binary that must be located first.
    with pytest.raises(UsageError, match=r"say where onnxruntime_perf_test is.*runners\.onnx"):
        plan_runner(get_profile("pixel4"), "onnx")
    on_device = plan_runner(replace(get_profile("pixel4"), runners={"onnx": "onnxruntime_perf_test:/data/local/tmp/ort/perf"}), "onnx")
    assert (on_device.device_binary, on_device.files, on_device.local_binary) == ("/data/local/tmp/ort/perf", (), None)
    custom = plan_runner(replace(get_profile("pixel4"), runners={"executorch": f"mobilebench_runner:{builds['host']}"}), "executorch")
    assert (custom.files, custom.build) == ((PushFile(builds["host"], "bin/mobilebench_runner", 0o755),), None)
    with pytest.raises(UsageError, match="runs executorch models, not onnx"):
        plan_runner(replace(get_profile("host"), runners={"onnx": "mobilebench_runner"}), "onnx")
    with pytest.raises(UsageError, match="ort_python runner needs this computer's Python"):
        plan_runner(replace(get_profile("pixel4"), runners={"onnx": "ort_python"}), "onnx")

    # Profiles name runtimes as --runtime does; the older spelling "onnxruntime" is read as "onnx".
    monkeypatch.chdir(tmp_path)
    (tmp_path / "devices.toml").write_text('[lab]\ntransport = "adb-tcp"\ncpus = [4]\n\n[lab.runners]\nonnxruntime = "onnxruntime_perf_test:/data/local/tmp/p"\n')
    assert load_profiles()["lab"].runners == {"onnx": "onnxruntime_perf_test:/data/local/tmp/p"}
    assert all(set(p.runners) <= {"executorch", "onnx"} for p in load_profiles().values() if p.source == "built-in")

