"""What goes in and comes out: generated and file inputs, dumped outputs, ETDump, JSON text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PASSTHROUGH_SHAPES = ((2, 3, 5), (4,))


def splitmix64_inputs(seed: int, count: int) -> np.ndarray:
    """The runner's documented input generator, in numpy (README: SplitMix64, 24 bits)."""
    with np.errstate(over="ignore"):
        state = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float64) / 2**24 * 2 - 1).astype(np.float32)


def test_generated_inputs_follow_the_documented_generator(
    run_runner: Callable[..., Any], passthrough_pte: Path, tmp_path: Path
) -> None:
    total = sum(int(np.prod(s)) for s in PASSTHROUGH_SHAPES)
    for seed in (0, 1, 2**64 - 1):
        out = tmp_path / f"out{seed}.bin"
        result = run_runner("--model", passthrough_pte, "--seed", str(seed), "--warmup", "0", "--iterations", "1",
                            "--dump-output", out)  # fmt: skip
        assert result.returncode == 0, result.describe()
        got = np.fromfile(out, dtype="<f4")
        # Input 0 takes the first 30 values of the stream, input 1 the next 4.
        np.testing.assert_array_equal(got, splitmix64_inputs(seed, total))
        assert got.min() >= -1 and got.max() < 1
        load = result.one("load")
        assert [i["shape"] for i in load["inputs"]] == [list(s) for s in PASSTHROUGH_SHAPES]
        assert {i["source"] for i in load["inputs"]} == {"seed"}
        assert result.one("output") == {
            "event": "output", "index": 0, "path": str(out), "dtype": "float32", "shape": [total], "bytes": 4 * total,
        }  # fmt: skip


def test_input_files_are_fed_verbatim(run_runner: Callable[..., Any], passthrough_pte: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype("<f4") for s in PASSTHROUGH_SHAPES]
    paths = []
    for index, array in enumerate(arrays):
        paths.append(tmp_path / f"in{index}.bin")
        array.tofile(paths[-1])
    out = tmp_path / "out.bin"
    result = run_runner("--model", passthrough_pte, "--input", paths[0], "--input", paths[1], "--warmup", "1",
                        "--iterations", "2", "--dump-output", out)  # fmt: skip
    assert result.returncode == 0, result.describe()
    np.testing.assert_array_equal(np.fromfile(out, dtype="<f4"), np.concatenate([a.ravel() for a in arrays]))
    assert [i["source"] for i in result.one("load")["inputs"]] == [str(p) for p in paths]
    assert not list(tmp_path.glob("out.bin.tmp*"))  # written via a temporary file, renamed


def test_dump_output_matches_the_python_runtime(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    import torch
    from executorch.runtime import Runtime

    x = torch.from_numpy(splitmix64_inputs(5, 3 * 32 * 32).reshape(1, 3, 32, 32))
    out = tmp_path / "out.bin"
    result = run_runner("--model", tiny_pte, "--seed", "5", "--warmup", "0", "--iterations", "3", "--dump-output", out)
    assert result.returncode == 0, result.describe()
    expected = Runtime.get().load_program(tiny_pte).load_method("forward").execute((x,))[0].numpy()
    got = np.fromfile(out, dtype="<f4").reshape(result.one("output")["shape"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_etdump_records_every_execution(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    path = tmp_path / "profile.etdp"
    result = run_runner("--model", tiny_pte, "--warmup", "2", "--iterations", "3", "--etdump", path)
    assert result.returncode == 0, result.describe()
    assert result.one("start")["etdump"] is True
    assert result.one("etdump") == {"event": "etdump", "path": str(path), "bytes": path.stat().st_size}
    etdump = deserialize_from_etdump_flatcc(path.read_bytes())
    blocks = [block.name for block in etdump.run_data]
    assert blocks.count("Execute") == 5, blocks  # two warm-up runs + three timed


def test_json_strings_are_escaped(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    # Quotes, a backslash, control characters and a byte that is not UTF-8 in the path.
    name = b'we"ird\\na\nme\t\x01\xff\xc3\xa9.pte'
    weird = os.path.join(os.fsencode(tmp_path), name)
    shutil.copyfile(tiny_pte, weird)
    result = run_runner("--model", os.fsdecode(weird), "--warmup", "0", "--iterations", "1")
    assert result.returncode == 0, result.describe()
    expected = weird.decode("utf-8", errors="replace")  # the invalid byte becomes U+FFFD
    assert result.one("start")["model"] == expected
    assert "\ufffd" in expected and "é" in expected
    # And the same in an error message (run_runner parsed every line as strict JSON).
    missing = run_runner("--model", os.fsdecode(weird) + "-missing")
    assert missing.events[-1]["message"] == f"model file not found: {expected}-missing"
