"""The accuracy of the artifact that is timed: a network trained on digits, named only by
its checkpoint, evaluated in eager PyTorch and as .pte (fp32, int8 calibrated on its
training digits) and .onnx in their runtimes; stored with the artifact's hash; profiled
as int8 on this computer. Mistaken sizes and class counts are caught."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from mobilebench.cli.main import main
from mobilebench.files import file_sha256
from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow

QUIET = ["--workers", "0", "--no-progress", "--format", "json"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("accuracy") / "results.sqlite"


@pytest.fixture(scope="module")
def measured(digits_checkpoint: Path, db: Path) -> dict[str, dict]:
    """``mobilebench eval CHECKPOINT`` with no other flag, then each artifact (the
    ``cli`` fixture is per test; this runs the same entry point once per module)."""
    rows = {}
    for label, extra in {
        "eager": [],
        "pte": ["--runtime", "executorch"],
        "pte-int8": ["--runtime", "executorch", "--dtype", "int8"],
        "onnx": ["--runtime", "onnx"],
    }.items():
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            assert main(["eval", str(digits_checkpoint), "--db", str(db), *QUIET, *extra]) == 0
        (rows[label],) = json.loads(stdout.getvalue())
    return rows


def error_line(result) -> str:
    """The one ``error:`` line of a failed command (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_the_checkpoint_alone_is_enough(measured: dict[str, dict], digits_checkpoint: Path) -> None:
    eager = measured["eager"]
    assert eager["top1"] >= 90.0, eager
    assert (eager["arch"], eager["dataset"], eager["count"], eager["input_size"]) == ("test_digits_net", "digits", 360, 32)
    assert (eager["runtime"], eager["artifact_sha256"], eager["weights"]) == ("eager", None, "plain")
    assert eager["checkpoint_sha256"] == file_sha256(digits_checkpoint)


def test_each_artifact_is_measured_in_its_runtime(measured: dict[str, dict], db: Path) -> None:
    eager = measured["eager"]["top1"]
    assert abs(measured["pte"]["top1"] - eager) <= 0.5
    assert abs(measured["onnx"]["top1"] - eager) <= 0.5
    assert abs(measured["pte-int8"]["top1"] - eager) <= 3.0
    with ResultsStore(db) as store:
        for label, runtime, dtype in (("pte", "executorch", "fp32"), ("pte-int8", "executorch", "int8"), ("onnx", "onnx", "fp32")):
            row = measured[label]
            assert Path(row["artifact"]).is_file() and file_sha256(row["artifact"]) == row["artifact_sha256"]
            (record,) = store.accuracy_records(artifact_sha256=row["artifact_sha256"])
            assert (record.runtime, record.dtype, record.images, record.model) == (runtime, dtype, 360, "best")
            assert record.top1 == pytest.approx(row["top1"], abs=1e-3)
            assert record.source.startswith(f"measured on the {'.pte' if runtime == 'executorch' else '.onnx'}")


def test_int8_is_calibrated_on_the_training_digits(measured: dict[str, dict]) -> None:
    sidecar = json.loads(Path(measured["pte-int8"]["artifact"]).with_suffix(".json").read_text())
    calibration = sidecar["calibration"]
    assert (calibration["source"], calibration["dataset"], calibration["split"]) == ("dataset", "digits", "train")
    assert not calibration["synthetic"] and calibration["inputs_fed"] == 128 and len(calibration["inputs_sha256"]) == 64
    assert sidecar["export"]["quantization"]["weights"] == "int8 symmetric per-channel"


def test_export_and_flops_take_the_checkpoint_alone(measured: dict[str, dict], digits_checkpoint: Path, cli) -> None:
    result = cli("export", digits_checkpoint, "--format", "json")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert exported["cached"] and exported["sha256"] == measured["pte"]["artifact_sha256"]
    assert exported["input_shape"] == [1, 3, 32, 32] and exported["provenance"]["model"]["options"] == {"width": 32}
    result = cli("flops", digits_checkpoint, "--format", "json")
    assert result.exit_code == 0, result.output
    (cost,) = json.loads(result.stdout)
    assert (cost["model"], cost["arch"], cost["input_size"]) == ("best", "test_digits_net", 32) and cost["flops"] > 0


def test_profile_of_the_checkpoint_as_int8(measured: dict[str, dict], digits_checkpoint: Path, runner_binary, cli,
                                          tmp_path: Path) -> None:
    result = cli("profile", digits_checkpoint, "--dtype", "int8", "--device", "host", "--warmup", "1",
                 "--iterations", "5", "--db", tmp_path / "runs.sqlite", "--format", "json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    assert (run["status"], run["dtype"], run["input_shape"], run["n"]) == ("ok", "int8", "1x3x32x32", 5)
    # The very artifact whose accuracy eval measured (a cache hit, same calibration).
    assert run["artifact_sha256"] == measured["pte-int8"]["artifact_sha256"]


def test_a_wrong_class_count_or_input_size_is_caught(measured, digits_checkpoint: Path, cli, tmp_path: Path) -> None:
    common = [*QUIET, "--db", tmp_path / "r.sqlite"]
    line = error_line(cli("eval", digits_checkpoint, "--num-classes", "1000", *common))
    assert "has 10 classes (trained on digits); --num-classes says 1000" in line
    line = error_line(cli("eval", "skipnet_m", "--checkpoint", digits_checkpoint, *common))
    assert "holds a trained test_digits_net, not skipnet_m" in line
    # Another input size is measured (a resolution study), and said on stderr.
    other = cli("eval", digits_checkpoint, "--input-size", "64", *common)
    assert other.exit_code == 0, other.output
    assert "warning: best.pt was trained at 32x32 pixels; --input-size asks for 64" in other.stderr
    (row,) = json.loads(other.stdout)
    assert row["input_size"] == 64 and row["warnings"]
    # A dataset with other classes than the checkpoint's is refused, not scored.
    for name in ("cat", "dog"):
        (tmp_path / "pets" / "val" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40), (9, 9, 9)).save(tmp_path / "pets" / "val" / name / "a.png")
    line = error_line(cli("eval", digits_checkpoint, "--dataset", "imagefolder", "--data", tmp_path / "pets", *common))
    assert "has classes the model was not trained on: cat, dog" in line


def test_compare_fp32_and_int8_of_the_checkpoint(measured, digits_checkpoint: Path, runner_binary, cli, tmp_path) -> None:
    """fp32 against int8 is one comparison; the int8 side is calibrated on the training
    digits like every int8 export of the checkpoint (the same cached artifact)."""
    args = ["compare", digits_checkpoint, digits_checkpoint, "--candidate-dtype", "int8", "--device", "host"]
    result = cli(*args, "--pairs", "10", "--batches", "1", "--looks", "1", "--db", tmp_path / "c.sqlite", "--format", "json")
    assert result.exit_code in (0, 1, 3), result.stderr
    out = json.loads(result.stdout)
    with ResultsStore(tmp_path / "c.sqlite", create=False) as store:
        base, cand = (store.get_run(i) for i in out["runs"])
    assert (base.meta.dtype, cand.meta.dtype) == ("fp32", "int8") and out["mode"] == "interleaved"
    assert cand.meta.artifact_sha256 == measured["pte-int8"]["artifact_sha256"]
