"""Runner adapters: argv construction and parsing of each runner's documented output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mobilebench.bench import ort_runner
from mobilebench.bench.runners import (
    InterleavedRequest,
    RunnerFailed,
    RunnerRequest,
    get_adapter,
    interleaving_adapter,
)
from mobilebench.bench.stats import ci_is_tight
from mobilebench.errors import MobilebenchError, UsageError

REQ = RunnerRequest(model_path="/data/local/tmp/mb/skip net.pte", warmup=2, iterations=5)


def json_lines(*events: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def native_output(timed=(10.0, 10.2, 9.9, 10.1, 10.0), warm=(25.0, 11.0)) -> str:
    events = [{"event": "start", "runner_version": "0.1.0", "executorch_version": "1.5.1", "threads": 1}]
    memory = {"planned_memory_bytes": 606208, "planned_buffer_bytes": [606208]}
    events.append({"event": "load", "ms": 84.25, "warm_ms": 61.5, **memory})
    i = 0
    for ms in warm:
        events.append({"event": "iteration", "i": i, "ms": ms, "warmup": True})
        i += 1
    for ms in timed:
        events.append({"event": "iteration", "i": i, "ms": ms, "warmup": False})
        i += 1
    events.append({"event": "summary", "n": len(timed), "median_ms": 10.0, "peak_rss_bytes": 73400320})
    return json_lines(*events)


# --- mobilebench_runner -------------------------------------------------------------------


def test_native_runner_argv_is_a_list_with_every_flag():
    adapter = get_adapter("mobilebench_runner")
    assert adapter.argv("/data/local/tmp/mb/mobilebench_runner", REQ) == [
        "/data/local/tmp/mb/mobilebench_runner",
        "--model", "/data/local/tmp/mb/skip net.pte",
        "--warmup", "2", "--iterations", "5", "--threads", "1",
    ]  # fmt: skip
    adaptive = RunnerRequest(
        "m.pte", warmup=0, iterations=20, target_rel_ci=0.01, max_iterations=500, input_shape=(1, 3, 160, 160)
    )
    argv = adapter.argv("runner", adaptive)
    assert argv[argv.index("--target-rel-ci") + 1] == "0.01"
    assert argv[argv.index("--max-iterations") + 1] == "500"
    assert argv[argv.index("--input-shape") + 1] == "1,3,160,160"


def test_native_runner_output_parses_samples_load_and_versions():
    # ExecuTorch log lines on stderr are interleaved and must be ignored.
    stderr = "I 00:00:00.000100 executorch:method.cpp:10] Loaded\n"
    out = get_adapter("mobilebench_runner").parse(native_output(), stderr)
    assert out.runner_name == "mobilebench_runner"
    assert (out.runner_version, out.runtime_version) == ("0.1.0", "1.5.1")
    assert out.load_ms == 84.25
    assert out.first_ms == 25.0  # the cold iteration, even though it is warm-up
    assert [s.warmup for s in out.samples] == [True, True, False, False, False, False, False]
    assert out.timed_ms == [10.0, 10.2, 9.9, 10.1, 10.0]
    stats = out.stats()
    assert stats.n == 5 and stats.median_ms == 10.0 and stats.first_ms == 25.0 and stats.load_ms == 84.25
    assert out.summary["median_ms"] == 10.0
    # Memory and the second load.
    assert (out.warm_load_ms, stats.warm_load_ms) == (61.5, 61.5)
    assert (out.peak_rss_bytes, out.planned_memory_bytes) == (73400320, 606208)
    assert all(s.pair is None for s in out.samples)


def test_a_traced_run_names_its_trace():
    adapter = get_adapter("mobilebench_runner")
    req = RunnerRequest("m.pte", warmup=2, iterations=5, etdump="/data/local/tmp/mb/t.etdp")
    argv = adapter.argv("runner", req)
    assert argv[argv.index("--etdump") + 1] == "/data/local/tmp/mb/t.etdp"
    lines = native_output().splitlines(keepends=True)
    trace = {"event": "etdump", "path": "/data/local/tmp/mb/t.etdp", "bytes": 9000, "executions": 7, "warmup": 2}
    out = adapter.parse("".join(lines[:-1]) + json_lines(trace) + lines[-1], request=req)
    assert (out.trace.path, out.trace.bytes, out.trace.executions, out.trace.warmup) == (trace["path"], 9000, 7, 2)
    assert adapter.parse(native_output()).trace is None
    with pytest.raises(MobilebenchError, match="without its 'etdump' event"):
        adapter.parse(native_output(), request=req)
    for name in ("ort_python", "executor_runner", "onnxruntime_perf_test"):
        with pytest.raises(UsageError, match="trace"):
            get_adapter(name).argv("x", req)


def test_an_output_check_passes_its_input_and_asks_for_the_output():
    """The on-device check (mobilebench.bench.agreement): one given input, output 0 dumped."""
    req = RunnerRequest("m.pte", warmup=0, iterations=1, input_file="/d/in.f32", dump_output="/d/out.f32")
    argv = get_adapter("mobilebench_runner").argv("runner", req)
    assert argv[argv.index("--input") + 1] == "/d/in.f32" and argv.index("--input") > argv.index("--model")
    assert argv[argv.index("--dump-output") + 1] == "/d/out.f32"
    for name in ("ort_python", "executor_runner", "onnxruntime_perf_test"):
        with pytest.raises(UsageError, match="mobilebench_runner"):
            get_adapter(name).argv("x", req)


def test_native_runner_output_without_memory_fields_still_parses():
    """Older runner builds: no warm load, no memory; the fields stay None."""
    events = [json.loads(line) for line in native_output().splitlines()]
    for event in events:
        for key in ("warm_ms", "planned_memory_bytes", "planned_buffer_bytes", "peak_rss_bytes"):
            event.pop(key, None)
    out = get_adapter("mobilebench_runner").parse(json_lines(*events))
    assert (out.warm_load_ms, out.peak_rss_bytes, out.planned_memory_bytes) == (None, None, None)
    assert out.stats().warm_load_ms is None and out.stats().load_ms == 84.25


def test_native_runner_error_event_becomes_one_line_error():
    text = "".join(native_output().splitlines(keepends=True)[:3]) + json_lines(
        {"event": "error", "message": "runner crashed: segmentation fault (SIGSEGV)"}
    )
    with pytest.raises(RunnerFailed, match="SIGSEGV") as failure:
        get_adapter("mobilebench_runner").parse(text)
    assert failure.value.model is None
    # What was measured before the failure comes with it, for the caller to store.
    (partial,) = failure.value.partial
    assert [s.latency_ms for s in partial.samples] == [25.0] and partial.load_ms == 84.25


@pytest.mark.parametrize(
    "stdout, message",
    [
        ("", "no 'start' event"),
        ("Segmentation fault\n", "no 'start' event"),
        ('{"event": "start", "runner_version": "1"}\n{"event": "iteration", "i": 0, "ms": 1.0\n', "malformed JSON"),
        (native_output().rsplit("\n", 2)[0] + "\n", "without a summary"),
        (
            json_lines(
                {"event": "start"}, {"event": "iteration", "i": 0, "ms": 5.0, "warmup": True}, {"event": "summary"}
            ),
            "no timed",
        ),
        (
            json_lines(
                {"event": "start"},
                {"event": "iteration", "i": 0, "ms": 5.0},
                {"event": "iteration", "i": 0, "ms": 5.0},
                {"event": "summary"},
            ),
            "twice",
        ),
        (
            json_lines({"event": "start"}, {"event": "iteration", "i": 0, "ms": "fast"}, {"event": "summary"}),
            "malformed iteration",
        ),
    ],
)
def test_native_runner_garbage_is_rejected(stdout, message):
    with pytest.raises(MobilebenchError, match=message):
        get_adapter("mobilebench_runner").parse(stdout, "")


# --- mobilebench_runner --interleave -------------------------------------------------------

PATHS = ("/data/local/tmp/mb/a.pte", "/data/local/tmp/mb/b model.pte")


def interleaved_events(a_ms=(20.0, 10.0, 10.2, 9.9, 10.1), b_ms=(22.0, 11.0, 11.1, 10.8, 11.3), warm=1) -> list[dict]:
    """What the runner prints for pairs p = 0..len-1 (the first ``warm`` warm-up), ABBA order."""
    events = [{"event": "start", "runner_version": "0.1.0", "executorch_version": "1.5.1", "models": list(PATHS),
               "interleave": True, "warmup": warm, "iterations": len(a_ms) - warm}]  # fmt: skip
    for m, (load, warm_load, planned) in enumerate([(80.0, 60.0, 1000), (90.0, 70.0, 2000)]):
        events.append({"event": "load", "model": m, "path": PATHS[m], "ms": load, "warm_ms": warm_load,
                       "planned_memory_bytes": planned})  # fmt: skip
    for p in range(len(a_ms)):
        for m in (0, 1) if p % 2 == 0 else (1, 0):
            ms = (a_ms, b_ms)[m][p]
            events.append({"event": "iteration", "model": m, "pair": p, "i": p, "ms": ms, "warmup": p < warm})
    for m in (0, 1):
        events.append({"event": "summary", "model": m, "iterations": len(a_ms) - warm, "peak_rss_bytes": 50_000_000})
    return events


def test_interleaved_argv_binds_each_input_shape_to_its_model():
    adapter = interleaving_adapter("mobilebench_runner")
    req = InterleavedRequest(PATHS, warmup=3, pairs=40, input_shapes=(None, (1, 3, 160, 160)))
    assert adapter.interleaved_argv("/x/mobilebench_runner", req) == [
        "/x/mobilebench_runner",
        "--model", PATHS[0], "--model", PATHS[1], "--input-shape", "1,3,160,160",
        "--interleave", "--warmup", "3", "--iterations", "40", "--threads", "1",
    ]  # fmt: skip
    ort = interleaving_adapter("ort_python").interleaved_argv("python3", InterleavedRequest(("a.onnx", "b.onnx"), 0, 5))
    assert ort[:3] == ["python3", "-m", "mobilebench.bench.ort_runner"] and "--interleave" in ort
    for name in ("executor_runner", "onnxruntime_perf_test"):
        with pytest.raises(UsageError, match="cannot run two programs in one process"):
            interleaving_adapter(name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_paths": ("a.pte",), "input_shapes": (None,)}, "exactly two programs"),
        ({"pairs": 0}, "pairs must be >= 1"),
        ({"warmup": -1}, "warm-up pairs must be >= 0"),
        ({"threads": 0}, "threads must be >= 1"),
    ],
)
def test_interleaved_request_is_validated(kwargs, message):
    with pytest.raises(UsageError, match=message):
        InterleavedRequest(**{"model_paths": PATHS, "warmup": 1, "pairs": 4, **kwargs})


def test_interleaved_output_parses_into_two_runs_of_paired_samples():
    adapter = interleaving_adapter("mobilebench_runner")
    a, b = adapter.parse_interleaved(json_lines(*interleaved_events()), request=InterleavedRequest(PATHS, 1, 4))
    assert a.timed_ms == [10.0, 10.2, 9.9, 10.1] and b.timed_ms == [11.0, 11.1, 10.8, 11.3]
    for out in (a, b):
        assert [s.pair for s in out.samples] == [0, 1, 2, 3, 4] == [s.i for s in out.samples]
        assert [s.warmup for s in out.samples] == [True, False, False, False, False]
        assert out.peak_rss_bytes == 50_000_000
        assert out.runtime_version == "1.5.1"
    assert (a.load_ms, a.warm_load_ms, a.planned_memory_bytes) == (80.0, 60.0, 1000)
    assert (b.load_ms, b.warm_load_ms, b.planned_memory_bytes) == (90.0, 70.0, 2000)
    assert (a.first_ms, b.first_ms) == (20.0, 22.0)
    assert PATHS[1] in a.notes[-1] and PATHS[0] in b.notes[-1]
    # The pairing the statistics use: per pair, B over A.
    ratios = {sa.pair: sb.latency_ms / sa.latency_ms for sa, sb in zip(a.samples, b.samples, strict=True)}
    assert ratios[1] == pytest.approx(1.1)
    assert a.stats().n == 4 and b.stats().warm_load_ms == 70.0


def test_interleaved_output_is_checked():
    adapter = interleaving_adapter("mobilebench_runner")
    events = interleaved_events()
    with pytest.raises(MobilebenchError, match="parse_interleaved"):
        adapter.parse(json_lines(*events))
    with pytest.raises(MobilebenchError, match="not of an interleaved run"):
        adapter.parse_interleaved(native_output())
    lost_b_pair = [e for e in events if not (e["event"] == "iteration" and e["model"] == 1 and e["pair"] == 2)]
    with pytest.raises(MobilebenchError, match="incomplete pairs .*pair 2"):
        adapter.parse_interleaved(json_lines(*lost_b_pair))
    no_b_summary = [e for e in events if not (e["event"] == "summary" and e["model"] == 1)]
    with pytest.raises(MobilebenchError, match="for program 1 without a summary"):
        adapter.parse_interleaved(json_lines(*no_b_summary))
    with pytest.raises(MobilebenchError, match="ran 1 warm-up and 4 timed pairs, expected 2 and 4"):
        adapter.parse_interleaved(json_lines(*events), request=InterleavedRequest(PATHS, 2, 4))


def test_interleaved_failure_names_the_program_and_keeps_what_was_measured():
    events = interleaved_events()
    # Program 1 fails in pair 3, where it runs first: pairs 0-2 of both were measured.
    cut = next(k for k, e in enumerate(events) if e.get("pair") == 3)
    message = f"model 1 ({PATHS[1]}): execution failed in timed pair 3: InvalidArgument (ExecuTorch error 0x12)"
    text = json_lines(*events[:cut], {"event": "error", "message": message, "exit_code": 1, "model": 1})
    with pytest.raises(RunnerFailed) as failure:
        interleaving_adapter("mobilebench_runner").parse_interleaved(text)
    assert str(failure.value).startswith(f"mobilebench_runner failed (program 1, {PATHS[1]}): model 1")
    assert "\n" not in str(failure.value)
    assert failure.value.model == 1
    a, b = failure.value.partial
    assert [s.pair for s in a.samples] == [s.pair for s in b.samples] == [0, 1, 2]
    assert a.timed_ms == [10.0, 10.2] and b.load_ms == 90.0


# --- executor_runner ---------------------------------------------------------------------


def posix_log(*messages: str) -> str:
    return "".join(
        f"I 00:00:0{k}.{k:06d} executorch:executor_runner.cpp:{100 + k}] {m}\n" for k, m in enumerate(messages)
    )


def test_executor_runner_argv():
    argv = get_adapter("executor_runner").argv("./executor_runner", REQ)
    assert argv == [
        "./executor_runner",
        "--model_path=/data/local/tmp/mb/skip net.pte",
        "--num_executions=7",
        "--cpu_threads=1",
    ]
    with pytest.raises(UsageError):
        get_adapter("executor_runner").argv("x", RunnerRequest("m.pte", 1, 5, target_rel_ci=0.02))


def test_executor_runner_linux_log_with_iterations_marks_warmup():
    times = [31.5, 12.0, 11.0, 11.2, 10.9, 11.1, 11.0]
    stderr = posix_log(
        "Model file /x.pte is loaded.",
        "Model loaded in 45.500000 ms.",
        *(f"Iteration {k + 1} of 7: {ms:f} ms" for k, ms in enumerate(times)),
        "Model executed successfully 7 time(s) in 98.700000 ms.",
        "1 outputs: ",
    )
    out = get_adapter("executor_runner").parse("Output 0: tensor(sizes=[1, 1000])\n", stderr, request=REQ)
    assert out.load_ms == 45.5
    assert out.first_ms == 31.5
    assert [s.warmup for s in out.samples] == [True, True] + [False] * 5
    assert out.timed_ms == [11.0, 11.2, 10.9, 11.1, 11.0]
    assert out.stats().median_ms == 11.0
    assert out.summary["total_ms"] == 98.7


def test_executor_runner_logcat_output():
    lines = ["--------- beginning of main"]
    for k, ms in enumerate([20.0, 9.0, 9.5, 9.25]):
        lines.append(f"11-21 10:00:0{k}.123  4321  4321 I ExecuTorch: Iteration {k + 1} of 4: {ms:f} ms")
    lines.append("11-21 10:00:05.000  4321  4321 I ExecuTorch: Model executed successfully 4 time(s) in 47.750000 ms.")
    out = get_adapter("executor_runner").parse("\n".join(lines) + "\n", request=RunnerRequest("m.pte", 1, 3))
    assert out.timed_ms == [9.0, 9.5, 9.25]
    assert out.first_ms == 20.0


def test_old_executor_runner_total_only_becomes_one_averaged_sample():
    stderr = posix_log("Model executed successfully 7 time(s) in 84.000000 ms.")
    out = get_adapter("executor_runner").parse("", stderr, request=REQ)
    assert len(out.samples) == 1
    sample = out.samples[0]
    assert sample.latency_ms == 12.0 and sample.averaged_over == 7 and not sample.warmup
    assert out.first_ms is None
    assert out.notes and "only a total" in out.notes[0]
    stats = out.stats()
    assert stats.n == 1 and stats.median_ms == 12.0 and stats.ci_low_ms is None


@pytest.mark.parametrize(
    "stderr, message",
    [
        (
            posix_log("Model loaded in 4.0 ms.")
            + "E 00:00:01.000001 executorch:executor_runner.cpp:200] Execution of method forward failed with status 0x12\n",
            "Execution of method forward failed",
        ),
        ("Illegal instruction\n", "no 'Model executed successfully'"),
        (
            posix_log("Iteration 1 of 7: 10.0 ms", "Model executed successfully 7 time(s) in 70.0 ms."),
            "1 iteration lines for 7",
        ),
        (posix_log("Model executed successfully 5 time(s) in 50.0 ms."), "ran 5 executions, expected 7"),
        (posix_log("Model executed successfully 7 time(s)."), "reports no timing"),
    ],
)
def test_executor_runner_failures(stderr, message):
    with pytest.raises(MobilebenchError, match=message):
        get_adapter("executor_runner").parse("", stderr, request=REQ)


# --- onnxruntime_perf_test ---------------------------------------------------------------

PERF_TEST_STDOUT = """\
Setting intra_op_num_threads to 1
Session creation time cost: 0.217932 s
First inference time cost: 196 ms
Total inference time cost: 0.49481 s
Total inference requests: 5
Average inference time cost: 98.961997 ms
Total inference run time: 0.494854 s
Number of inferences per second: 10.104
Avg CPU usage: 11 %
Peak working set size: 271122432 bytes
Min Latency: 0.0958204 s
Max Latency: 0.101519 s
P50 Latency: 0.0995086 s
P90 Latency: 0.101519 s
P95 Latency: 0.101519 s
P99 Latency: 0.101519 s
P999 Latency: 0.101519 s
"""


def test_perf_test_argv():
    argv = get_adapter("onnxruntime_perf_test").argv("./onnxruntime_perf_test", RunnerRequest("m.onnx", 1, 50))
    assert argv == [
        "./onnxruntime_perf_test",
        "-m",
        "times",
        "-r",
        "50",
        "-x",
        "1",
        "-y",
        "1",
        "-e",
        "cpu",
        "-I",
        "-s",
        "m.onnx",
    ]


def test_perf_test_summary_is_kept_without_inventing_samples():
    out = get_adapter("onnxruntime_perf_test").parse(PERF_TEST_STDOUT, request=RunnerRequest("m.onnx", 1, 5))
    assert out.samples == []
    assert out.load_ms == pytest.approx(217.932)
    assert out.first_ms == 196
    assert out.summary["p99_ms"] == pytest.approx(101.519)
    stats = out.stats()
    assert stats.from_summary
    assert stats.n == 5
    assert stats.median_ms == pytest.approx(99.5086)
    assert stats.mean_ms == pytest.approx(98.961997)
    assert stats.min_ms == pytest.approx(95.8204)
    assert stats.std_ms is None and stats.ci_low_ms is None
    assert out.peak_rss_bytes == 271122432  # its "Peak working set size"


def test_perf_test_newer_average_line_and_missing_statistics():
    newer = PERF_TEST_STDOUT.replace("Average inference time cost:", "Average inference time cost total:")
    assert get_adapter("onnxruntime_perf_test").parse(newer).summary["mean_ms"] == pytest.approx(98.961997)
    without_s = PERF_TEST_STDOUT.split("Min Latency")[0]
    with pytest.raises(MobilebenchError, match="-s"):
        get_adapter("onnxruntime_perf_test").parse(without_s)
    with pytest.raises(MobilebenchError, match="Load model failed"):
        get_adapter("onnxruntime_perf_test").parse("", "Exception: Load model failed: no such file\n")


def test_unknown_runner():
    with pytest.raises(UsageError, match="known runners"):
        get_adapter("benchmark_model")


# --- ort_python: the real host runner -----------------------------------------------------


def write_matmul_onnx(path, features: int):
    """``y = x @ w`` with ``x`` of shape (batch, features): a small real ONNX model."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    values = np.random.default_rng(features).random(features * features, dtype=np.float32)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [features, features], values.tolist())
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", features])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def matmul_onnx(tmp_path_factory):
    return write_matmul_onnx(tmp_path_factory.mktemp("onnx") / "matmul model.onnx", 64)


