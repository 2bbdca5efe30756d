"""Device profiles: built-ins, load order, key-level overrides, errors with file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mobilebench import paths
from mobilebench.device.profiles import get_profile, load_profiles, parse_address
from mobilebench.errors import UsageError


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project dir as cwd and an empty user config dir."""
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("MOBILEBENCH_CONFIG_DIR", str(config))
    cwd = tmp_path / "project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_builtins_follow_the_reference_facts(project: Path) -> None:
    profiles = load_profiles()
    assert set(profiles) == {"pixel4", "pixel3", "host", "emulator"}
    pixel4 = profiles["pixel4"]
    assert pixel4.transport == "adb-usb" and pixel4.address is None  # no address built in
    assert pixel4.cpus == (7,) and pixel4.expected_model == "Pixel 4" and not pixel4.emulated
    assert pixel4.workdir == "/data/local/tmp/mobilebench"
    assert pixel4.runners["executorch"] == "mobilebench_runner"
    assert profiles["pixel3"].expected_model == "Pixel 3"
    emulator = profiles["emulator"]
    assert (emulator.transport, emulator.address, emulator.emulated) == ("adb-tcp", "127.0.0.1:5555", True)
    host = profiles["host"]
    assert host.transport == "local" and host.workdir == str(paths.cache_dir() / "host")
    assert all(p.source == "built-in" for p in profiles.values())


def test_load_order_user_then_project_then_extra(project: Path, tmp_path: Path) -> None:
    (paths.config_dir() / "devices.toml").write_text(
        '[pixel4]\ntransport = "adb-tcp"\naddress = "10.0.0.4:5555"\n\n[lab]\ntransport = "adb-tcp"\naddress = "10.0.0.9"\ncpus = [4]\n'
    )
    (project / "devices.toml").write_text('[pixel4]\naddress = "10.0.0.5:5556"\n\n[pixel4.runners]\ntflite = "benchmark_model"\n')
    extra = tmp_path / "extra.toml"
    extra.write_text('[lab]\ncpus = [5, 6]\nworkdir = "/data/local/tmp/lab"\n')

    profiles = load_profiles(extra)
    pixel4 = profiles["pixel4"]
    # Keys override one by one: transport from the user file, address from the project.
    assert (pixel4.transport, pixel4.address) == ("adb-tcp", "10.0.0.5:5556")
    assert pixel4.cpus == (7,) and pixel4.expected_model == "Pixel 4"  # kept from the built-in
    assert pixel4.runners == {
        "executorch": "mobilebench_runner",
        "onnx": "onnxruntime_perf_test",
        "tflite": "benchmark_model",
    }
    assert pixel4.source == str(project / "devices.toml")
    lab = profiles["lab"]
    assert lab.address == "10.0.0.9:5555"  # default ADB port
    assert lab.cpus == (5, 6) and lab.workdir == "/data/local/tmp/lab" and lab.source == str(extra)


def test_unknown_key_names_file_line_and_suggestion(project: Path) -> None:
    (project / "devices.toml").write_text('# my phones\n[pixel4]\naddress = "10.0.0.5"\n\n[mine]\ntransport = "adb-tcp"\ncpu = [7]\n')
    with pytest.raises(UsageError) as info:
        load_profiles()
    message = str(info.value)
    assert message.startswith(f"{project / 'devices.toml'}:7:")
    assert "unknown key 'cpu' in [mine]" in message and "did you mean 'cpus'" in message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[a]\ntransport = "adb-tcp"\ncpus = ["seven"]\n', 3, "a.cpus must be a list of integers >= 0, got ['seven']"),
        ('[a]\ntransport = "bluetooth"\ncpus = [7]\n', 2, "a.transport must be one of adb-tcp, adb-usb, local"),
        ('[a]\ntransport = "adb-tcp"\ncpus = [7]\naddress = "host:99999"\n', 4, "a.address must have a port from 1 to 65535"),
        ('[a]\ntransport = "adb-tcp"\ncpus = [7]\nemulated = "yes"\n', 4, "a.emulated must be true or false"),
        ('[a]\ntransport = "adb-tcp"\ncpus = [7]\nworkdir = "tmp/x"\n', 4, "a.workdir must be an absolute path"),
        ('[a]\ntransport = "adb-tcp"\ncpus = [7]\n\n[a.runners]\nexecutorch = 3\n', 6, "a.runners.executorch must be a non-empty string, got 3"),
        ('a.cpus = [7, 7]\na.transport = "local"\n', 1, "lists a CPU twice"),
        ('[a]\ntransport = "adb-tcp"\ncpus = []\n', 3, "a.cpus must be a non-empty list of CPU numbers"),
        ('title = "phones"\n', 1, "top-level key 'title' is not a profile table"),
    ],
)
def test_bad_values_name_file_and_line(project: Path, text: str, line: int, fragment: str) -> None:
    (project / "devices.toml").write_text(text)
    with pytest.raises(UsageError) as info:
        load_profiles()
    assert str(info.value).startswith(f"{project / 'devices.toml'}:{line}:"), str(info.value)
    assert fragment in str(info.value)


def test_invalid_toml_and_incomplete_profile(project: Path) -> None:
    (project / "devices.toml").write_text("[a]\ntransport = \n")
    with pytest.raises(UsageError, match=r"devices.toml: invalid TOML: .*line 2"):
        load_profiles()
    (project / "devices.toml").write_text('[lab]\ntransport = "adb-tcp"\n')
    with pytest.raises(UsageError, match=r"devices.toml:1: profile 'lab' has no cpus"):
        load_profiles()


def test_missing_extra_file_is_an_error(project: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="devices file .*nope.toml does not exist"):
        load_profiles(tmp_path / "nope.toml")


def test_get_profile_suggests_and_takes_an_address(project: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown device profile 'pixle4'; did you mean 'pixel4'"):
        get_profile("pixle4")
    over_tcp = get_profile("pixel4", address="192.168.1.20")
    assert (over_tcp.transport, over_tcp.address, over_tcp.serial) == ("adb-tcp", "192.168.1.20:5555", None)
    assert over_tcp.cpus == (7,)
    with pytest.raises(UsageError, match="--address"):
        get_profile("host", address="1.2.3.4:5555")
    with pytest.raises(UsageError, match="--address must have a port from 1 to 65535"):
        get_profile("pixel4", address="1.2.3.4:0")


def test_address_forms() -> None:
    assert parse_address("10.0.0.1") == "10.0.0.1:5555"
    assert parse_address("phone.lab:6000") == "phone.lab:6000"
    assert parse_address("[::1]:5037") == "[::1]:5037"
    for bad in ("", "::1", "a b:5", "h:x"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_local_workdir_expands_home(project: Path) -> None:
    (project / "devices.toml").write_text('[host]\nworkdir = "~/mb-work"\n')
    assert load_profiles()["host"].workdir == os.path.expanduser("~/mb-work")
