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
    is stored as a throttling warning."""
    phone.thermal = ThermalModel(heat_rate_c_per_s=40.0, tau_s=30.0)
    config = ProfileConfig(device="emulator", address=phone.address, warmup=2, iterations=40)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    m = outcome.record.meta
    assert m.temp_c_before == pytest.approx(30.0, abs=0.5)
    assert m.temp_c_after > m.temp_c_before + 2.0
    rose = [w for w in m.warnings if w.startswith("temperature rose")]
    assert bool(rose) == (m.temp_c_after - m.temp_c_before > 10.0)
    # The idle-to-busy frequency ramp of schedutil is not reported as throttling.
    assert not [w for w in m.warnings if "frequency changed" in w]


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
    # The runner's first output was announced once, before any iteration was counted
    # (only the initial "0 of 8" had been reported).
    assert hooks.runner_started_after == [1]
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


def test_a_warm_profile_process_loads_only_what_it_needs(phone, tmp_path: Path, skipnet_pte, runner_binary) -> None:
    """The CLI's fixed cost is judged next to the measurement (benchmarks/
    bench_profile_overhead.py). A fresh process profiling a cached model on an emulated
    phone must not load what that path never uses: the exporter's toolchain, the ADB
    client's asyncio and libusb, the key library (signing is ours), temp-file and
    compression modules (rich only draws the table format)."""
    import subprocess
    import sys
    import time

    # The cache trusts an artifact's size/mtime stamp once the file is a timestamp tick
    # old; until then every lookup re-hashes it (and that is not the path measured here).
    time.sleep(max(0.0, 1.1 - (time.time() - skipnet_pte.path.stat().st_mtime)))
    unwanted = ("torch", "numpy", "executorch", "onnxruntime", "asyncio", "usb1", "cryptography", "tempfile", "shutil", "rich")
    code = (
        "import json, sys\n"
        "from mobilebench.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({unwanted!r}))), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    argv = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "1", "--iterations", "6"]
    argv += ["--db", str(tmp_path / "lean.sqlite"), "--format", "json"]
    loaded = []
    for _ in ("first: pushes the model and the runner", "second: everything in place"):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        (run,) = json.loads(done.stdout)
        assert run["status"] == "ok" and run["n"] == 6
        loaded.append(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "tempfile" in loaded[0]  # the push ledger is written atomically: the check can see it
    assert loaded[1] == []


def test_the_table_renderer_is_imported_while_the_runner_loads(phone, tmp_path: Path, skipnet_pte, runner_binary) -> None:
    """The table format needs rich only after the run; the CLI imports it when the
    runner's first output arrives (the model is loading and the CLI only waits), so it
    does not add to the command's wall time. Piped, as in a script: no progress display."""
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import mobilebench.bench.session as session\n"
        "from mobilebench.cli.main import main\n"
        "rich_at_start = 'rich' in sys.modules\n"
        "seen = []  # for each piece of runner output: was rich's table loaded by then?\n"
        "feed = session.IterationCounter.feed\n"
        "session.IterationCounter.feed = lambda self, text: (seen.append('rich.table' in sys.modules), feed(self, text))[1]\n"
        "code = main(sys.argv[1:])\n"
        "print(json.dumps([rich_at_start, seen]), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    argv = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "1", "--iterations", "6"]
    argv += ["--db", str(tmp_path / "table.sqlite")]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rich_at_start, seen = json.loads(done.stderr.strip().splitlines()[-1])
    assert rich_at_start is False
    assert seen and all(seen), seen  # loaded before the first output was even counted
    assert "median ms" in done.stdout and "skipnet_m on emulator" in done.stdout