@pytest.fixture(scope="module")
def wide_matmul_onnx(tmp_path_factory):
    return write_matmul_onnx(tmp_path_factory.mktemp("onnx") / "wide.onnx", 512)


def run_adapter(req: RunnerRequest):
    adapter = get_adapter("ort_python")
    proc = subprocess.run(adapter.argv(sys.executable, req), capture_output=True, text=True, timeout=120)
    return proc, adapter


def test_ort_python_runs_onnxruntime_and_speaks_the_protocol(matmul_onnx):
    import onnxruntime

    req = RunnerRequest(str(matmul_onnx), warmup=3, iterations=12, input_shape=(4, 64))
    proc, adapter = run_adapter(req)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = adapter.parse(proc.stdout, proc.stderr, request=req)
    assert out.runner_name == "ort_python"
    assert out.runtime_version == onnxruntime.__version__
    assert [s.i for s in out.samples] == list(range(15))
    assert sum(s.warmup for s in out.samples) == 3
    assert len(out.timed_ms) == 12 and all(ms > 0 for ms in out.timed_ms)
    assert out.load_ms > 0 and out.first_ms == out.samples[0].latency_ms
    assert out.summary["n"] == 12 and out.summary["stop_reason"] == "iterations"
    # Two session creations, and the process's peak RSS: the interpreter, numpy and
    # onnxruntime are resident (tens of MB), far more than the 16 KiB model.
    assert out.warm_load_ms > 0 and out.stats().warm_load_ms == out.warm_load_ms
    assert out.peak_rss_bytes > 20 * 2**20 > matmul_onnx.stat().st_size
    assert out.planned_memory_bytes is None  # onnxruntime reports no planned arena


