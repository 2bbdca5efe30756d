"""Models from outside the zoo (import paths, .pt2 programs, ready .pte/.onnx files).

Fixtures: a small package of networks on sys.path, a ``.pt2`` program, ready
``.pte``/``.onnx`` files written with the libraries' own APIs (not mobilebench's
exporter), and a check of the CLI's error line (the CLI itself runs through the
suite-wide ``cli`` fixture of tests/conftest.py).

The networks are tiny (one conv, 64x64 input) so exports take seconds. Everything that
is costly is session-scoped; exports land in the session's shared artifact cache
(MOBILEBENCH_CACHE_DIR, see tests/conftest.py).
"""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

PACKAGE = "mb_outside_nets"
IMPORT_PATH = f"{PACKAGE}.models:build_net"
INPUT_SIZE = 64

MODELS_SOURCE = textwrap.dedent(
    '''
    """Networks defined outside mobilebench's zoo (written by tests/outside/conftest.py)."""

    import torch
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self, width=8, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, stride=2, padding=1)
            self.bn = nn.BatchNorm2d(width)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


    def build_net(width=8, num_classes=10):
        return TinyNet(width, num_classes)


    def not_a_module():
        return {"conv": 3}


    class Flat(nn.Module):
        """Takes a 2-d input: not an image classifier."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            return self.fc(x)
    '''
)


def tiny_flops(width: int = 8, num_classes: int = 10, size: int = INPUT_SIZE) -> int:
    """fvcore FLOPs of TinyNet: conv (stride 2) + batch norm (2/elem) + pool (1/elem) + fc."""
    out = size // 2
    conv = 3 * 3 * 3 * width * out * out
    return conv + 2 * width * out * out + width * out * out + width * num_classes


@pytest.fixture(scope="session")
def outside_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A package ``mb_outside_nets`` (module ``models``) importable for the session."""
    root = tmp_path_factory.mktemp("outside_pkg")
    (root / PACKAGE).mkdir()
    (root / PACKAGE / "__init__.py").write_text("")
    (root / PACKAGE / "models.py").write_text(MODELS_SOURCE)
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="session")
def tiny_module(outside_package: Path) -> torch.nn.Module:
    import importlib

    models = importlib.import_module(f"{PACKAGE}.models")
    torch.manual_seed(1)
    return models.build_net().eval()


@pytest.fixture(scope="session")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outside_files")


@pytest.fixture(scope="session")
def tiny_pt2(tiny_module: torch.nn.Module, files_dir: Path) -> Path:
    """TinyNet exported for 1x3x64x64 and saved with torch.export.save."""
    program = torch.export.export(tiny_module, (torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE),))
    path = files_dir / "tiny.pt2"
    torch.export.save(program, path)
    return path


@pytest.fixture(scope="session")
def ready_pte(tiny_module: torch.nn.Module, files_dir: Path) -> Path:
    """A .pte written with ExecuTorch's own API, as a user would."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():  # the libraries' deprecation notes are not ours
        warnings.simplefilter("ignore")
        program = torch.export.export(tiny_module, (torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE),))
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        buffer = bytes(edge.to_executorch().buffer)
    path = files_dir / "ready_tiny.pte"
    path.write_bytes(buffer)
    return path


@pytest.fixture(scope="session")
def ready_onnx(tiny_module: torch.nn.Module, files_dir: Path) -> Path:
    """A .onnx written with torch.onnx.export, as a user would."""
    path = files_dir / "ready_tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(
            tiny_module, (torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE),), dynamo=True, verbose=False
        )
        onnx_program.save(path)
    return path


@pytest.fixture
def no_cards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cards folder, so the checkout's cards do not take part."""
    folder = tmp_path / "cards"
    folder.mkdir()
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def error_line():
    """The error line of a ``cli(...)`` result (tests/conftest.py), after checking it
    failed with exit code 2 and printed exactly one ``error:`` line and no traceback."""

    def check(result, exit_code: int = 2) -> str:
        assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr
        return lines[0]

    return check


@pytest.fixture
def import_path(outside_package: Path) -> str:
    return IMPORT_PATH
