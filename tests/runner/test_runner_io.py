"""What goes in and comes out: generated and file inputs, dumped outputs, ETDump, JSON text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PASSTHROUGH_SHAPES = ((2, 3, 5), (4,))


def test_generated_inputs_are_the_projects_fixed_input(
    run_runner: Callable[..., Any], passthrough_pte: Path, tmp_path: Path
) -> None:
    from mobilebench.export import fixed_input_array

    total = sum(int(np.prod(s)) for s in PASSTHROUGH_SHAPES)
    for seed in (0, 1, 2**32 - 1):
        out = tmp_path / f"out{seed}.bin"
        result = run_runner("--model", passthrough_pte, "--seed", str(seed), "--warmup", "0", "--iterations", "1",
                            "--dump-output", out)  # fmt: skip
        assert result.returncode == 0, result.describe()
        got = np.fromfile(out, dtype="<f4")
        # Input j is fixed_input(shape_j, seed + j), the seed wrapping at 2**32.
        expected = [fixed_input_array(s, (seed + j) % 2**32).ravel() for j, s in enumerate(PASSTHROUGH_SHAPES)]
        np.testing.assert_array_equal(got, np.concatenate(expected))
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
    from executorch.runtime import Runtime

    from mobilebench.export import fixed_input

    x = fixed_input((1, 3, 32, 32), seed=5)
    out = tmp_path / "out.bin"
    result = run_runner("--model", tiny_pte, "--seed", "5", "--warmup", "0", "--iterations", "3", "--dump-output", out)
    assert result.returncode == 0, result.describe()
    expected = Runtime.get().load_program(tiny_pte).load_method("forward").execute((x,))[0].numpy()
    got = np.fromfile(out, dtype="<f4").reshape(result.one("output")["shape"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_every_run_sees_the_same_input(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    """Memory planning reuses the input buffer for activations: the runner must set the
    inputs again before each run, or runs after the first compute on garbage."""
    dumps = []
    for warmup, iterations in ((0, 1), (2, 5)):
        out = tmp_path / f"out_{warmup}_{iterations}.bin"
        result = run_runner("--model", tiny_pte, "--warmup", str(warmup), "--iterations", str(iterations),
                            "--dump-output", out)  # fmt: skip
        assert result.returncode == 0, result.describe()
        dumps.append(out.read_bytes())
    assert dumps[0] == dumps[1]


def test_etdump_records_every_execution(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    path = tmp_path / "profile.etdp"
    result = run_runner("--model", tiny_pte, "--warmup", "2", "--iterations", "3", "--etdump", path)
    assert result.returncode == 0, result.describe()
    assert result.one("start")["etdump"] is True
    assert result.one("etdump") == {
        "event": "etdump", "path": str(path), "bytes": path.stat().st_size, "executions": 5, "warmup": 2,
    }  # fmt: skip
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