def test_ort_python_interleaves_two_models_of_different_input_shapes(matmul_onnx, wide_matmul_onnx):
    adapter = interleaving_adapter("ort_python")
    shapes = ((4, 64), (64, 512))
    req = InterleavedRequest((str(matmul_onnx), str(wide_matmul_onnx)), warmup=2, pairs=9, input_shapes=shapes)
    proc = subprocess.run(adapter.interleaved_argv(sys.executable, req), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    iterations = [json.loads(line) for line in proc.stdout.splitlines() if '"iteration"' in line]
    # ABBA: the stream order is the execution order.
    assert [(e["pair"], e["model"]) for e in iterations] == [
        (p, m) for p in range(11) for m in ((0, 1) if p % 2 == 0 else (1, 0))
    ]
    a, b = adapter.parse_interleaved(proc.stdout, proc.stderr, request=req)
    assert len(a.timed_ms) == len(b.timed_ms) == 9
    assert [s.pair for s in a.samples] == [s.pair for s in b.samples] == list(range(11))
    assert a.load_ms > 0 and b.warm_load_ms > 0 and a.peak_rss_bytes == b.peak_rss_bytes > 0
    # 64x512x512 multiply-adds against 4x64x64: far slower in (nearly) every pair.
    slower = sum(sb.latency_ms > sa.latency_ms for sa, sb in zip(a.samples, b.samples, strict=True) if not sa.warmup)
    assert slower >= 8, (a.timed_ms, b.timed_ms)


def test_ort_python_interleaved_failure_names_the_model(matmul_onnx, tmp_path):
    adapter = interleaving_adapter("ort_python")
    req = InterleavedRequest((str(matmul_onnx), str(tmp_path / "gone.onnx")), warmup=0, pairs=3)
    proc = subprocess.run(adapter.interleaved_argv(sys.executable, req), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    with pytest.raises(RunnerFailed, match=r"ort_python failed \(program 1, .*gone.onnx\): model 1") as failure:
        adapter.parse_interleaved(proc.stdout, proc.stderr, request=req)
    assert failure.value.model == 1 and failure.value.partial == ()


def test_ort_python_adaptive_run_follows_the_stopping_rule(matmul_onnx):
    req = RunnerRequest(str(matmul_onnx), warmup=1, iterations=10, target_rel_ci=0.05, max_iterations=60)
    proc, adapter = run_adapter(req)
    out = adapter.parse(proc.stdout, proc.stderr, request=req)
    timed = out.timed_ms
    # Whatever this machine's noise: no prefix of >= 10 samples before the end was tight,
    # and the run ended either tight or at the cap.
    assert not any(ci_is_tight(timed[:n], 0.05) for n in range(10, len(timed)))
    if out.summary["stop_reason"] == "ci_target":
        assert ci_is_tight(timed, 0.05) and 10 <= len(timed) < 60
    else:
        assert out.summary["stop_reason"] == "max_iterations" and len(timed) == 60


def scripted_run(monkeypatch, capsys, latencies, *args):
    """ort_runner's loop with the clock replaced by a script of latencies (a unit test of
    the stopping rule, which real runs cannot steer); returns the timed ms and the summary."""
    script = iter(latencies)
    monkeypatch.setattr(ort_runner, "_time_run", lambda session, feeds: next(script))
    assert ort_runner.main(list(args)) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    timed = [e["ms"] for e in events if e["event"] == "iteration" and not e["warmup"]]
    return timed, events[-1]


def test_adaptive_run_stops_at_the_first_iteration_whose_ci_is_tight(monkeypatch, capsys, matmul_onnx):
    # Ten noisy samples, then steady ones: the 95% CI of the median narrows to +-2% only
    # once enough steady samples outweigh the noisy ones.
    noisy = [10.0, 14.0, 7.0, 13.0, 8.0, 12.5, 7.5, 14.5, 6.5, 11.5]
    latencies = [99.0] + noisy + [10.0 + 0.01 * (k % 3) for k in range(500)]
    timed, summary = scripted_run(
        monkeypatch, capsys, latencies,
        "--model", str(matmul_onnx), "--input-shape", "1,64", "--warmup", "1", "--iterations", "10",
        "--target-rel-ci", "0.02", "--max-iterations", "400",
    )  # fmt: skip
    expected = next(n for n in range(10, 401) if ci_is_tight(latencies[1 : n + 1], 0.02))
    assert 10 < expected < 400  # the script really does get tight, late
    assert len(timed) == expected and summary["stop_reason"] == "ci_target"
    assert summary["n"] == expected


def test_adaptive_run_stops_at_the_cap_when_never_tight(monkeypatch, capsys, matmul_onnx):
    latencies = [5.0 + 5.0 * (k % 2) for k in range(100)]  # 5, 10, 5, 10...: never within +-1%
    timed, summary = scripted_run(
        monkeypatch, capsys, latencies,
        "--model", str(matmul_onnx), "--input-shape", "1,64", "--warmup", "0", "--iterations", "6",
        "--target-rel-ci", "0.01", "--max-iterations", "25",
    )  # fmt: skip
    assert len(timed) == 25 and summary["stop_reason"] == "max_iterations"


def test_ort_python_failure_is_reported_as_error_event(tmp_path):
    req = RunnerRequest(str(tmp_path / "missing.onnx"), warmup=0, iterations=3)
    proc, adapter = run_adapter(req)
    assert proc.returncode == 1
    with pytest.raises(MobilebenchError, match="ort_python failed: .*missing.onnx"):
        adapter.parse(proc.stdout, proc.stderr)
