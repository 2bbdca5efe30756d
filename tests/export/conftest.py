"""Export-area fixtures: real zoo models exported once per test session.

The artifacts land in the session's shared MOBILEBENCH_CACHE_DIR (see tests/conftest.py),
so later areas (runner, profile) reuse them from the cache.
"""

from __future__ import annotations

import pytest

from mobilebench.export import Artifact, ExportOptions, export_model
from mobilebench.zoo.resolve import ResolvedModel, resolve_model


@pytest.fixture(scope="session")
def skipnet_m() -> ResolvedModel:
    return resolve_model("skipnet_m")


@pytest.fixture(scope="session")
def skipnet_fp32_pte(skipnet_m: ResolvedModel) -> Artifact:
    return export_model(skipnet_m, ExportOptions(runtime="executorch", dtype="fp32"))


@pytest.fixture(scope="session")
def skipnet_int8_pte(skipnet_m: ResolvedModel) -> Artifact:
    return export_model(skipnet_m, ExportOptions(runtime="executorch", dtype="int8"))


@pytest.fixture(scope="session")
def skipnet_onnx(skipnet_m: ResolvedModel) -> Artifact:
    return export_model(skipnet_m, ExportOptions(runtime="onnx"))
