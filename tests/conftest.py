"""Suite-wide set-up: isolate every path mobilebench writes, and gate device/GPU tests.

Area-specific fixtures live in ``tests/<area>/conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# A PostgreSQL server and databases on either engine (postgres, postgres_url, results_db).
pytest_plugins = ["tests.pg"]

_HOME: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    # One throw-away home per test session: tests never touch the user's config, key
    # pair, artifact cache or results database. The artifact cache is shared across the
    # session on purpose, so each model is exported once per run.
    global _HOME
    _HOME = base = Path(tempfile.mkdtemp(prefix="mobilebench-tests-"))
    os.environ["MOBILEBENCH_CONFIG_DIR"] = str(base / "config")
    os.environ["MOBILEBENCH_CACHE_DIR"] = str(base / "cache")
    os.environ["MOBILEBENCH_DB"] = str(base / "results.sqlite")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _HOME is not None:
        shutil.rmtree(_HOME, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    real_device = os.environ.get("MOBILEBENCH_DEVICE")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
        if item.get_closest_marker("device") and not real_device:
            item.add_marker(pytest.mark.skip(reason="set MOBILEBENCH_DEVICE=<profile> with a phone attached"))
        if item.get_closest_marker("gpu") and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``cli("profile", "skipnet_m", ...)`` runs ``mobilebench ARGS`` in this process
    through the real entry point (argument parsing, ``error: ...`` lines, exit codes)
    and returns a :class:`CliResult`. Rich tables get 200 columns, so no wrapping."""
    from mobilebench.cli.main import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        monkeypatch.setenv("COLUMNS", "200")
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Call it at the start of the test: makes rich take the captured stderr for a
    terminal, and returns a reader of what was written to it. (Not done at fixture
    set-up: pytest swaps the captured streams between set-up and the test itself.)"""

    def start() -> Callable[[], str]:
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        monkeypatch.setenv("TERM", "xterm-256color")
        return lambda: capsys.readouterr().err

    return start


@pytest.fixture(scope="session")
def runner_binary() -> Path:
    """The native runner ``make runner`` builds for this computer (``make test`` does)."""
    from mobilebench.bench.runner_builds import NATIVE_RUNNER_BUILDS

    path = NATIVE_RUNNER_BUILDS["host"]
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"native runner not built: {path} is missing; run `make runner`", pytrace=False)
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for the test, then the previous setting.

    The models in the tests are small: on a shared 2-core machine, OpenMP threads
    contending with the other test processes made forwards 10-25x slower than one
    thread. Areas that run models opt in with an autouse fixture that requests this.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
