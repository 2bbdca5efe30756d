"""Faults injected by the phone emulator during a profile: each one ends in a clear
one-line error, the run stored as ``failed`` with that error, the runs before it intact,
and no file on the phone that looks complete but is not."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.bench.session import ProfileConfig, ProfileSession
from mobilebench.errors import MobilebenchError
from mobilebench.store import ResultsStore

from .conftest import WORKDIR, RecordingHooks, phone_path

pytestmark = pytest.mark.slow


def assert_one_line(message: str, *needles: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    for needle in needles:
        assert needle in message, message


def only_ok_then_failed(store: ResultsStore) -> tuple[list, object]:
    runs = sorted(store.runs(), key=lambda r: r.id)
    *earlier, last = runs
    assert all(r.status == "ok" and r.stats is not None for r in earlier)
    assert last.status == "failed" and last.finished_at is not None and store.samples(last.id) == []
    return earlier, last


def test_runner_hang_times_out(phone, store, skipnet, skipnet_pte) -> None:
    config = ProfileConfig(device="emulator", address=phone.address, warmup=1, iterations=3, runner_timeout_s=3)
    ProfileSession(config, store).run([skipnet])  # an ok run first: it must survive
    phone.faults.hang_next_command = True
    phone.faults.hang_match = "mobilebench_runner"  # not the state read or the pushes before it
    with pytest.raises(MobilebenchError) as info:
        ProfileSession(config, store).run([skipnet])
    assert_one_line(str(info.value), "skipnet_m on emulator (run 2, stored as failed)", "did not finish within 3 s", "--runner-timeout")
    (ok,), failed = only_ok_then_failed(store)
    assert "did not finish within 3 s" in failed.error and failed.meta.device_model == "Pixel 4"
    assert ok.stats.n == 3
    # The device is usable again: a new profile on the same phone works.
    ProfileSession(config, store).run([skipnet])


def test_runner_crash_through_the_cli(cli, phone, tmp_path: Path, skipnet_pte) -> None:
    db = tmp_path / "crash.sqlite"
    args = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "1", "--iterations", "4", "--db", str(db)]
    assert cli(*args).exit_code == 0
    phone.faults.crash_next_command = True
    phone.faults.crash_match = "mobilebench_runner"  # not the state read or the pushes before it
    result = cli(*args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: skipnet_m on emulator (run 2, stored as failed): ")
    assert_one_line(lines[0], "mobilebench_runner killed by SIGSEGV (exit status 139)")
    with ResultsStore(db, create=False) as store:
        (ok,), failed = only_ok_then_failed(store)
        assert "SIGSEGV" in failed.error and failed.meta.temp_c_before is not None


def test_dropped_connection_mid_push_is_retried_once(phone, store, skipnet, skipnet_pte) -> None:
    """One drop half-way through the model: the push is repeated and the run succeeds."""
    size = skipnet_pte.path.stat().st_size
    armed = []

    def drop_half_way(what: str, done: int, total: int) -> None:
        if what == skipnet_pte.path.name and not armed:
            armed.append(True)
            phone.faults.drop_after_bytes = size // 2

    hooks = RecordingHooks()
    hooks.transfer = drop_half_way  # type: ignore[method-assign]
    config = ProfileConfig(device="emulator", address=phone.address, warmup=1, iterations=3)
    (outcome,) = ProfileSession(config, store, hooks=hooks).run([skipnet])
    assert outcome.record.status == "ok" and phone.faults.drop_after_bytes is None  # it fired
    model = phone_path(phone, *WORKDIR, "models", f"{skipnet_pte.sha256[:16]}.pte")
    assert model.read_bytes() == skipnet_pte.path.read_bytes()


def test_connection_dropping_on_every_push_attempt_fails_the_run(phone, store, skipnet, skipnet_pte, tmp_path: Path) -> None:
    config = ProfileConfig(device="emulator", address=phone.address, warmup=1, iterations=3)
    ProfileSession(config, store).run([skipnet])  # an ok run, with the model pushed

    # Another model file (different bytes): every attempt to push it drops half-way.
    data = bytearray(skipnet_pte.path.read_bytes())
    data[-1] ^= 0xFF
    other = tmp_path / "other.pte"
    other.write_bytes(bytes(data))
    artifact = replace(skipnet_pte, path=other, sha256=hashlib.sha256(bytes(data)).hexdigest())

    def drop_each_attempt(what: str, done: int, total: int) -> None:
        if done == 0:  # a new attempt starts
            phone.faults.drop_after_bytes = len(data) // 2

    hooks = RecordingHooks()
    hooks.transfer = drop_each_attempt  # type: ignore[method-assign]
    session = ProfileSession(config, store, hooks=hooks, export=lambda resolved, options, show: artifact)
    with pytest.raises(MobilebenchError) as info:
        session.run([skipnet])
    assert_one_line(str(info.value), "(run 2, stored as failed)", "connection dropped during push", "retried once")
    earlier, failed = only_ok_then_failed(store)
    assert "connection dropped" in failed.error
    # Only the earlier, complete model; of the half-pushed one, not even a temporary file.
    models = phone_path(phone, *WORKDIR, "models")
    assert [p.name for p in models.iterdir()] == [f"{skipnet_pte.sha256[:16]}.pte"]
    assert (models / f"{skipnet_pte.sha256[:16]}.pte").read_bytes() == skipnet_pte.path.read_bytes()


def test_refused_push_fails_the_run(phone, store, skipnet, skipnet_pte) -> None:
    phone.faults.fail_next_push = "No space left on device"
    config = ProfileConfig(device="emulator", address=phone.address, warmup=1, iterations=3)
    with pytest.raises(MobilebenchError) as info:
        ProfileSession(config, store).run([skipnet])
    assert_one_line(str(info.value), "(run 1, stored as failed)", "no space left")
    (failed,) = store.runs()
    assert failed.status == "failed" and "no space left" in failed.error
    assert not list(phone_path(phone, *WORKDIR).rglob("*.pte"))


def test_hot_phone_past_the_cool_down_timeout_through_the_cli(cli, phone, tmp_path: Path, skipnet_pte) -> None:
    db = tmp_path / "hot.sqlite"
    base = ["profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "1", "--iterations", "3", "--db", str(db)]
    assert cli(*base, "--cooldown-c", "40").exit_code == 0  # cool phone: no waiting
    phone.faults.hot_zones = {"cpu-1-7-usr": 95.0}
    phone.refresh()
    result = cli(*base, "--cooldown-c", "40", "--cooldown-timeout", "1")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert_one_line(lines[0], "error: skipnet_m on emulator (run 2, stored as failed)", "cpu7 (cpu-1-7-usr) stayed at 95.0 C", "--cooldown-timeout")
    with ResultsStore(db, create=False) as store:
        (ok,), failed = only_ok_then_failed(store)
        assert failed.meta.temp_c_before == 95.0 and "cool-down" in failed.error


def test_cool_down_waits_until_the_core_is_cool(phone, store, skipnet, skipnet_pte) -> None:
    phone.faults.hot_zones = {"cpu-1-7-usr": 60.0}
    phone.refresh()

    class CoolsAfterTwoPolls(RecordingHooks):
        def stage(self, text: str) -> None:
            super().stage(text)
            if sum(s.startswith("cooling down") for s in self.stages) == 2:
                phone.faults.hot_zones = {}  # the core cools down
                phone.refresh()

    hooks = CoolsAfterTwoPolls()
    config = ProfileConfig(
        device="emulator", address=phone.address, warmup=1, iterations=3, cooldown_c=40, cooldown_timeout_s=60, cooldown_poll_s=0.1
    )
    (outcome,) = ProfileSession(config, store, hooks=hooks).run([skipnet])
    waits = [s for s in hooks.stages if s.startswith("cooling down")]
    assert waits == ["cooling down: cpu7 at 60.0 C, waiting for < 40 C"] * 2
    assert hooks.stages.index(waits[0]) < min(i for i, s in enumerate(hooks.stages) if s.startswith("running"))
    m = outcome.record.meta
    assert outcome.record.status == "ok" and m.temp_c_before < 40 and m.state_before["cpu_temp_c"] < 40
