"""Keeping the PyTorch / ExecuTorch / ONNX tool chain quiet while mobilebench reports.

The libraries log internal traces, deprecation notes and graph dumps while they load
programs, export and lower models, and ExecuTorch's runtime writes to file descriptor 2
directly and to ``sys.stderr`` from its Python bindings. mobilebench reports the outcome itself (one line on failure), so
both the zoo (loading ``.pt2`` programs) and the exporter (capture, lowering, running
artifacts) wrap those calls in the helpers here.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType

from mobilebench.errors import MobilebenchError

#: Loggers of the tool chain that print while working.
NOISY_LOGGERS = ("torch", "torchao", "executorch", "onnxscript", "onnx_ir")


@contextlib.contextmanager
def quiet_toolchain() -> Iterator[None]:
    """Silence the tool chain for the block: its logging, Python warnings, and what it
    prints to ``sys.stdout``/``sys.stderr`` (torch.export prints a partial graph dump on
    failure). A progress display must hold its own reference to the terminal."""
    saved = {}
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def quiet_import(name: str) -> ModuleType:
    """Import a tool-chain module with the tool chain quiet: importing ExecuTorch's runtime
    imports torchao, which logs every CUDA kernel library it cannot load."""
    with quiet_toolchain():
        return importlib.import_module(name)


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Send file descriptor 2 to a temporary file for the block, and ``sys.stderr`` to a
    buffer: the ExecuTorch runtime's C++ code logs CPU probing and thread-pool resets to
    the first, its Python bindings to the second (which is not fd 2 under pytest or in a
    notebook). Yields a list that holds the captured text once the block ends, for error
    messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    python_side = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(python_side):
                yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace") + python_side.getvalue())


def last_lines(text: str, count: int = 3) -> str:
    """The last ``count`` non-empty lines of a captured log, joined with `` | ``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


@contextlib.contextmanager
def native_errors(message: Callable[[Exception], str], error: type[MobilebenchError] = MobilebenchError) -> Iterator[None]:
    """Run native runtime calls with their C++ log captured (:func:`captured_native_stderr`);
    an exception from them becomes one ``error`` saying ``message(exception)`` and the
    log's last lines. The pybind layers raise assorted RuntimeError/ValueError types."""
    with captured_native_stderr() as log:
        try:
            yield
        except Exception as exc:
            failure: Exception | None = exc
        else:
            failure = None
    if failure is not None:
        detail = last_lines(log[0]) if log else ""
        raise error(message(failure) + (f" (runtime log: {detail})" if detail else "")) from None
