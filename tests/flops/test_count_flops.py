"""count_flops against the paper and the measured values of shared/reference/skipnet.md."""

from __future__ import annotations

import logging

import pytest

from mobilebench import paths
from mobilebench.errors import UsageError
from mobilebench.flops import FlopsReport, count_flops
from mobilebench.report.table1 import table1_rows
from mobilebench.zoo.resolve import resolve_model

# fvcore on the authors' architecture at 1x3x224x224 (FLOPs, params).
MEASURED = {
    "skipnet_xs": (84.8e6, 2.333e6),
    "skipnet_s": (180.3e6, 3.587e6),
    "skipnet_m": (247.8e6, 5.532e6),
    "skipnet_l": (362.4e6, 7.127e6),
}
# Allowed |measured - paper| / paper for the FLOPs (skipnet_s: the gap is reported instead).
PAPER_FLOPS_TOLERANCE = {"skipnet_xs": 0.05, "skipnet_m": 0.02, "skipnet_l": 0.02}


@pytest.fixture(scope="module", autouse=True)
def shipped_cards():
    """Count against the shipped cards whatever the working directory holds."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MOBILEBENCH_MODELS_DIR", str(paths.project_root() / "models"))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def reports() -> dict[str, FlopsReport]:
    names = [*MEASURED, "mobilenet_v3_large"]
    return {name: count_flops(resolve_model(name)) for name in names}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEASURED))
def test_skipnet_matches_the_authors_architecture(reports, name):
    report = reports[name]
    flops, params = MEASURED[name]
    assert report.flops == pytest.approx(flops, abs=0.05e6)
    assert report.params == pytest.approx(params, abs=0.0005e6)
    assert abs(report.params_diff_pct) < 2.0


@pytest.mark.parametrize("name", sorted(PAPER_FLOPS_TOLERANCE))
def test_skipnet_flops_close_to_the_paper(reports, name):
    report = reports[name]
    assert report.paper_flops is not None
    assert abs(report.flops_diff_pct) < PAPER_FLOPS_TOLERANCE[name] * 100


def test_skipnet_s_gap_to_the_paper_is_reported(reports):
    report = reports["skipnet_s"]
    assert report.paper_flops == 152e6
    assert report.flops_diff_pct == pytest.approx((180.33e6 - 152e6) / 152e6 * 100, abs=0.1)
    assert report.as_dict()["flops_diff_pct"] > 18


def test_mobilenet_v3_large(reports):
    report = reports["mobilenet_v3_large"]
    assert report.params == 5_483_032
    assert round(report.flops / 1e6, 1) == 226.0
    assert round(report.conv_linear_flops / 1e6, 1) == 216.6


@pytest.mark.parametrize("name", [*MEASURED, "mobilenet_v3_large"])
def test_torch_counter_agrees_with_fvcore_on_conv_and_linear(reports, name):
    report = reports[name]
    by_op = report.flops_by_operator
    assert report.conv_linear_flops == by_op["conv"] + by_op["linear"]
    # The rest of fvcore's total is batch norm and pooling, nothing else.
    assert set(by_op) <= {"conv", "linear", "batch_norm", "adaptive_avg_pool2d", "avg_pool2d"}
    assert report.flops == sum(by_op.values())
    assert report.skipped_ops["aten::add"] > 0 and "aten::hardswish_" in report.skipped_ops


def test_by_module_breakdown_adds_up(reports):
    report = reports["skipnet_m"]
    top = report.modules_to_depth(1)
    assert set(top) == {"first_layer", "base_block", "blocks", "skip1", "skip2", "conv", "avgpool", "classifier"}
    assert sum(top.values()) == report.flops == report.flops_by_module[""]
    second = report.modules_to_depth(2)
    assert sum(v for k, v in second.items() if k.startswith("blocks.")) == top["blocks"]


def test_counting_is_silent(caplog, recwarn):
    with caplog.at_level(logging.WARNING):
        count_flops(resolve_model("mobilenet_v3_small"))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert len(recwarn) == 0


def test_input_size_override():
    small = resolve_model("skipnet_xs")
    at_256 = count_flops(small, input_size=256)
    assert at_256.input_size == 256
    # Everything but the classifier scales with the pixel count.
    assert at_256.flops_by_module["blocks"] == pytest.approx(
        count_flops(small).flops_by_module["blocks"] * (256 / 224) ** 2, rel=0.01
    )
    with pytest.raises(UsageError, match="multiple of 16"):
        count_flops(small, input_size=250)


def test_table1_rows_carry_accuracy_and_sources(reports):
    names = ["skipnet_m", "mobilenet_v3_large"]
    rows = table1_rows([reports[n] for n in names], [resolve_model(n) for n in names])
    m, v3 = rows
    assert (m["model"], m["top1"], m["top5"], m["accuracy_dataset"]) == ("skipnet_m", 76.2, 92.8, "imagenet")
    assert "Bias Loss" in m["accuracy_source"] and m["paper_flops"] == 246e6 and m["flops"] == reports["skipnet_m"].flops
    assert v3["top1"] == 75.2 and v3["top5"] is None and "MobileNetV3" in v3["accuracy_source"]
