"""Assemble the self-contained arm64 runner bundle (``make runner-arm64`` runs this).

    python android_app/assemble_bundle.py --runner BUILD/mobilebench_runner \\
        --search SDK/executorch/lib --search /usr/aarch64-linux-gnu/lib --out BUNDLE

The bundle is a folder: the runner, ``lib/`` with every shared library it needs
(``readelf -d``, transitively: the ExecuTorch libraries of the wheel, libstdc++, libgcc_s,
glibc) and its own glibc loader, and ``manifest.json`` (see
:mod:`mobilebench.bench.runner_builds`). Started as ``lib/ld-linux-aarch64.so.1
--library-path lib ./mobilebench_runner ...`` it uses nothing of the system it runs on,
which is what lets a glibc program run on Android (which has no glibc).

Libraries are looked up by their ``NEEDED`` name in the ``--search`` folders in order (so
the wheel's ExecuTorch libraries are found before anything of the same name elsewhere)
and copied under that name, symbolic links resolved. Every file must be an AArch64 ELF
whose LOAD segments are aligned to at least 16 KB: kernels with 16 KB pages (recent
Pixels) refuse anything less. The folder is built next to ``--out`` and swapped in at the
end, so a failed run leaves the previous bundle as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mobilebench.bench.runner_builds import (
    BUNDLE_LIBRARY_DIR,
    BUNDLE_MANIFEST,
    MIN_SEGMENT_ALIGNMENT,
    BundleFile,
    BundleManifest,
)
from mobilebench.files import file_sha256, write_text_atomic

READELF = os.environ.get("READELF", "aarch64-linux-gnu-readelf")

_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")
_INTERPRETER = re.compile(r"\[Requesting program interpreter: ([^\]]+)\]")
_MACHINE = re.compile(r"^\s*Machine:\s+(.+)$", re.MULTILINE)


class BundleError(Exception):
    """A library that cannot be found or a file that would not run on the phone."""


def readelf(*args: str) -> str:
    proc = subprocess.run([READELF, "-W", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BundleError(f"{READELF} {' '.join(args)}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    return proc.stdout


def load_alignments(path: Path) -> list[int]:
    """The ``Align`` column of every LOAD program header (bytes)."""
    return [int(line.split()[-1], 16) for line in readelf("-l", str(path)).splitlines() if line.split()[:1] == ["LOAD"]]


def check_elf(path: Path, label: str) -> None:
    machine = _MACHINE.search(readelf("-h", str(path)))
    if machine is None or machine.group(1).strip() != "AArch64":
        raise BundleError(f"{label} is not an AArch64 ELF file (machine: {machine.group(1) if machine else '?'})")
    alignments = load_alignments(path)
    if not alignments or min(alignments) < MIN_SEGMENT_ALIGNMENT:
        raise BundleError(
            f"{label}: LOAD segments aligned to {min(alignments, default=0)} bytes; 16 KB-page kernels need "
            f">= {MIN_SEGMENT_ALIGNMENT} (link with -z max-page-size=65536)"
        )


def find_library(name: str, search: list[Path]) -> Path:
    for folder in search:
        if (folder / name).is_file():
            return folder / name
    raise BundleError(f"{name} not found in {', '.join(map(str, search))}")


def dependencies(runner: Path, search: list[Path]) -> tuple[Path, dict[str, Path]]:
    """The runner's loader and every library it needs, transitively, by NEEDED name."""
    program = readelf("-l", "-d", str(runner))
    interpreter = _INTERPRETER.search(program)
    if interpreter is None:
        raise BundleError(f"{runner} names no program interpreter (a static binary needs no bundle)")
    loader = find_library(Path(interpreter.group(1)).name, search)
    found: dict[str, Path] = {}
    pending = _NEEDED.findall(program)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = find_library(name, search)
        pending += _NEEDED.findall(readelf("-d", str(found[name])))
    return loader, found


def assemble(runner: Path, search: list[Path], out: Path) -> BundleManifest:
    loader, libraries = dependencies(runner, search)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / BUNDLE_LIBRARY_DIR).mkdir()
        # The loader is also a NEEDED entry of libc.so.6; it is the one library executed.
        copies = {f"{BUNDLE_LIBRARY_DIR}/{name}": (path, 0o644) for name, path in libraries.items()}
        copies |= {runner.name: (runner, 0o755), f"{BUNDLE_LIBRARY_DIR}/{loader.name}": (loader, 0o755)}
        files = []
        for relative, (source, mode) in sorted(copies.items()):
            target = staging / relative
            shutil.copyfile(source, target)  # follows symbolic links
            os.chmod(target, mode)
            check_elf(target, str(source))
            files.append(BundleFile(relative, file_sha256(target), target.stat().st_size, mode))
        manifest = BundleManifest(
            runner=runner.name, loader=f"{BUNDLE_LIBRARY_DIR}/{loader.name}", library_dir=BUNDLE_LIBRARY_DIR, files=tuple(files)
        )
        write_text_atomic(staging / BUNDLE_MANIFEST, json.dumps(manifest.to_json(), indent=2) + "\n")
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", type=Path, required=True, help="the cross-built mobilebench_runner")
    parser.add_argument("--search", type=Path, action="append", required=True, help="a library folder (in order)")
    parser.add_argument("--out", type=Path, required=True, help="the bundle folder to (re)create")
    args = parser.parse_args(argv)
    try:
        manifest = assemble(args.runner, args.search, args.out)
    except (BundleError, OSError) as exc:
        print(f"assemble_bundle.py: error: {exc}", file=sys.stderr)
        return 1
    size = sum(f.size for f in manifest.files)
    print(f"bundle {args.out}: {len(manifest.files)} files, {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
