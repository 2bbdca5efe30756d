"""Native runtime calls: their C++ log is kept off the terminal and a failure is one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.toolchain import native_errors


def test_a_native_failure_is_one_error_with_the_logs_tail(capfd) -> None:
    with pytest.raises(UsageError) as caught:
        with native_errors(lambda exc: f"cannot load x ({exc})", UsageError):
            os.write(2, b"probing cpu\nE 00:00 program.cpp:42] bad magic\n")
            raise RuntimeError("Failed to load program")
    log = "probing cpu | E 00:00 program.cpp:42] bad magic"
    assert str(caught.value) == f"cannot load x (Failed to load program) (runtime log: {log})"
    assert capfd.readouterr().err == ""  # the log went to the message, not the terminal
    with native_errors(lambda exc: "unused"):
        os.write(2, b"chatter\n")
    assert capfd.readouterr().err == ""


def test_the_bindings_log_through_sys_stderr_is_kept_too(capsys) -> None:
    """ExecuTorch's Python bindings print their log to ``sys.stderr``, which is not fd 2
    under pytest or in a notebook: that is captured as well."""
    from executorch.extension.pybindings import portable_lib

    capsys.readouterr()  # what importing it logged (torchao's CUDA kernels)
    with native_errors(lambda exc: "unused"):
        portable_lib._unsafe_reset_threadpool(1)
    assert capsys.readouterr().err == ""
    with pytest.raises(MobilebenchError, match=r"\(runtime log: .*python side\)$"):
        with native_errors(lambda exc: "failed"):
            print("python side", file=sys.stderr)
            raise RuntimeError("x")


def test_the_runtime_refuses_a_file_that_is_no_program(tmp_path: Path) -> None:
    from mobilebench.export.parity import ExecutorchSession

    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"\x00not a program" * 8)
    with pytest.raises(MobilebenchError, match=r"^the ExecuTorch runtime could not run garbage.pte: ") as caught:
        ExecutorchSession(garbage)
    assert "\n" not in str(caught.value)
