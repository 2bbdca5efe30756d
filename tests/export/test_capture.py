"""Capture errors in one paragraph, and the XNNPACK-friendly graph rewrites."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilebench.errors import MobilebenchError
from mobilebench.export.capture import capture, condense_export_error, rewrite_for_xnnpack


class DataDependent(nn.Module):
    """Python control flow on a tensor value: torch.export cannot capture it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x - 1


class ToNumpy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(x.numpy().sum())


def test_untraceable_model_error_is_one_paragraph(capfd) -> None:
    with pytest.raises(MobilebenchError) as info:
        capture(DataDependent(), torch.ones(1, 3, 8, 8), dynamic_batch_max=None, what="my_model")
    message = str(info.value)
    assert "\n" not in message and len(message) < 900
    assert message.startswith("torch.export cannot capture my_model:")
    assert "data-dependent" in message  # the exporter's own reason survives
    assert "test_capture.py" in message  # and the user code line it points at
    assert "TORCHDYNAMO_EXTENDED_DEBUG" not in message and "Traceback" not in message
    # The exporter's internal log dump is silenced too.
    out, err = capfd.readouterr()
    assert "def forward" not in out + err and "Traceback" not in out + err

    with pytest.raises(MobilebenchError, match=r"cannot capture m2: RuntimeError: \.numpy\(\) is not supported"):
        capture(ToNumpy(), torch.ones(1, 3), dynamic_batch_max=None, what="m2")


def test_condense_keeps_first_paragraph_and_user_frame() -> None:
    exc = RuntimeError(
        "Could not guard on x.\n\nconsider using guard_or_false\nFor more information, run with TORCH_LOGS\n\n"
        'The following call raised this error:\n  File "/src/net.py", line 12, in forward\n'
    )
    assert condense_export_error(exc) == "RuntimeError: Could not guard on x. (at /src/net.py:12 in forward)"
    assert condense_export_error(ValueError("")) == "ValueError: (no message)"


class PoolAndGate(nn.Module):
    """The two patterns the rewrite targets, as SkipNet and MobileNetV3 use them."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = nn.functional.adaptive_avg_pool2d(x, 7)  # 28 -> 7: kernel 4
        odd = nn.functional.adaptive_avg_pool2d(x, 5)  # 28 -> 5: not a whole window, kept
        squeeze = nn.functional.adaptive_avg_pool2d(x, 1)  # global: ExecuTorch handles it
        return self.gate(self.conv(skip)).sum() + odd.sum() + squeeze.sum()


def test_rewrite_for_xnnpack_is_exact_and_targeted() -> None:
    model = PoolAndGate().eval()
    x = torch.randn(1, 4, 28, 28, generator=torch.Generator().manual_seed(0))
    gm = capture(model, x, dynamic_batch_max=None, what="t").module()
    done = rewrite_for_xnnpack(gm)
    assert done == {"adaptive_avg_pool2d -> avg_pool2d": 1, "hardsigmoid -> relu6(x + 3.0) / 6.0": 1}
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert targets.count("aten.adaptive_avg_pool2d.default") == 2  # 1x1 and 28->5 left alone
    assert "aten.avg_pool2d.default" in targets and "aten.hardsigmoid.default" not in targets
    with torch.no_grad():
        assert torch.allclose(gm(x), model(x), rtol=1e-6, atol=1e-6)
