"""``mobilebench devices`` and ``mobilebench emulator`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MOBILEBENCH = [sys.executable, "-m", "mobilebench.cli.main"]


def mobilebench(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*MOBILEBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_devices_check_prints_the_emulators_state(emulator, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "devices.toml").write_text(f'[emulator]\naddress = "{emulator.address}"\n')

    table = mobilebench("devices", "emulator", "--check", cwd=project)
    assert table.returncode == 0, table.stderr
    assert "Pixel 4" in table.stdout and "schedutil" in table.stdout and "2842" in table.stdout

    data = json.loads(mobilebench("devices", "emulator", "--check", "--format", "json", cwd=project).stdout)
    (row,) = data
    assert row["status"] == "ok" and row["endpoint"] == emulator.address
    assert row["source"] == str(project / "devices.toml")
    state = row["state"]
    assert (state["model"], state["board"], state["android_version"], state["emulated"]) == ("Pixel 4", "msmnile", "13", True)
    assert state["cpu"] == 7 and state["cpu_temp_c"] == pytest.approx(30.0) and len(state["thermal"]) == 16

    listing = mobilebench("devices", "--format", "csv", cwd=project)
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("name,transport,endpoint,workdir,cpus")
    assert any(line.startswith(f"emulator,adb-tcp,{emulator.address},") for line in lines)


def test_devices_clean_removes_the_pushed_models(device, emulator, tmp_path: Path) -> None:
    model = tmp_path / "abc.pte"
    model.write_bytes(b"x" * 1000)
    device.push(model, f"{device.profile.model_dir}/abc.pte")
    models = emulator.root.data / "local" / "tmp" / "mobilebench" / "models"
    (tmp_path / "devices.toml").write_text(f'[emulator]\naddress = "{emulator.address}"\n')
    result = mobilebench("devices", "emulator", "--clean", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["status"], row["removed_models"], row["removed_bytes"]) == ("ok", 1, 1000)
    assert not models.exists() and models.parent.is_dir()
    table = mobilebench("devices", "emulator", "--clean", cwd=tmp_path)
    assert table.returncode == 0 and "model caches" in table.stdout


def test_devices_check_reports_unreachable_devices(tmp_path: Path) -> None:
    (tmp_path / "devices.toml").write_text('[gone]\ntransport = "adb-tcp"\naddress = "127.0.0.1:9"\ncpus = [0]\n')
    result = mobilebench("devices", "gone", "--check", "--timeout", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach device 'gone' at 127.0.0.1:9: connection refused" in " ".join(result.stdout.split())
    assert result.stderr == "error: the check failed for 1 of 1 device(s): gone\n"


def test_devices_rejects_bad_profiles_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "devices.toml").write_text('[p]\ntransport = "adb-tcp"\ncpus = [7]\ncolour = "red"\n')
    result = mobilebench("devices", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'devices.toml'}:4: unknown key 'colour'")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_emulator_command_serves_until_sigterm(tmp_path: Path, adb_key: Path) -> None:
    proc = subprocess.Popen(
        [*MOBILEBENCH, "emulator", "--port", "0", "--root", str(tmp_path / "phone"), "--accept-key", str(adb_key) + ".pub", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("emulator listening on 127.0.0.1:"), line + proc.stderr.read()  # type: ignore[union-attr]
        port = int(line.split(":")[1].split()[0])
        (tmp_path / "devices.toml").write_text(f'[emulator]\naddress = "127.0.0.1:{port}"\n')
        check = mobilebench("devices", "emulator", "--check", "--format", "json", cwd=tmp_path)
        assert json.loads(check.stdout)[0]["state"]["model"] == "Pixel 4"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "emulator stopped" in out


def test_emulator_command_rejects_bad_options(tmp_path: Path) -> None:
    result = mobilebench("emulator", "--root", str(tmp_path / "p"), "--profile", "iphone", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'iphone'" in result.stderr
    result = mobilebench("emulator", "--root", str(tmp_path / "p"), "--hot-zone", "cpu7", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--hot-zone: expected ZONE=TEMP_C" in result.stderr
    start = time.monotonic()
    result = mobilebench("emulator", "--root", str(tmp_path / "p"), "--accept-key", str(tmp_path / "none.pub"), "--port", "0", cwd=tmp_path)
    assert result.returncode == 1 and "accepted key" in result.stderr and time.monotonic() - start < 30
    mine = tmp_path / "mine"
    (mine / "system").mkdir(parents=True)
    (mine / "system" / "keep.txt").write_text("mine")
    result = mobilebench("emulator", "--root", str(mine), "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "is not empty and is not a phone emulator's folder" in result.stderr
    assert (mine / "system" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_auth_none_is_explained_and_warned_about(tmp_path: Path) -> None:
    help_text = " ".join(mobilebench("emulator", "--help", cwd=tmp_path).stdout.split())
    assert "none: ANYONE who can reach the port gets a shell on the phone" in help_text
    proc = subprocess.Popen(
        [*MOBILEBENCH, "emulator", "--port", "0", "--root", str(tmp_path / "phone"), "--auth", "none", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        warning = proc.stderr.readline()  # type: ignore[union-attr]
        assert warning.startswith("warning: --auth none: anyone who can reach 127.0.0.1:"), warning
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["emulator", "--port", "0"], "the following arguments are required: --root"),
        (["emulator", "--root", "p", "--port", "65536"], "argument --port: 65536 is above the maximum 65535"),
        (["emulator", "--root", "p", "--auth", "rsa"], "argument --auth: invalid choice: 'rsa'"),
        (["emulator", "--root", "p", "--abi", "mips"], "argument --abi: invalid choice: 'mips'"),
        (["devices", "--timeout", "0"], "argument --timeout: 0 is below the minimum 0.1"),
        (["devices", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
    ],
    ids=["emulator-root", "emulator-port", "emulator-auth", "emulator-abi", "devices-timeout", "devices-format"],
)
def test_usage_errors_are_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    result = mobilebench(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and needle in result.stderr
    assert not (tmp_path / "p").exists()
