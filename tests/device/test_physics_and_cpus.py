"""The emulated phone's cores: taskset mapping, heating under load, cooling, frequencies."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import pytest

from mobilebench import paths
from mobilebench.device import connect
from mobilebench.device.emulator import PhoneEmulator, ThermalModel
from mobilebench.errors import UsageError

from .conftest import emulator_profile


def test_thermal_model_is_the_documented_first_order_system() -> None:
    model = ThermalModel(ambient_c=30.0, heat_rate_c_per_s=2.0, tau_s=10.0)
    # Heating from ambient at full load: T = ambient + rate*tau*(1 - exp(-t/tau)).
    model.step(5.0, range(8), {7: 1.0})
    assert model.temp_c(7) == pytest.approx(30 + 20 * (1 - math.exp(-0.5)))
    assert model.temp_c(0) == pytest.approx(30.0)  # idle cores stay at ambient
    # The exact solution does not depend on the step size.
    fine = ThermalModel(ambient_c=30.0, heat_rate_c_per_s=2.0, tau_s=10.0)
    for _ in range(50):
        fine.step(0.1, range(8), {7: 1.0})
    assert fine.temp_c(7) == pytest.approx(model.temp_c(7))
    # Cooling: the excess over ambient decays with time constant tau.
    model.set_temp_c(80.0, cpu=7)
    model.step(10.0, range(8), {})
    assert model.temp_c(7) == pytest.approx(30 + 50 * math.exp(-1))
    model.set_rates(tau_s=1.0, heat_rate_c_per_s=0.0)
    model.step(20.0, range(8), {7: 1.0})
    assert model.temp_c(7) == pytest.approx(30.0, abs=1e-6)
    with pytest.raises(ValueError):
        ThermalModel(tau_s=0)


@pytest.mark.parametrize(
    ("args", "phone_cpus"),
    [(["80"], "7"), (["0x40"], "6"), (["-c", "7"], "7"), (["-c", "4-5,7"], "4,5,7"), (["-a", "f0"], "4,5,6,7")],
)
def test_taskset_maps_phone_cpus_onto_host_cpus(device, args: list[str], phone_cpus: str) -> None:
    host = sorted(os.sched_getaffinity(0))
    expected = sorted({host[int(c) % len(host)] for c in phone_cpus.split(",")})
    result = device.run(["taskset", *args, "sh", "-c", 'echo "$MOBILEBENCH_EMU_CPUS"; grep Cpus_allowed_list /proc/self/status'], timeout_s=10)
    assert result.exit_code == 0, result.stdout
    marked, allowed = result.stdout.splitlines()
    assert marked == phone_cpus
    assert _parse_cpu_list(allowed.split(":")[1].strip()) == expected


def test_taskset_rejects_what_the_phone_lacks(device) -> None:
    for args in (["-c", "8"], ["100"], ["zz"], ["-c", "x"], ["-p", "80", "1"]):
        result = device.run(["taskset", *args, "true"], timeout_s=10)
        assert result.exit_code == 1 and result.stdout.startswith("taskset:"), args
    assert device.run(["taskset", "80", "sh", "-c", "exit 5"], timeout_s=10).exit_code == 5
    assert device.run(["taskset", "80", "no-such-program"], timeout_s=10).exit_code == 127


def _parse_cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


@pytest.mark.slow
def test_pinned_work_heats_its_core_and_idle_cools_it(phone_dir: Path, adb_key: Path) -> None:
    # Steep heating so that even a loop that gets a tenth of a loaded CPU shows clearly.
    thermal = ThermalModel(ambient_c=30.0, heat_rate_c_per_s=100.0, tau_s=3.0)
    with PhoneEmulator(phone_dir, accepted_keys=[adb_key.with_name("adbkey.pub")], thermal=thermal) as phone:
        with connect(emulator_profile(phone)) as dev:
            # Busy-loop on phone cpu7 until it is clearly hot; on a loaded machine the loop
            # gets less of a core and needs more rounds.
            for _ in range(5):
                busy = dev.run(["taskset", "80", "timeout", "1.5", "sh", "-c", "while :; do :; done"], timeout_s=20)
                assert busy.exit_code == 124  # timeout's status: the loop ran until stopped
                phone.refresh()
                hot = dev.read_state(7)
                if hot.cpu_temp_c > 40.0:
                    break
            assert hot.cpu_temp_c > 40.0, hot.thermal  # well above ambient
            zones = {z.type: z.temp_c for z in hot.thermal}
            assert zones["cpu-1-6-usr"] == zones["cpu-1-7-usr"] == hot.cpu_temp_c  # cpu7's two sensors
            assert zones["cpu-0-0-usr"] == pytest.approx(30.0)  # unpinned cores stay cool
            assert 30.0 < zones["battery"] < hot.cpu_temp_c
            time.sleep(1.5)
            phone.refresh()
            # Idle for 1.5 s with tau = 3 s: the excess over ambient shrinks to ~60%.
            assert dev.read_state(7).cpu_temp_c < 30.0 + 0.85 * (hot.cpu_temp_c - 30.0)
            # Tests can set rates and the temperature directly (here: hold it still).
            phone.thermal.set_rates(heat_rate_c_per_s=0.0, tau_s=1e9)
            phone.thermal.set_temp_c(70.0, cpu=7)
            phone.refresh()
            assert dev.read_state(7).cpu_temp_c == pytest.approx(70.0, abs=0.5)


def test_rooted_phone_can_fix_the_frequency(phone_dir: Path, adb_key: Path) -> None:
    with PhoneEmulator(phone_dir, accepted_keys=[adb_key.with_name("adbkey.pub")], rooted=True) as phone:
        with connect(emulator_profile(phone)) as dev:
            state = dev.read_state(7)
            assert state.rooted is True and state.cur_freq_khz == 825_600  # idle: minimum
            governor = "/sys/devices/system/cpu/cpu7/cpufreq/scaling_governor"
            assert dev.run(["sh", "-c", f"echo performance > {governor}"], timeout_s=10).exit_code == 0
            phone.refresh()
            state = dev.read_state(7)
            assert (state.governor, state.cur_freq_khz) == ("performance", 2_841_600)


def test_unrooted_phone_cannot_change_the_governor(device) -> None:
    governor = "/sys/devices/system/cpu/cpu7/cpufreq/scaling_governor"
    assert device.run(["sh", "-c", f"echo performance > {governor}"], timeout_s=10).exit_code != 0
    assert device.read_state(7).governor == "schedutil"


def test_pixel3_layout(phone_dir: Path, adb_key: Path) -> None:
    with PhoneEmulator(phone_dir, profile="pixel3", accepted_keys=[adb_key.with_name("adbkey.pub")]) as phone:
        with connect(emulator_profile(phone)) as dev:
            state = dev.read_state(7)
            assert (state.model, state.board, state.max_freq_khz) == ("Pixel 3", "sdm845", 2_500_000)
            assert dev.run(["cat", "/sys/devices/system/cpu/possible"], timeout_s=10).stdout == "0-7\n"


@pytest.mark.slow
def test_two_phones_on_their_own_host_cpus_run_their_runners_there(tmp_path: Path, adb_key: Path, skipnet_pte: Path) -> None:
    """--host-cpu: each emulated phone's pinned core is one CPU of this computer, so two
    phones measured at once do not share a core (the runner reports the CPU of each
    iteration)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    runner = paths.project_root() / "android_app" / "build" / "host" / "mobilebench_runner"
    accepted = [adb_key.with_name("adbkey.pub")]
    seen: dict[int, set[int]] = {}

    def measure(phone: PhoneEmulator, host_cpu: int) -> None:
        with connect(emulator_profile(phone)) as dev:
            dev.push(runner, "/data/local/tmp/r", mode=0o755)
            dev.push(skipnet_pte, "/data/local/tmp/m.pte")
            result = dev.run(["taskset", "80", "/data/local/tmp/r", "--model", "/data/local/tmp/m.pte", "--warmup", "1", "--iterations", "8"], timeout_s=120)
            assert result.exit_code == 0, result.stdout
            events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"event"')]
            seen[host_cpu] = {e["cpu"] for e in events if e["event"] == "iteration"}

    with PhoneEmulator(tmp_path / "a", host_cpus=[cpus[0]], accepted_keys=accepted) as a, PhoneEmulator(
        tmp_path / "b", host_cpus=[cpus[1]], accepted_keys=accepted
    ) as b:
        threads = [threading.Thread(target=measure, args=(a, cpus[0])), threading.Thread(target=measure, args=(b, cpus[1]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    assert seen == {cpus[0]: {cpus[0]}, cpus[1]: {cpus[1]}}
    with pytest.raises(UsageError, match="--host-cpu 4096: this process may use CPUs"):
        PhoneEmulator(tmp_path / "c", host_cpus=[4096])
