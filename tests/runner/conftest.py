"""Fixtures for the native runner's tests: the binary, a way to run it, and .pte programs.

The runner is built by ``make runner`` (``make test`` builds it first). Tests FAIL, not
skip, when it is missing: a test run that silently skipped the runner would hide a
broken build.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mobilebench.paths import project_root

RUNNER_RELPATH = Path("android_app/build/host/mobilebench_runner")


def find_runner(root: Path) -> Path:
    """The host runner under ``root``, or a test failure telling how to build it."""
    path = root / RUNNER_RELPATH
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"native runner not built: {path} is missing; run `make runner` (`make test` builds it first)",
            pytrace=False,
        )
    return path


@dataclass
class RunResult:
    """One runner invocation: exit status, every stdout line parsed as JSON, stderr."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    argv: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of(kind)
        assert len(found) == 1, f"expected one {kind!r} event, got {len(found)}: {self.events}"
        return found[0]

    @property
    def timed_ms(self) -> list[float]:
        return [e["ms"] for e in self.of("iteration") if not e["warmup"]]

    def describe(self) -> str:
        return f"argv={self.argv} rc={self.returncode}\nstdout events={self.events[-3:]}\nstderr tail={self.stderr[-800:]}"


def parse_stdout(stdout: bytes) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object with an "event" (the runner's protocol)."""
    events = []
    for number, raw in enumerate(stdout.decode("utf-8").splitlines(), 1):
        event = json.loads(raw)  # raises on anything that is not strict JSON
        assert isinstance(event, dict) and isinstance(event.get("event"), str), f"line {number}: {raw!r}"
        events.append(event)
    return events


Runner = Callable[..., RunResult]


@pytest.fixture(scope="session")
def runner_path() -> Path:
    return find_runner(project_root())


@pytest.fixture(name="find_runner")
def find_runner_fixture() -> Callable[[Path], Path]:
    return find_runner


@pytest.fixture(scope="session")
def run_runner(runner_path: Path) -> Runner:
    """Runs the binary with the given arguments; returns a :class:`RunResult`."""

    def run(*args: str | os.PathLike[str], binary: Path | None = None, timeout: float = 120) -> RunResult:
        argv = [os.fspath(binary or runner_path), *(os.fspath(a) for a in args)]
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        return RunResult(proc.returncode, parse_stdout(proc.stdout), proc.stderr.decode(errors="replace"), argv)

    return run


def export_module(module: Any, example_inputs: Sequence[Any], path: Path, *, config: Any = None) -> Path:
    """A small nn.Module as an XNNPACK-delegated .pte, straight through ExecuTorch
    (``config``: an ``ExecutorchBackendConfig``)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module.eval(), tuple(example_inputs))
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch(config)
    path.write_bytes(lowered.buffer)
    return path


def tiny_classifier(width: int, size: int, path: Path) -> Path:
    """A two-conv classifier on 1x3xSIZExSIZE with ``width`` channels in its first conv."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, width, 3, stride=2, padding=1)
            self.conv2 = torch.nn.Conv2d(width, 16, 3, stride=2, padding=1)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
            return self.fc(x.mean(dim=(2, 3)))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = Tiny()
    return export_module(module, [torch.zeros(1, 3, size, size)], path)


@pytest.fixture(scope="session")
def tiny_pte(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-conv classifier on 1x3x32x32: fast enough for hundreds of iterations."""
    return tiny_classifier(8, 32, tmp_path_factory.mktemp("pte") / "tiny.pte")


@pytest.fixture(scope="session")
def tiny48_pte(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``tiny_pte`` on 1x3x48x48 with twice the channels: another input shape, slower."""
    return tiny_classifier(16, 48, tmp_path_factory.mktemp("pte") / "tiny48.pte")


@dataclass(frozen=True)
class FailingProgram:
    path: Path
    fails_at_execution: int  # 1-based, counted from the program's load


@pytest.fixture(scope="session")
def fails_later_pte(tmp_path_factory: pytest.TempPathFactory) -> FailingProgram:
    """A program that runs fine three times, then fails: it counts its executions in a
    mutable buffer and from the fourth on indexes a 4-element table at 1000, which
    ExecuTorch's index kernel rejects (an execution error, not a crash)."""
    import torch
    from executorch.exir import ExecutorchBackendConfig
    from executorch.exir.passes.init_mutable_pass import InitializedMutableBufferPass

    fails_at = 4

    class FailsLater(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("count", torch.zeros(1, dtype=torch.int64))
            self.table = torch.nn.Parameter(torch.arange(4.0), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.count.add_(1)
            index = torch.clamp(self.count - (fails_at - 1), min=0) * 1000
            return x * 2.0 + self.table[index]

    # The counter's initial zeros are serialized and copied in at every load (else a
    # mutated buffer starts from whatever its planned memory held).
    config = ExecutorchBackendConfig(passes=[InitializedMutableBufferPass(["count"])])
    path = export_module(
        FailsLater(), [torch.zeros(1, 4)], tmp_path_factory.mktemp("pte") / "fails_later.pte", config=config
    )
    return FailingProgram(path, fails_at)


@pytest.fixture(scope="session")
def passthrough_pte(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two inputs (2x3x5 and 4), output = both flattened and concatenated, unchanged."""
    import torch

    class Passthrough(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.cat([a.flatten(), b.flatten()]) * 1.0

    return export_module(
        Passthrough(), [torch.zeros(2, 3, 5), torch.zeros(4)], tmp_path_factory.mktemp("pte") / "passthrough.pte"
    )


@dataclass(frozen=True)
class ZooArtifact:
    name: str
    dtype: str
    path: Path
    input_shape: tuple[int, ...]


@pytest.fixture(scope="session")
def zoo_pte() -> Callable[[str, str], ZooArtifact]:
    """Exports a zoo model through the project's pipeline (cached for the session)."""
    from mobilebench.export import ExportOptions, export_model
    from mobilebench.zoo.resolve import resolve_model

    cache: dict[tuple[str, str], ZooArtifact] = {}

    def get(name: str, dtype: str) -> ZooArtifact:
        if (name, dtype) not in cache:
            resolved = resolve_model(name)
            artifact = export_model(resolved, ExportOptions(runtime="executorch", dtype=dtype))
            cache[name, dtype] = ZooArtifact(name, dtype, Path(artifact.path), tuple(resolved.input_shape))
        return cache[name, dtype]

    return get
