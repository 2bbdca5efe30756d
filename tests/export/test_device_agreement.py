"""``mobilebench eval --device``: the .pte whose accuracy eval measured here is run on a
phone for some of the split's images, and its outputs are compared with this computer's.

The phones are the project's emulator: the x86-64 one runs the host runner, the arm64
one the aarch64 bundle under qemu (another CPU's XNNPACK kernels: a real, small fp32
difference). The network is trained on digits, so its outputs are realistic logits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mobilebench.bench.agreement import relative_difference
from mobilebench.bench.runner_builds import NATIVE_RUNNER_BUILDS
from mobilebench.device.emulator import PhoneEmulator
from mobilebench.errors import MobilebenchError
from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow

QUIET = ["--workers", "0", "--no-progress"]
CHECK_FOLDER = ("data", "local", "tmp", "mobilebench", "check")


def emulator(root: Path, **options):
    from mobilebench.device.keys import ensure_key_pair

    if shutil.which("bwrap") is None:
        pytest.fail("the phone emulator needs bubblewrap (apt-get install bubblewrap)", pytrace=False)
    key = ensure_key_pair()
    return PhoneEmulator(root, accepted_keys=[key.with_name("adbkey.pub")], **options)


@pytest.fixture(scope="module")
def x86_phone(tmp_path_factory: pytest.TempPathFactory):
    with emulator(tmp_path_factory.mktemp("x86") / "phone") as phone:
        yield phone


@pytest.fixture(scope="module")
def arm64_phone(tmp_path_factory: pytest.TempPathFactory):
    if not (NATIVE_RUNNER_BUILDS["linux-arm64"] / "manifest.json").is_file():
        pytest.fail("the arm64 bundle is not built; run `make runner-arm64`", pytrace=False)
    with emulator(tmp_path_factory.mktemp("arm64") / "phone", abi="arm64-v8a") as phone:
        yield phone


def accuracy_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with ResultsStore(db, create=False) as store:
        return len(store.accuracy_records())


def test_the_emulated_phone_computes_what_this_computer_computes(cli, digits_checkpoint: Path, x86_phone, tmp_path):
    db = tmp_path / "r.sqlite"
    args = ["eval", digits_checkpoint, "--runtime", "executorch", "--device", "emulator", "--address", x86_phone.address]
    result = cli(*args, "--device-inputs", "8", "--db", db, *QUIET, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no tool-chain noise either
    (row,) = json.loads(result.stdout)
    assert (row["device"], row["device_model"], row["device_abi"], row["device_runner"]) == (
        "emulator", "Pixel 4", "x86_64", "host"
    )
    assert (row["device_inputs"], row["device_top1_same"], row["device_agrees"]) == (8, 8, True)
    assert 0 <= row["device_max_rel_diff"] <= 1e-5 and row["device_tolerance"] == 1e-3
    assert row["top1"] >= 90 and row["count"] == 360  # the host measurement is whole, and stored
    assert accuracy_rows(db) == 1
    assert not Path(x86_phone.root.root, *CHECK_FOLDER).exists()  # inputs and outputs cleaned up
    # csv: the device columns follow the accuracy ones.
    csv = cli(*args, "--device-inputs", "2", "--db", db, *QUIET, "--format", "csv")
    assert csv.exit_code == 0, csv.output
    header, line = csv.stdout.strip().splitlines()
    assert header.endswith(",device,device_model,device_abi,device_runner,device_inputs,device_top1_same,device_max_rel_diff,"
                           "device_tolerance,device_agrees")
    assert line.split(",")[-5:-3] == ["2", "2"] and line.endswith(",0.001,yes")


def test_an_arm64_phone_agrees_within_the_tolerance_and_not_exactly(cli, digits_checkpoint: Path, arm64_phone, tmp_path):
    """Under qemu each image is a runner start (seconds): few images."""
    db = tmp_path / "r.sqlite"
    args = ["eval", digits_checkpoint, "--runtime", "executorch", "--device", "emulator",
            "--address", arm64_phone.address, "--device-inputs", "3", "--db", db, *QUIET]  # fmt: skip
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["device_abi"], row["device_runner"], row["device_inputs"], row["device_top1_same"]) == (
        "arm64-v8a", "linux-arm64", 3, 3
    )
    # Arm's XNNPACK kernels sum in another order: close, not bit-identical.
    assert 0 < row["device_max_rel_diff"] <= 1e-5 and row["device_agrees"]
    # At tolerance 0 the same difference fails the check: exit 1 and one line saying so,
    # after the row (the host accuracy is a measurement of its own and is stored).
    strict = cli(*args, "--tolerance", "0", "--format", "json")
    assert strict.exit_code == 1, strict.output
    (row,) = json.loads(strict.stdout)
    assert row["device_agrees"] is False and row["device_tolerance"] == 0
    (line,) = strict.stderr.strip().splitlines()
    assert line.startswith("emulator does not compute what this computer computes: |device - host| reached ")
    assert "(tolerance 0); top-1 the same on 3 of 3 images" in line
    assert accuracy_rows(db) == 2
    # int8: integer kernels and one requantisation; well within its tolerance.
    int8 = cli(*args, "--dtype", "int8", "--format", "json")
    assert int8.exit_code == 0, int8.output
    (row,) = json.loads(int8.stdout)
    assert row["dtype"] == "int8" and row["device_agrees"] and row["device_tolerance"] == 3e-2


def test_a_check_that_cannot_finish_stores_nothing(cli, digits_checkpoint: Path, x86_phone, tmp_path) -> None:
    db = tmp_path / "r.sqlite"
    args = ["eval", digits_checkpoint, "--runtime", "executorch", "--device-inputs", "2", "--db", db, *QUIET]
    x86_phone.faults.crash_match = "mobilebench_runner"
    x86_phone.faults.crash_next_command = True
    crashed = cli(*args, "--device", "emulator", "--address", x86_phone.address)
    assert crashed.exit_code == 1
    (line,) = crashed.stderr.strip().splitlines()
    assert line.startswith("error: ") and "SIGSEGV" in line, line
    # An address nobody answers on.
    unreachable = cli(*args, "--device", "emulator", "--address", "127.0.0.1:1")
    assert unreachable.exit_code == 1
    (line,) = unreachable.stderr.strip().splitlines()
    assert line.startswith("error: ") and "127.0.0.1:1" in line, line
    assert accuracy_rows(db) == 0
    assert not Path(x86_phone.root.root, *CHECK_FOLDER).exists()


def test_what_the_check_refuses(cli, digits_checkpoint: Path, tmp_path: Path) -> None:
    common = [digits_checkpoint, "--db", tmp_path / "r.sqlite", *QUIET]
    for extra, message in (
        (["--runtime", "onnx", "--device", "emulator"], "--device runs the .pte on the device: use --runtime executorch"),
        (["--device", "emulator"], "keeping outputs for an on-device check needs an exported artifact: add --runtime executorch"),
        (["--runtime", "executorch", "--tolerance", "0.1"], "--tolerance applies to the --device check"),
    ):
        result = cli("eval", *common, *extra)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {message}\n"


def test_the_kept_inputs_are_spread_over_the_split_with_their_outputs(digits_checkpoint: Path) -> None:
    import torch

    from mobilebench.export.parity import ExecutorchSession
    from mobilebench.train.evaluate import EvalRequest, evaluate_named

    request = EvalRequest(name=str(digits_checkpoint), runtime="executorch", keep_outputs=5, workers=0)
    kept = evaluate_named(request).host_outputs
    assert kept is not None and len(kept.inputs) == len(kept.outputs) == 5
    assert all(x.shape == (1, 3, 32, 32) and x.dtype == np.float32 for x in kept.inputs)
    assert len({x.tobytes() for x in kept.inputs}) == 5
    # Several classes: the images are spread over the split, not its first few.
    assert len({int(np.argmax(y)) for y in kept.outputs}) >= 3
    session = ExecutorchSession(kept.artifact.path)
    for x, y in zip(kept.inputs, kept.outputs):
        np.testing.assert_array_equal(session(torch.from_numpy(x)), y)


def test_relative_difference() -> None:
    host = np.array([4.0, -8.0, 1.0], dtype=np.float32)
    assert relative_difference(host.copy(), host) == 0.0
    assert relative_difference(np.array([4.0, -8.0, 1.8], dtype=np.float32), host) == pytest.approx(0.1)
    assert relative_difference(np.array([4.0, np.nan, 1.0], dtype=np.float32), host) == float("inf")
    # All-zero host outputs: absolute differences.
    assert relative_difference(np.array([0.0, 0.5]), np.zeros(2)) == 0.5
    with pytest.raises(MobilebenchError, match="the device's output has 2 values, this computer's 3"):
        relative_difference(np.zeros(2), host)
