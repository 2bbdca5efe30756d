"""android_app/assemble_bundle.py on a tiny cross-compiled program: the closure of its
libraries, the manifest, the swap, and the refusal of a 4 KB-aligned file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobilebench.bench.runner_builds import BundleManifest
from mobilebench.paths import project_root

from .conftest import QEMU_CPU, loader_argv

pytestmark = pytest.mark.slow

SYSROOT_LIB = "/usr/aarch64-linux-gnu/lib"


def cross_compile(tmp_path: Path, name: str, *flags: str) -> Path:
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.fail("aarch64-linux-gnu-gcc is missing; run `make runner-arm64` (it installs the cross toolchain)", pytrace=False)
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hello from aarch64"); return 0; }\n')
    binary = tmp_path / name
    subprocess.run(["aarch64-linux-gnu-gcc", "-O1", *flags, str(source), "-o", str(binary)], check=True)
    return binary


def assemble(runner: Path, out: Path) -> subprocess.CompletedProcess[str]:
    script = project_root() / "android_app" / "assemble_bundle.py"
    argv = [sys.executable, str(script), "--runner", str(runner), "--search", SYSROOT_LIB, "--out", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_bundle_holds_the_program_its_libraries_and_loader(tmp_path: Path, qemu: Path) -> None:
    out = tmp_path / "bundle"
    first = assemble(cross_compile(tmp_path, "hello", "-Wl,-z,max-page-size=65536"), out)
    assert first.returncode == 0, first.stderr
    manifest = BundleManifest.read(out)
    assert [f.path for f in manifest.files] == ["hello", "lib/ld-linux-aarch64.so.1", "lib/libc.so.6"]
    assert manifest.runner == "hello" and manifest.loader == "lib/ld-linux-aarch64.so.1"
    ran = subprocess.run([str(qemu), "-cpu", QEMU_CPU, *loader_argv(out, manifest)], capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "hello from aarch64\n"), ran.stderr

    # Assembled again, the folder is replaced whole; nothing is left beside it.
    (out / "stale").write_text("from an older bundle")
    assert assemble(out / "hello", tmp_path / "again").returncode == 0
    assert assemble(tmp_path / "again" / "hello", out).returncode == 0
    assert not (out / "stale").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["again", "bundle", "hello", "hello.c"]


def test_a_file_aligned_for_4k_pages_only_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = assemble(cross_compile(tmp_path, "hello4k", "-Wl,-z,max-page-size=4096"), out)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"assemble_bundle.py: error: {tmp_path}/hello4k: LOAD segments aligned to 4096 bytes; "
        "16 KB-page kernels need >= 16384 (link with -z max-page-size=65536)"
    ]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["hello.c", "hello4k"]


def test_a_program_for_another_machine_is_refused(tmp_path: Path, runner_binary: Path) -> None:
    result = assemble(runner_binary, tmp_path / "bundle")
    assert result.returncode == 1 and "ld-linux-x86-64.so.2 not found" in result.stderr, result.stderr
