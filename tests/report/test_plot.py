"""Pareto front and the accuracy-vs-cost figure."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from mobilebench.errors import UsageError
from mobilebench.report.plot import (
    PlotData,
    PlotPoint,
    cost_points,
    draw,
    latency_points,
    pareto_front,
)
from mobilebench.report.table2 import Top1

TOP1 = {"a": 70.0, "b": 75.0, "c": 65.0, "d": 74.0, "e": 73.0, "f": 77.5}


def quoted(model):
    return Top1(TOP1[model], "quoted") if model in TOP1 else None


def test_pareto_front_by_hand():
    points = [
        PlotPoint("a", 10, 70),
        PlotPoint("b", 20, 75),
        PlotPoint("c", 15, 65),  # dominated by a (slower, worse)
        PlotPoint("d", 30, 74),  # dominated by b
        PlotPoint("e", 20, 73),  # same cost as b, less accurate
        PlotPoint("f", 40, 77.5),
        PlotPoint("g", 10, 70),  # a's twin: only one of them is on the front
    ]
    assert [p.model for p in pareto_front(points)] == ["a", "b", "f"]
    assert pareto_front([]) == []
    assert [p.model for p in pareto_front([PlotPoint("x", 5, 60)])] == ["x"]


@pytest.fixture
def plotted(store, add_run):
    for model, ms in {"a": 10, "b": 20, "c": 15, "d": 30}.items():
        add_run(store, model, "pixel4", [float(ms)] * 8)
    add_run(store, "e", "pixel4", [5.0] * 8, emulated=True)  # never mixed into pixel4's points
    add_run(store, "zz", "pixel4", [1.0] * 8)  # no top-1 anywhere: skipped, said so
    return store


def test_latency_points_use_real_runs_and_report_skips(plotted):
    data = latency_points(plotted, device="pixel4", quoted_top1=quoted)
    assert {p.model: (p.x, p.top1) for p in data.points} == {"a": (10, 70), "b": (20, 75), "c": (15, 65), "d": (30, 74)}
    assert data.skipped == ["zz: no top-1 (measured or in a model card)"]
    assert "pixel4" in data.x_label and "emulated" not in data.x_label


def test_latency_device_choice(plotted, add_run):
    assert latency_points(plotted, quoted_top1=quoted).points  # pixel4 is the only device
    add_run(plotted, "a", "pixel3", [12.0] * 8)
    with pytest.raises(UsageError, match="several devices"):
        latency_points(plotted, quoted_top1=quoted)
    with pytest.raises(UsageError, match="pixel9"):
        latency_points(plotted, device="pixel9", quoted_top1=quoted)


def test_png_is_a_real_image_of_the_requested_size(plotted, tmp_path):
    data = latency_points(plotted, device="pixel4", quoted_top1=quoted)
    output = tmp_path / "figs" / "fig1.png"
    draw(data, output, width_in=6.0, height_in=4.0, dpi=100)
    with Image.open(output) as image:
        assert image.format == "PNG"
        assert image.size == (600, 400)
        rgb = image.convert("RGB")
        colors = rgb.getcolors(maxcolors=1_000_000)
    assert len(colors) > 50  # text, markers, grid: not a blank canvas
    # The front's markers and step line are tab:red (#d62728).
    red = sum(count for count, (r, g, b) in colors if r > 190 and g < 70 and b < 70)
    assert red > 30


def test_svg_output_names_every_model(plotted, tmp_path):
    data = latency_points(plotted, device="pixel4", quoted_top1=quoted)
    output = tmp_path / "fig1.svg"
    draw(data, output)
    root = ET.parse(output).getroot()
    assert root.tag.endswith("svg")
    text = output.read_text()
    for model in ("a", "b", "c", "d"):
        assert f"<!-- {model} -->" in text  # matplotlib keeps text as comments + paths


def test_bad_figure_requests(tmp_path):
    with pytest.raises(UsageError, match="png or .svg"):
        draw(PlotData([PlotPoint("a", 1, 2)], "x", "t"), tmp_path / "fig.jpg")
    with pytest.raises(UsageError, match="nothing to plot: zz: no top-1"):
        draw(PlotData([], "x", "t", skipped=["zz: no top-1"]), tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def test_cost_points_in_millions(plotted):
    costs = {"a": (84.8e6, 2.333e6), "b": (247.8e6, 5.532e6), "c": (1e6, 1e6), "d": (2e6, 2e6), "e": (3e6, 3e6)}
    data = cost_points(plotted, metric="flops", models=["a", "b"], cost_of=costs.__getitem__, quoted_top1=quoted)
    assert [(p.model, p.x) for p in data.points] == [("a", pytest.approx(84.8)), ("b", pytest.approx(247.8))]
    params = cost_points(plotted, metric="params", cost_of=costs.__getitem__, quoted_top1=quoted)
    assert {p.model for p in params.points} == {"a", "b", "c", "d", "e"}  # every model in the store with a top-1
    assert params.skipped == ["zz: no top-1 (measured or in a model card)"]


def test_cli_plot(plotted, db_path, tmp_path, cli):
    plotted.record_accuracy(model="a", checkpoint_sha256=None, dataset="imagenet", top1=70.0, top5=None, source="eval")
    plotted.record_accuracy(model="b", checkpoint_sha256=None, dataset="imagenet", top1=75.0, top5=None, source="eval")
    output = tmp_path / "f.png"
    result = cli("plot", "--db", db_path, "--device", "pixel4", "--output", output)
    assert result.exit_code == 0, result.stderr
    assert "wrote" in result.stderr and "(2 models)" in result.stderr and "skipped" in result.stderr
    with Image.open(output) as image:
        assert image.size == (1050, 750)
    result = cli("plot", "--db", db_path, "--x", "speed")
    assert result.exit_code == 2 and "argument --x: invalid choice: 'speed'" in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr

