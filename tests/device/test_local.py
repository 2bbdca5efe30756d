"""The ``local`` transport (the ``host`` profile): same interface, argv lists, no shell."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.device import connect, get_profile
from mobilebench.errors import MobilebenchError


@pytest.fixture
def host(tmp_path: Path):
    profile = replace(get_profile("host"), workdir=str(tmp_path / "work"))
    with connect(profile) as dev:
        yield dev


def test_statuses_match_a_shells(host, tmp_path: Path) -> None:
    result = host.run(["sh", "-c", "echo out; echo err >&2; exit 4"], timeout_s=10)
    assert (result.stdout, result.exit_code) == ("out\nerr\n", 4)
    assert host.run(["sh", "-c", "kill -SEGV $$"], timeout_s=10).exit_code == 139
    assert host.run(["no-such-tool-xyz"], timeout_s=10).exit_code == 127
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    assert host.run([str(script)], timeout_s=10).exit_code == 126
    assert host.run(["pwd"], timeout_s=10, cwd=str(tmp_path)).stdout.strip() == str(tmp_path)
    assert host.run(["sh", "-c", 'echo "$MB_Y"'], timeout_s=10, env={"MB_Y": "v"}).stdout == "v\n"
    assert host.run(["true"], timeout_s=10, cwd=str(tmp_path / "missing")).exit_code == 2


def test_arguments_are_never_interpreted(host, tmp_path: Path) -> None:
    victim = tmp_path / "pwned"
    result = host.run(["echo", f"a; touch {victim}", f"$(touch {victim})"], timeout_s=10)
    assert result.exit_code == 0 and not victim.exists()


def test_timeout_kills_the_whole_command(host, tmp_path: Path) -> None:
    marker = tmp_path / "late"
    with pytest.raises(MobilebenchError, match=r"command 'sh' did not finish within 0.5 s"):
        host.run(["sh", "-c", f"sleep 3; touch {marker}"], timeout_s=0.5)
    assert not marker.exists()


def test_files_push_pull_stat_remove(host, tmp_path: Path) -> None:
    local = tmp_path / "runner"
    local.write_bytes(b"\x7fELF" + os.urandom(1000))
    remote = f"{host.profile.workdir}/bin/runner"
    seen: list[tuple[int, int]] = []
    assert host.push_if_changed(local, remote, mode=0o755, progress=lambda d, t: seen.append((d, t))) is True
    assert seen[-1] == (1004, 1004)
    st = host.stat(remote)
    assert st.is_file and st.size == 1004 and st.permissions == 0o755
    assert host.push_if_changed(local, remote, mode=0o755) is False
    host.pull(remote, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == local.read_bytes()
    host.remove(remote)
    assert host.stat(remote) is None
    host.remove(remote)  # missing is fine
    assert [p.name for p in Path(host.profile.workdir).rglob("*")] == ["bin"]  # no temp files
    assert not stat.S_ISDIR(os.stat(tmp_path / "back").st_mode)


def test_state_of_this_machine(host) -> None:
    state = host.read_state(0)
    assert state.model and state.free_bytes > 0 and state.rooted == (os.geteuid() == 0)
    assert state.emulated is False and "android_version" in state.unavailable
