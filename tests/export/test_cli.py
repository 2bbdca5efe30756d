"""``mobilebench export`` on the command line: JSON output, --output, clear errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from mobilebench.cli.main import main


def run_in_process(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mobilebench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


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
def test_unwritable_output_fails_before_exporting(make_output, message, tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "a_file.txt").write_text("x")
    cache = tmp_path / "cache"
    code, out, err = run_in_process(
        ["export", "skipnet_m", "--output", str(make_output(tmp_path)), "--cache-dir", str(cache)],
        monkeypatch,
        capsys,
    )
    assert code == 1
    assert err.startswith("error: cannot write") and message in err and err.count("\n") == 1
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing was exported


def test_output_suffix_must_match_runtime(tmp_path, monkeypatch, capsys) -> None:
    code, _, err = run_in_process(
        ["export", "skipnet_m", "--runtime", "onnx", "--output", str(tmp_path / "m.pte")], monkeypatch, capsys
    )
    assert code == 2 and "should end in .onnx" in err


def test_calibration_folder_without_images(tmp_path, monkeypatch, capsys) -> None:
    code, _, err = run_in_process(
        [
            "export",
            "skipnet_m",
            "--dtype",
            "int8",
            "--calibration-dir",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and "holds no images" in err and err.count("\n") == 1


def test_option_combinations_are_checked(tmp_path, monkeypatch, capsys) -> None:
    code, _, err = run_in_process(["export", "skipnet_m", "--runtime", "onnx", "--dtype", "int8"], monkeypatch, capsys)
    assert code == 2 and "int8 export is implemented for the executorch runtime only" in err
    code, _, err = run_in_process(["export", "skipnet_m", "--calibration-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "--calibration-dir only applies to int8" in err


@pytest.mark.slow
def test_table_and_csv_output(skipnet_fp32_pte, monkeypatch, capsys) -> None:
    code, out, err = run_in_process(["export", "skipnet_m"], monkeypatch, capsys)
    assert code == 0, err
    assert "(from cache)" in out and "portable CPU ops: none" in out and "passed" in out
    assert skipnet_fp32_pte.sha256 in out
    code, out, _ = run_in_process(["export", "skipnet_m", "--format", "csv"], monkeypatch, capsys)
    header, row, *rest = out.splitlines()
    assert code == 0 and not rest
    assert header.startswith("name,runtime,dtype,path") and row.startswith("skipnet_m,executorch,fp32,")
