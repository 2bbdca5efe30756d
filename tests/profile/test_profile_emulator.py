"""End to end through the phone emulator: real ADB, real pushes, the native runner really
executing the pushed .pte inside the emulated phone, runs stored with the phone's state."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from mobilebench.bench.session import ProfileConfig, ProfileSession
from mobilebench.device.emulator import ThermalModel
from mobilebench.errors import MobilebenchError
from mobilebench.store import ResultsStore

from .conftest import PHONE_TMP, WORKDIR, RecordingHooks, phone_path

pytestmark = pytest.mark.slow


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_models_interleaved_through_the_cli(cli, phone, tmp_path: Path, skipnet_pte, mobilenet_pte, runner_binary) -> None:
    db = tmp_path / "cli.sqlite"
    result = cli(
        "profile", "skipnet_m", "mobilenet_v3_large",
        "--device", "emulator", "--address", phone.address,
        "--warmup", "2", "--iterations", "6", "--repeat", "2",
        "--db", str(db), "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)

    # A B A B, in the printed output and in the database.
    assert [r["model"] for r in printed] == ["skipnet_m", "mobilenet_v3_large"] * 2
    with ResultsStore(db, create=False) as store:
        stored = sorted(store.runs(), key=lambda r: r.id)
        assert [r.id for r in stored] == [r["id"] for r in printed]
        assert [r.meta.model for r in stored] == ["skipnet_m", "mobilenet_v3_large"] * 2
        samples = {r.id: store.samples(r.id) for r in stored}

    # The artifacts and the runner really are on the phone, byte for byte.
    workdir = phone_path(phone, *WORKDIR)
    for artifact in (skipnet_pte, mobilenet_pte):
        on_phone = workdir / "models" / f"{artifact.sha256[:16]}.pte"
        assert sha256(on_phone) == artifact.sha256
    assert sha256(workdir / "bin" / "mobilebench_runner") == sha256(runner_binary)
    assert not list(workdir.rglob("*.mbpart-*"))  # no temporary files left

    for record in stored:
        m, s = record.meta, record.stats
        assert record.status == "ok" and record.error is None and s is not None
        # Provenance from the emulated phone's getprop and sysfs.
        assert (m.device_profile, m.emulated, m.device_model, m.device_board) == ("emulator", True, "Pixel 4", "msmnile")
        assert m.android_version == "13" and "EMULATED" in (m.fingerprint or "")
        assert m.governor == "schedutil" and m.cpu == 7 and m.threads == 1
        assert m.max_freq_khz == 2_841_600  # cpu7, the prime core
        assert m.freq_khz_before in (825_600, 2_841_600) and m.freq_khz_after in (825_600, 2_841_600)
        assert m.temp_c_before is not None and m.temp_c_after is not None
        assert m.state_before["cpu_temp_zone"] == "cpu-1-7-usr"  # the prime core's sensor
        # What the runner itself reported: only a runner that ran the model says this.
        assert m.runner_name == "mobilebench_runner" and m.runner_version
        assert m.runtime_version and m.runtime_version.startswith("1.")  # ExecuTorch's version
        assert m.artifact_sha256 in (skipnet_pte.sha256, mobilenet_pte.sha256)
        assert s.n == 6 and s.load_ms and s.load_ms > 0 and 0 < s.median_ms < 10_000
        assert [x.warmup for x in samples[record.id]] == [True] * 2 + [False] * 6
        assert s.first_ms == samples[record.id][0].latency_ms
        # Noisy runs carry the warning, quiet ones do not.
        assert any(w.startswith("noisy: coefficient of variation") for w in m.warnings) == (s.cv > 0.05)
    # Different models, different latencies: the runner measured each pushed program.
    assert stored[0].meta.artifact_sha256 != stored[1].meta.artifact_sha256


def test_heat_from_the_run_is_recorded_and_flagged(phone, store, skipnet, skipnet_pte) -> None:
    """The emulator's cores heat while the pinned runner works (a fast-heating model here,
    so that a short run shows it); the stored temperatures reflect it and a large rise
    is stored as a throttling warning. The emulator credits a process's CPU time at its
    physics ticks (0.2 s) while the process lives: the run spans several of them even on
    a loaded machine."""
    phone.thermal = ThermalModel(heat_rate_c_per_s=40.0, tau_s=30.0)
    config = ProfileConfig(device="emulator", address=phone.address, warmup=2, iterations=150)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    m = outcome.record.meta
    assert m.temp_c_before == pytest.approx(30.0, abs=0.5)
    assert m.temp_c_after > m.temp_c_before + 2.0
    rose = [w for w in m.warnings if w.startswith("temperature rose")]
    assert bool(rose) == (m.temp_c_after - m.temp_c_before > 10.0)
    # The idle-to-busy frequency ramp of schedutil is not reported as throttling.
    assert not [w for w in m.warnings if "frequency changed" in w]


def test_a_run_that_starts_hot_without_a_cool_down_is_flagged(phone, store, skipnet, skipnet_pte) -> None:
    phone.thermal = ThermalModel(ambient_c=52.0)
    config = ProfileConfig(device="emulator", address=phone.address, warmup=1, iterations=3)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    (hot,) = [w for w in outcome.record.meta.warnings if "no cool-down" in w]
    assert "at 52.0 C" in hot and "--cooldown-c 40" in hot
    # A core at the usual 30 C gets no such warning.
    phone.thermal = ThermalModel(ambient_c=30.0)
    (cool,) = ProfileSession(config, store).run([skipnet])
    assert not [w for w in cool.record.meta.warnings if "no cool-down" in w]


def test_live_progress_and_pushes_only_when_changed(phone, store, skipnet, skipnet_pte) -> None:
    hooks = RecordingHooks()
    config = ProfileConfig(device="emulator", address=phone.address, warmup=2, iterations=6)
    ProfileSession(config, store, hooks=hooks).run([skipnet])
    # Iterations were counted from the runner's output while it ran (the runner flushes
    # each line; a slow reader may see several at once).
    counts = [done for done, _ in hooks.iterations]
    assert counts[0] == 0 and counts[-1] == 8 and counts == sorted(counts)
    assert any(0 < c < 8 for c in counts), counts
    assert {total for _, total in hooks.iterations} == {8}
    # One measuring window, on this computer (the emulator is on loopback), holding
    # every iteration report but the initial "0 of 8" and the final count after it.
    assert hooks.windows == [(True, 1, len(hooks.iterations) - 1)]
    (run,) = store.runs()
    assert run.meta.peak_rss_bytes > skipnet_pte.path.stat().st_size and run.stats.warm_load_ms > 0
    pushed_model = [t for t in hooks.transfers if t[0] == skipnet_pte.path.name]
    assert pushed_model[-1][1] == pushed_model[-1][2] == skipnet_pte.path.stat().st_size
    assert len(pushed_model) > 2  # chunks reported while the bytes moved

    # A second session finds identical files on the phone and pushes nothing.
    model_file = phone_path(phone, *WORKDIR, "models", f"{skipnet_pte.sha256[:16]}.pte")
    mtime = model_file.stat().st_mtime_ns
    again = RecordingHooks()
    ProfileSession(config, store, hooks=again).run([skipnet])
    assert model_file.stat().st_mtime_ns == mtime
    size = skipnet_pte.path.stat().st_size
    assert [t for t in again.transfers if t[0] == skipnet_pte.path.name] == [(skipnet_pte.path.name, size, size)]

    # Changed on the phone (same size, new mtime): hashed, found different, pushed again.
    data = bytearray(model_file.read_bytes())
    data[100] ^= 0xFF
    model_file.write_bytes(bytes(data))
    os.utime(model_file, ns=(mtime + 10**10, mtime + 10**10))
    ProfileSession(config, store).run([skipnet])
    assert model_file.read_bytes() == skipnet_pte.path.read_bytes()


def test_metacharacters_in_device_paths_are_quoted(phone, store, skipnet, skipnet_pte, tmp_path: Path) -> None:
    devices = tmp_path / "devices.toml"
    devices.write_text(
        '[evil]\ntransport = "adb-tcp"\ncpus = [7]\nemulated = true\n'
        "workdir = \"/data/local/tmp/mb $(touch /data/local/tmp/pwned); touch /data/local/tmp/pwned 'q\"\n"
    )
    config = ProfileConfig(device="evil", address=phone.address, devices_file=devices, warmup=1, iterations=2)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    assert outcome.record.status == "ok"
    tmp = phone_path(phone, *PHONE_TMP)
    assert not (tmp / "pwned").exists()
    pushed = [p for p in tmp.rglob("*.pte")]
    assert len(pushed) == 1 and "$(touch" in str(pushed[0])  # the literal directory name


def test_unknown_model_name_with_shell_metacharacters_is_rejected(cli, phone, tmp_path: Path) -> None:
    result = cli("profile", "a; touch /data/local/tmp/pwned", "--device", "emulator", "--address", phone.address, "--db", str(tmp_path / "x.sqlite"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "a; touch" in lines[0]
    assert "Traceback" not in result.stderr
    assert not phone_path(phone, *PHONE_TMP, "pwned").exists()
    assert not (tmp_path / "x.sqlite").exists()  # nothing was started


def test_a_warm_profile_process_does_not_load_the_exporter(phone, tmp_path: Path, skipnet_pte, runner_binary) -> None:
    """A cached artifact is profiled without importing torch, ExecuTorch's exporter or
    onnxruntime: seconds of every call that has nothing to export."""
    import subprocess
    import sys

    unwanted = ("torch", "executorch", "onnxruntime", "onnx")
    code = (
        "import json, sys\n"
        "from mobilebench.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({unwanted!r}))), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    argv = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "1", "--iterations", "6"]
    argv += ["--db", str(tmp_path / "lean.sqlite"), "--format", "json"]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)
    assert run["status"] == "ok" and run["n"] == 6
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


#: Child process: the real CLI on a terminal (the live display drawn), recording for
#: each runner window the process's CPU seconds, the wall seconds and how many times
#: the display redrew inside it.
WINDOW_PROBE = """
import contextlib, json, sys, time
from rich.live import Live
from mobilebench.cli import progress
from mobilebench.cli.main import main

