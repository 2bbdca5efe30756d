"""Fixtures for ``mobilebench profile``: exported zoo models, a phone emulator, the CLI.

Exports are session-scoped and land in the session's shared artifact cache
(MOBILEBENCH_CACHE_DIR, see tests/conftest.py), so each (model, runtime, dtype) is
exported once per test session, and the profile session itself then finds it cached.
The runner binary is the host build from ``make runner``: tests fail (not skip) when it
is missing.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilebench.bench.hooks import ProgressHooks
from mobilebench.export import Artifact, ExportOptions, export_model
from mobilebench.store import ResultsStore
from mobilebench.zoo.resolve import ResolvedModel, resolve_model

PHONE_TMP = ("data", "local", "tmp")  # /data/local/tmp under an emulator's root
WORKDIR = (*PHONE_TMP, "mobilebench")  # the built-in profiles' workdir


def _export(name: str, runtime: str = "executorch", dtype: str = "fp32") -> Artifact:
    return export_model(resolve_model(name), ExportOptions(runtime=runtime, dtype=dtype))


@pytest.fixture(scope="session")
def skipnet() -> ResolvedModel:
    return resolve_model("skipnet_m")


@pytest.fixture(scope="session")
def mobilenet() -> ResolvedModel:
    return resolve_model("mobilenet_v3_large")


@pytest.fixture(scope="session")
def skipnet_pte(runner_binary: Path) -> Artifact:
    return _export("skipnet_m")


@pytest.fixture(scope="session")
def mobilenet_pte(runner_binary: Path) -> Artifact:
    return _export("mobilenet_v3_large")


@pytest.fixture(scope="session")
def skipnet_int8_pte(runner_binary: Path) -> Artifact:
    return _export("skipnet_m", dtype="int8")


@pytest.fixture(scope="session")
def skipnet_onnx() -> Artifact:
    return _export("skipnet_m", runtime="onnx")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultsStore]:
    with ResultsStore(tmp_path / "results.sqlite") as db:
        yield db


@pytest.fixture
def adb_key() -> Path:
    from mobilebench.device.keys import ensure_key_pair

    return ensure_key_pair()


@pytest.fixture
def phone(tmp_path: Path, adb_key: Path):
    """A fresh phone emulator (Pixel 4) with its own files and fault plan."""
    if shutil.which("bwrap") is None:
        pytest.fail("the phone emulator needs bubblewrap (apt-get install bubblewrap)", pytrace=False)
    from mobilebench.device.emulator import PhoneEmulator

    with PhoneEmulator(tmp_path / "phone", accepted_keys=[adb_key.with_name("adbkey.pub")]) as emulator:
        yield emulator


def phone_path(emulator, *parts: str) -> Path:
    """Host path of a file on the emulated phone, e.g. ``phone_path(e, *WORKDIR, "bin")``."""
    return Path(emulator.root.root, *parts)


class RecordingHooks(ProgressHooks):
    """Progress hooks that remember what the session reported (and can act on it)."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.iterations: list[tuple[int, int | None]] = []
        self.transfers: list[tuple[str, int, int]] = []
        #: For each measuring window: (on_this_computer, iteration reports before it,
        #: iteration reports when it ended).
        self.windows: list[tuple[bool, int, int]] = []

    def stage(self, text: str) -> None:
        self.stages.append(text)

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        self.transfers.append((what, done_bytes, total_bytes))

    def iteration(self, done: int, total: int | None) -> None:
        self.iterations.append((done, total))

    @contextlib.contextmanager
    def measuring(self, *, on_this_computer: bool) -> Iterator[None]:
        before = len(self.iterations)
        yield
        self.windows.append((on_this_computer, before, len(self.iterations)))
