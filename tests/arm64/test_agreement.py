"""The arm64 runner under qemu computes what the x86-64 runner computes, on the same .pte.

Agreement is measured on output 0 of the last timed run (``--dump-output``), for one
held-out digit per run: the largest absolute difference relative to the output's scale
(its largest absolute value), and the top-1 class. XNNPACK picks different kernels for
Arm and x86-64, so fp32 sums round differently (about 1e-6 of the scale); int8 kernels
are exact integer arithmetic plus one requantisation and agree bit for bit in practice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import DigitsModel, Run

ITERATIONS = ["--warmup", "1", "--iterations", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_arm64_under_qemu_agrees_with_the_host_runner(
    run_arm64: Run, run_host: Run, digits_model: DigitsModel, tmp_path: Path, dtype: str
) -> None:
    pte = digits_model.pte[dtype]
    for k, digit in enumerate(digits_model.inputs):
        outputs = {}
        for name, run in (("host", run_host), ("arm64", run_arm64)):
            out = tmp_path / f"{name}-{k}.f32"
            result = run("--model", pte, "--input", digit, *ITERATIONS, "--dump-output", out)
            assert result.one("load")["backends"] == ["XnnpackBackend"]
            assert result.one("output")["shape"] == [1, 10]
            outputs[name] = np.fromfile(out, dtype="<f4")
            print(f"{dtype} digit {k} {name}: {[round(ms, 3) for ms in result.timed_ms()]} ms per iteration")
        host, arm64 = outputs["host"], outputs["arm64"]
        # Realistic outputs, not the near-zero logits of a random-init model.
        scale = float(np.abs(host).max())
        assert scale > 2 and len(np.unique(host)) >= 5, host
        relative = float(np.abs(arm64 - host).max()) / scale
        print(f"{dtype} digit {k}: max |arm64 - host| / scale = {relative:.2e}, top-1 {host.argmax()} / {arm64.argmax()}")
        assert relative <= 1e-5
        assert int(arm64.argmax()) == int(host.argmax())