redraws, windows, inside = [0], [], [False]
refresh = Live.refresh
def counting_refresh(self, *args, **kwargs):
    redraws[0] += inside[0]
    return refresh(self, *args, **kwargs)
Live.refresh = counting_refresh

measuring = progress.SessionProgress.measuring
@contextlib.contextmanager
def probed(self, *, on_this_computer):
    with measuring(self, on_this_computer=on_this_computer):
        cpu, wall, inside[0] = time.process_time(), time.monotonic(), True
        yield
        inside[0] = False
        windows.append({"cpu_s": time.process_time() - cpu, "wall_s": time.monotonic() - wall,
                        "redraws": redraws[0], "on_this_computer": on_this_computer})
progress.SessionProgress.measuring = probed
progress.on_a_terminal = lambda: True
code = main(sys.argv[1:])
print("WINDOWS " + json.dumps(windows), file=sys.__stdout__)
sys.exit(code)
"""


def test_nothing_of_the_toolkit_competes_with_a_runner_on_this_computer(phone, tmp_path: Path, skipnet_pte) -> None:
    """While a runner on this computer loads and iterates, the profile process draws
    nothing and uses almost no CPU (it only collects the runner's output)."""
    import subprocess
    import sys

    argv = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "2", "--iterations", "30"]
    argv += ["--db", str(tmp_path / "quiet.sqlite")]
    done = subprocess.run([sys.executable, "-c", WINDOW_PROBE, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("WINDOWS ")]
    (window,) = json.loads(line.removeprefix("WINDOWS "))
    assert window["on_this_computer"] is True and window["redraws"] == 0, window
    # 32 iterations of skipnet_m take well over 0.2 s; the process's share of it is
    # reading a few lines of output.
    assert window["wall_s"] > 0.2
    assert window["cpu_s"] < 0.02 + 0.05 * window["wall_s"], window
    assert "median ms" in done.stdout


def test_two_phones_are_profiled_in_parallel(cli, phone, adb_key, tmp_path: Path, skipnet_pte) -> None:
    """One worker per device: both phones measure at the same time, the model is exported
    once, and every run is stored."""
    from mobilebench.device.emulator import PhoneEmulator

    db = tmp_path / "two.sqlite"
    with PhoneEmulator(tmp_path / "second", accepted_keys=[adb_key.with_name("adbkey.pub")]) as second:
        args = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address]
        args += ["--device", "emulator", "--address", second.address, "--warmup", "2", "--iterations", "40"]
        result = cli(*args, "--db", db)
    assert result.exit_code == 0, result.stderr
    assert f"[emulator] connecting to emulator ({phone.address})" in result.stderr
    with ResultsStore(db, create=False) as store:
        runs = sorted(store.runs(), key=lambda r: r.meta.device_serial)
    assert len(runs) == 2 and all(r.status == "ok" for r in runs)
    assert {r.meta.device_serial for r in runs} == {phone.address, second.address}
    (a, b) = runs
    assert a.created_at < b.finished_at and b.created_at < a.finished_at  # the runs overlapped in time
    assert a.meta.artifact_sha256 == b.meta.artifact_sha256 == skipnet_pte.sha256


