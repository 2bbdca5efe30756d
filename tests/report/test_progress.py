"""The profile command's live display: shown once there is something to watch."""

from __future__ import annotations

import threading
import time

from mobilebench.report.progress import LiveProgress


def _wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]


def test_quick_steps_draw_nothing_until_the_runner_starts(terminal) -> None:
    written = terminal()
    hooks = LiveProgress()
    hooks.show_after_s = 30.0  # no step here may be slow enough
    with hooks:
        hooks.stage("connecting to pixel4")
        hooks.stage("reading pixel4 state")
        hooks.transfer("net.pte", 2_000_000, 2_000_000)
        hooks.stage("running mobilebench_runner on cpu7")
        hooks.iteration(0, 8)
        assert not hooks.shown and written() == ""
        hooks.runner_started()
        assert hooks.shown
        hooks.iteration(8, 8)
    drawn = written()
    # The stage and the bars reported before the display started are all in it.
    assert "\x1b[" in drawn
    assert "running mobilebench_runner on cpu7" in drawn and "8/8" in drawn and "push net.pte" in drawn
    assert _timers() == []


def test_a_slow_step_brings_up_the_display(terminal) -> None:
    written = terminal()
    hooks = LiveProgress()
    hooks.show_after_s = 0.05
    with hooks:
        hooks.stage("pushing net.pte")
        hooks.transfer("net.pte", 5_000_000, 10_000_000)
        assert _wait_until(lambda: hooks.shown)  # by the timer, with no further report
        hooks.transfer("net.pte", 10_000_000, 10_000_000)
    drawn = written()
    assert "pushing net.pte" in drawn and "10.0/10.0 MB" in drawn


def test_no_display_during_an_export_and_none_after_the_session(terminal) -> None:
    written = terminal()
    hooks = LiveProgress()
    hooks.show_after_s = 0.05
    with hooks:
        with hooks.exporting("skipnet_m") as exporter_draws:
            assert exporter_draws is True  # the exporter shows its own steps
            time.sleep(0.3)
            assert not hooks.shown  # no second live display over the exporter's
        hooks.stage("connecting to pixel4")
    time.sleep(0.3)
    assert not hooks.shown and written() == ""
    assert _timers() == []  # nothing left to fire, nothing keeps the process alive
