"""``mobilebench export`` on the command line: JSON output, --output, clear errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_json_output_and_output_copy(skipnet_fp32_pte, tmp_path) -> None:
    """A real CLI process; the session's export makes this a cache hit."""
    target = tmp_path / "skipnet.pte"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobilebench.cli.main",
            "export",
            "skipnet_m",
            "--format",
            "json",
            "--output",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)  # stdout holds the JSON document and nothing else
    assert payload["cached"] is True
    assert payload["runtime"] == "executorch" and payload["dtype"] == "fp32"
    assert payload["path"] == str(skipnet_fp32_pte.path) and payload["output"] == str(target)
    assert payload["sha256"] == skipnet_fp32_pte.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert payload["portable_ops"] == "" and payload["parity_relative"] <= 1e-4
    assert payload["input_shape"] == [1, 3, 224, 224]
    assert payload["provenance"]["delegation"]["delegates"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["skipnet.pte"]  # no temp file left
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "make_output, message",
    [
        (lambda tmp: tmp / "missing" / "model.pte", "does not exist"),
        (lambda tmp: tmp / "a_file.txt" / "model.pte", "is not a folder"),
    ],
    ids=["missing-folder", "path-through-a-file"],
)
def test_unwritable_output_fails_before_exporting(make_output, message, tmp_path, cli) -> None:
    (tmp_path / "a_file.txt").write_text("x")
    cache = tmp_path / "cache"
    result = cli("export", "skipnet_m", "--output", make_output(tmp_path), "--cache-dir", cache)
    assert result.exit_code == 1
    err = result.stderr
    assert err.startswith("error: cannot write") and message in err and err.count("\n") == 1
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing was exported


def test_output_suffix_must_match_runtime(tmp_path, cli) -> None:
    result = cli("export", "skipnet_m", "--runtime", "onnx", "--output", tmp_path / "m.pte")
    assert result.exit_code == 2 and "should end in .onnx" in result.stderr


def test_calibration_folder_without_images(tmp_path, cli) -> None:
    result = cli("export", "skipnet_m", "--dtype", "int8", "--calibration", tmp_path, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 2 and "holds no images" in result.stderr and result.stderr.count("\n") == 1


def test_option_combinations_are_checked(tmp_path, cli) -> None:
    # Upper case works too (runtime and dtype are case-insensitive).
    result = cli("export", "skipnet_m", "--runtime", "ONNX", "--dtype", "INT8")
    assert result.exit_code == 2 and "int8 export is implemented for the executorch runtime only" in result.stderr
    result = cli("export", "skipnet_m", "--calibration", tmp_path)
    assert result.exit_code == 2 and "--calibration only applies to int8" in result.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["skipnet_m", "--runtime", "tflite"], "argument --runtime: invalid choice: 'tflite'"),
        (["skipnet_m", "--dtype", "fp16"], "argument --dtype: invalid choice: 'fp16'"),
        (["skipnet_m", "--input-size", "0"], "argument --input-size: 0 is below the minimum 1"),
        (["skipnet_m", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        ([], "the following arguments are required: NAME"),
    ],
    ids=["runtime", "dtype", "input-size", "format", "no-name"],
)
def test_usage_errors_are_one_line(args, needle, cli) -> None:
    result = cli("export", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and needle in result.stderr


@pytest.mark.slow
def test_table_and_csv_output(skipnet_fp32_pte, cli) -> None:
    result = cli("export", "skipnet_m")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "(from cache)" in out and "portable CPU ops: none" in out and "passed" in out
    assert skipnet_fp32_pte.sha256 in out
    result = cli("export", "skipnet_m", "--format", "csv")
    header, row, *rest = result.stdout.splitlines()
    assert result.exit_code == 0 and not rest
    assert header.startswith("name,runtime,dtype,path") and row.startswith("skipnet_m,executorch,fp32,")
