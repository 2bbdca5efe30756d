"""``mobilebench flops`` in-process through the CLI's entry point, and once through the console script."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobilebench import paths
from mobilebench.report.table1 import TABLE1_COLUMNS


@pytest.fixture
def two_cards(tmp_path, monkeypatch) -> Path:
    """A cards folder with only the two cheapest models (fast 'every card' runs)."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("skipnet_xs", "mobilenet_v3_small"):
        shutil.copy(paths.project_root() / "models" / f"{name}.toml", folder)
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(folder))
    return folder


def test_json_for_every_card(two_cards, cli):
    result = cli("flops", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["mobilenet_v3_small", "skipnet_xs"]
    xs = rows[1]
    assert xs["params"] == 2_332_584 and round(xs["flops"] / 1e6, 1) == 84.8
    assert xs["paper_flops"] == 81e6 and xs["flops_diff_pct"] == pytest.approx(4.69, abs=0.01)
    assert xs["skipped_ops"]["aten::add"] > 0
    assert xs["conv_linear_flops"] == xs["flops_by_operator"]["conv"] + xs["flops_by_operator"]["linear"]


def test_table_and_csv(two_cards, cli):
    result = cli("flops", "skipnet_xs")
    assert result.exit_code == 0, result.output
    assert "skipnet_xs" in result.stdout and "84.8M" in result.stdout and "+4.7%" in result.stdout

    result = cli("flops", "skipnet_xs", "--format", "csv", "--input-size", "256")
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["model"] == "skipnet_xs" and row["input_size"] == "256" and int(row["flops"]) > 84.8e6


def test_output_writes_table1(two_cards, tmp_path, cli):
    out = tmp_path / "results" / "table1.csv"
    result = cli("flops", "--output", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == TABLE1_COLUMNS
    xs = next(r for r in rows if r["model"] == "skipnet_xs")
    assert (xs["top1"], xs["top5"], xs["paper_flops"]) == ("69.9", "88.9", "81000000.0")
    assert "Bias Loss" in xs["accuracy_source"]
    small = next(r for r in rows if r["model"] == "mobilenet_v3_small")
    assert small["top1"] == "67.4" and small["top5"] == ""
    assert [p.name for p in out.parent.iterdir()] == ["table1.csv"]  # no temporary left behind


def test_by_module(two_cards, cli):
    result = cli("flops", "skipnet_xs", "--by-module", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["module"] for r in rows} == {"first_layer", "base_block", "blocks", "skip1", "skip2", "conv", "avgpool", "classifier"}
    assert sum(r["share_pct"] for r in rows) == pytest.approx(100, abs=0.1)
    # The table is fvcore's flop_count_table: every module with its parameters and FLOPs.
    table = cli("flops", "skipnet_xs", "--by-module", "2")
    assert table.exit_code == 0, table.output
    assert "| module" in table.stdout and "#parameters or shape" in table.stdout and "| #flops" in table.stdout
    assert " blocks.0 " in table.stdout and " skip1 " in table.stdout


def test_errors(two_cards, tmp_path, monkeypatch, cli):
    def error_line(*args: str) -> str:
        result = cli("flops", *args)
        assert result.exit_code == 2 and result.stdout == "", result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        return result.stderr

    assert "did you mean 'skipnet_m'" in error_line("skipnet_mm")
    assert "multiple of 16" in error_line("skipnet_xs", "--input-size", "100")
    assert "--input-size: 0 is below the minimum 1" in error_line("skipnet_xs", "--input-size", "0")
    assert "--format: invalid choice: 'xml'" in error_line("skipnet_xs", "--format", "xml")
    assert "--by-module: 0 is below the minimum 1" in error_line("skipnet_xs", "--by-module", "0")
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert "no model cards in" in error_line()


def test_console_script_exit_code_and_one_line_error(two_cards):
    script = Path(sys.executable).parent / "mobilebench"
    bad = subprocess.run([str(script), "flops", "skipnet_mm"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: unknown model 'skipnet_mm'") and bad.stderr.count("\n") == 1