def test_a_phone_that_cannot_say_what_it_is_gives_no_result(phone, store, skipnet, skipnet_pte) -> None:
    """getprop answers nothing (the phone's properties are unreadable): its identity is
    unknown, so a `pixel4` profile stores no result that Table 2 could show as a Pixel 4's."""
    phone_path(phone, "system", "build.prop").write_text("")
    config = ProfileConfig(device="pixel4", address=phone.address, warmup=1, iterations=3)
    with pytest.raises(MobilebenchError, match="did not say what it is") as info:
        ProfileSession(config, store).run([skipnet])
    assert "\n" not in str(info.value)
    (run,) = store.runs()
    assert run.status == "failed" and run.stats is None and "did not say what it is" in run.error


def test_a_phone_profile_at_the_emulator_is_labelled_emulated(cli, phone, tmp_path: Path, skipnet_pte) -> None:
    """Only a device that proved it is a real phone fills a phone's column."""
    db = tmp_path / "labelled.sqlite"
    args = ["profile", "skipnet_m", "--device", "pixel4", "--address", phone.address, "--warmup", "1", "--iterations", "3"]
    result = cli(*args, "--db", db, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (run,) = json.loads(result.stdout)
    assert run["device_profile"] == "pixel4" and run["emulated"] is True and run["device_model"] == "Pixel 4"
