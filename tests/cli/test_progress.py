"""The CLI's session display: drawn when the session reports, still while a runner on
this computer measures, no refresh thread of its own."""

from __future__ import annotations

import threading

from mobilebench.cli.progress import SessionProgress


def test_stages_and_bars_are_drawn_as_the_session_reports(terminal) -> None:
    written = terminal()
    threads = threading.active_count()
    with SessionProgress() as hooks:
        hooks.min_redraw_s = 0.0
        assert threading.active_count() == threads  # no refresh thread
        hooks.stage("connecting to pixel4")
        assert "connecting to pixel4" in written()
        hooks.transfer("net.pte", 1_000_000, 2_000_000)
        assert "push net.pte" in written()
        with hooks.measuring(on_this_computer=False):  # a phone: the display follows it
            hooks.iteration(3, 8)
            assert "3/8" in written()


def test_nothing_is_drawn_while_a_runner_on_this_computer_measures(terminal) -> None:
    written = terminal()
    with SessionProgress() as hooks:
        hooks.min_redraw_s = 0.0
        hooks.stage("running mobilebench_runner on cpu1")
        with hooks.measuring(on_this_computer=True):
            assert "display paused" in written()
            for done in range(1, 9):
                hooks.iteration(done, 8)
                hooks.stage("still running")
            assert written() == ""
        assert "8/8" in written()  # recorded meanwhile, drawn once the window ends


def test_the_exports_stages_are_drawn_on_the_display(terminal) -> None:
    written = terminal()
    with SessionProgress() as hooks:
        hooks.stage("exporting skipnet_m")
        written()
        with hooks.exporting("skipnet_m") as export_hooks:
            export_hooks.stage_started("lower", "lower to XNNPACK")
            assert "exporting skipnet_m: lower to XNNPACK" in written()
            export_hooks.stage_started("quantize", "quantize int8", total=4)
            export_hooks.advanced("quantize")
            export_hooks.stage_finished("quantize", 0.1)
    assert "1/4" in written()  # a bar for the calibration inputs


def test_labels_are_data(terminal) -> None:
    written = terminal()
    with SessionProgress() as hooks:
        hooks.stage("pushing [bold]x[/] \x1b]0;title\x07")
        shown = written()
    assert "[bold]x[/]" in shown and "\\x1b]0;title\\x07" in shown and "\x1b]0;" not in shown
