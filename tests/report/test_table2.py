"""Table 2 from a database of known runs: which run fills which cell, and what stays empty."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mobilebench.report.table2 import Top1, build_table2, provenance_path, write_table2

CARDS = {
    "skipnet_m": Top1(76.2, "quoted", {"source": "paper"}),
    "mobilenet_v3_large": Top1(75.2, "quoted", {"source": "paper"}),
}


def quoted(model: str):
    return CARDS.get(model)


@pytest.fixture
def filled(store, add_run):
    """Known runs; returns the ids of the runs that must appear in the table."""
    ids = {}
    add_run(store, "skipnet_m", "pixel4", [30.0] * 8)  # older: superseded
    ids["skipnet_m/pixel4"] = add_run(store, "skipnet_m", "pixel4", [27.0] * 8)
    add_run(store, "skipnet_m", "pixel4", status="failed")  # newest, failed: ignored
    add_run(store, "skipnet_m", "pixel4", status="running")  # in progress: ignored
    ids["skipnet_m/pixel3"] = add_run(store, "skipnet_m", "pixel3", [35.5] * 8)
    # The emulator, once under its own name and once impersonating a Pixel 4.
    ids["skipnet_m/emulator"] = add_run(store, "skipnet_m", "emulator", [3.0] * 8, emulated=True)
    ids["skipnet_m/pixel4~"] = add_run(store, "skipnet_m", "pixel4", [2.0] * 8, emulated=True)
    ids["mobilenet_v3_large/pixel4"] = add_run(store, "mobilenet_v3_large", "pixel4", [24.25] * 8)
    ids["ghostnet/pixel3"] = add_run(store, "ghostnet", "pixel3", [40.0] * 8)
    add_run(store, "ghostnet", "pixel4", [11.0] * 8, runtime="onnx")  # other runtime
    add_run(store, "ghostnet", "pixel4", [11.0] * 8, dtype="int8")  # other dtype
    store.record_accuracy(
        model="skipnet_m", checkpoint_sha256=None, dataset="imagenet", top1=76.05, top5=92.7, source="mobilebench eval"
    )
    return ids


def cells(table):
    return {row[r"Model"]: row for row in table.records()}


def test_cells_follow_the_rules(store, filled):
    table = build_table2(store, quoted_top1=quoted)
    assert table.headers == [
        "Model", "Top-1 (%)", "Top-1 source",
        "pixel3 (ms)", "pixel4 (ms)", "emulator (ms, emulated)", "pixel4 (ms, emulated)",
    ]  # fmt: skip
    rows = cells(table)
    assert list(rows) == ["ghostnet", "mobilenet_v3_large", "skipnet_m"]
    skip = rows["skipnet_m"]
    assert skip["pixel4 (ms)"] == 27.0  # newest successful, not the failed or running one
    assert skip["pixel3 (ms)"] == 35.5
    assert skip["pixel4 (ms, emulated)"] == 2.0  # never in the phone's column
    assert skip["emulator (ms, emulated)"] == 3.0
    assert skip["Top-1 (%)"] == 76.05  # measured beats the card's 76.2
    assert skip["Top-1 source"] == "measured in eager PyTorch, imagenet"
    mnv3 = rows["mobilenet_v3_large"]
    assert mnv3["Top-1 (%)"] == 75.2 and mnv3["pixel4 (ms)"] == 24.25
    assert mnv3["Top-1 source"] == "quoted (paper)"
    assert mnv3["pixel3 (ms)"] is None and mnv3["emulator (ms, emulated)"] is None
    ghost = rows["ghostnet"]
    assert ghost["Top-1 (%)"] is None  # neither measured nor quoted: empty
    assert ghost["pixel4 (ms)"] is None  # its only pixel4 runs are onnx / int8
    assert ghost["pixel3 (ms)"] == 40.0


def test_chosen_devices_and_models_keep_their_order(store, filled):
    table = build_table2(
        store, devices=["pixel4", "pixel3", "pixel7"], models=["skipnet_m", "resnet50"], quoted_top1=quoted
    )
    assert table.headers == [
        "Model", "Top-1 (%)", "Top-1 source", "pixel4 (ms)", "pixel4 (ms, emulated)", "pixel3 (ms)", "pixel7 (ms)",
    ]  # fmt: skip
    rows = cells(table)
    assert rows["skipnet_m"]["pixel7 (ms)"] is None
    assert rows["resnet50"] == {h: None for h in table.headers} | {"Model": "resnet50"}


def test_other_runtime_has_its_own_table(store, filled):
    table = build_table2(store, runtime="onnx", quoted_top1=quoted)
    assert table.headers == ["Model", "Top-1 (%)", "Top-1 source", "pixel4 (ms)"]
    assert table.records() == [{"Model": "ghostnet", "Top-1 (%)": None, "Top-1 source": None, "pixel4 (ms)": 11.0}]


def test_written_csv_and_provenance(store, filled, tmp_path):
    table = build_table2(store, devices=["pixel4", "pixel3"], quoted_top1=quoted)
    output = tmp_path / "out" / "table2.csv"
    sidecar = write_table2(table, output, database=store.path)
    assert sidecar == provenance_path(output) == tmp_path / "out" / "table2.csv.provenance.json"
    rows = list(csv.reader(io.StringIO(output.read_text())))
    assert rows[0] == ["Model", "Top-1 (%)", "Top-1 source", "pixel4 (ms)", "pixel4 (ms, emulated)", "pixel3 (ms)"]
    assert rows[1] == ["ghostnet", "", "", "", "", "40.0"]
    assert rows[3] == ["skipnet_m", "76.05", "measured in eager PyTorch, imagenet", "27.0", "2.0", "35.5"]
    provenance = json.loads(sidecar.read_text())
    assert provenance["database"] == str(store.path)
    by_model = {row["Model"]: row for row in provenance["rows"]}
    skip = by_model["skipnet_m"]
    assert skip["pixel4 (ms)"]["run_id"] == filled["skipnet_m/pixel4"]
    assert skip["pixel4 (ms, emulated)"]["run_id"] == filled["skipnet_m/pixel4~"]
    assert skip["pixel4 (ms, emulated)"]["emulated"] is True
    assert skip["Top-1 (%)"]["kind"] == "measured" and skip["Top-1 (%)"]["dataset"] == "imagenet"
    assert by_model["mobilenet_v3_large"]["Top-1 (%)"]["kind"] == "quoted"
    assert by_model["ghostnet"]["pixel4 (ms)"] is None
    assert [p.name for p in output.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_cli_table2(store, filled, db_path, tmp_path, cli):
    result = cli("table2", "--db", db_path, "--devices", "pixel4,pixel3", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["Model"]: r["pixel4 (ms)"] for r in rows} == {
        "ghostnet": "",
        "mobilenet_v3_large": "24.25",
        "skipnet_m": "27.0",
    }
    output = tmp_path / "t2.md"
    result = cli("table2", "--db", db_path, "--format", "md", "--output", output)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("| Model | Top-1 (%) | Top-1 source |") and output.read_text() == result.stdout
    assert (tmp_path / "t2.md.provenance.json").is_file()
    assert result.stderr == f"wrote {output} and {output}.provenance.json\n"
    result = cli("table2", "--db", db_path)
    assert result.exit_code == 0 and "skipnet_m" in result.stdout and "pixel4 (ms, emulated)" in result.stdout


def test_cli_table2_errors(tmp_path, db_path, store, cli, add_run):
    result = cli("table2", "--db", tmp_path / "nope.sqlite")
    assert result.exit_code == 2 and result.stderr.startswith("error: no results database")
    result = cli("table2", "--db", db_path)  # exists, but empty
    assert result.exit_code == 2 and "no successful executorch/fp32 runs" in result.stderr
    add_run(store, "m")
    for args, message in {
        ("--format", "xml"): "argument --format: invalid choice: 'xml'",
        ("--runtime", "tflite"): "argument --runtime: invalid choice: 'tflite'",
    }.items():
        result = cli("table2", "--db", db_path, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_top1_is_the_timed_artifacts_when_it_was_measured(store, add_run):
    """The artifact that was timed wins over an eager measurement and the card; another
    artifact's accuracy (an int8 file, an older export) is never shown for this one."""
    pte, other = "a" * 64, "b" * 64
    add_run(store, "skipnet_m", "pixel4", [27.0] * 8, artifact_sha256=pte)
    for top1, runtime, dtype, artifact in ((76.1, "eager", None, None), (75.0, "executorch", "int8", other),
                                           (76.0, "executorch", "fp32", pte)):
        store.record_accuracy(model="skipnet_m", checkpoint_sha256=None, dataset="imagenet", top1=top1, top5=None,
                              source="mobilebench eval", runtime=runtime, dtype=dtype, artifact_sha256=artifact)
    row = cells(build_table2(store, quoted_top1=quoted))["skipnet_m"]
    assert (row["Top-1 (%)"], row["Top-1 source"]) == (76.0, "measured on the .pte, imagenet")
    # Timed another artifact with no measurement of its own: the eager figure, said so.
    add_run(store, "skipnet_m", "pixel4", [26.0] * 8, artifact_sha256="c" * 64)
    row = cells(build_table2(store, quoted_top1=quoted))["skipnet_m"]
    assert (row["Top-1 (%)"], row["Top-1 source"]) == (76.1, "measured in eager PyTorch, imagenet")


def test_columns_show_more_of_each_run(store, add_run, cli, db_path) -> None:
    add_run(store, "skipnet_m", "pixel4", (27.0,) * 12, peak_rss_bytes=61_000_000)
    add_run(store, "skipnet_m", "emulator", (13.0,) * 12, emulated=True)
    result = cli("table2", "--db", db_path, "--columns", "median_ms,peak_rss_bytes,cv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["pixel4 (ms)"] == 27.0 and row["pixel4 peak_rss_bytes"] == 61_000_000 and row["pixel4 cv"] == 0.0
    assert row["emulator (ms, emulated)"] == 13.0 and row["emulator peak_rss_bytes (emulated)"] is None
    wrong = cli("table2", "--db", db_path, "--columns", "peak_rss")
    assert wrong.exit_code == 2 and "unknown Table 2 column 'peak_rss'; did you mean 'peak_rss_bytes'" in wrong.stderr
