"""Runner adapters: argv construction and parsing of each runner's documented output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mobilebench.bench.runners import RunnerRequest, get_adapter
from mobilebench.errors import MobilebenchError, UsageError

REQ = RunnerRequest(model_path="/data/local/tmp/mb/skip net.pte", warmup=2, iterations=5)


def json_lines(*events: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def native_output(timed=(10.0, 10.2, 9.9, 10.1, 10.0), warm=(25.0, 11.0)) -> str:
    events = [{"event": "start", "runner_version": "0.1.0", "executorch_version": "1.5.1", "threads": 1}]
    events.append({"event": "load", "ms": 84.25})
    i = 0
    for ms in warm:
        events.append({"event": "iteration", "i": i, "ms": ms, "warmup": True})
        i += 1
    for ms in timed:
        events.append({"event": "iteration", "i": i, "ms": ms, "warmup": False})
        i += 1
    events.append({"event": "summary", "n": len(timed), "median_ms": 10.0})
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


def test_native_runner_error_event_becomes_one_line_error():
    text = (
        native_output()[:200].rsplit("\n", 1)[0]
        + "\n"
        + json_lines({"event": "error", "message": "runner crashed: segmentation fault (SIGSEGV)"})
    )
    with pytest.raises(MobilebenchError, match="SIGSEGV"):
        get_adapter("mobilebench_runner").parse(text)


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


@pytest.fixture(scope="module")
def matmul_onnx(tmp_path_factory):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [64, 64], np.random.default_rng(0).random(64 * 64, dtype=np.float32).tolist()
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "matmul model.onnx"
    onnx.save(model, path)
    return path


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
    assert out.summary["n"] == 12


def test_ort_python_adaptive_stops_between_min_and_max(matmul_onnx):
    req = RunnerRequest(str(matmul_onnx), warmup=1, iterations=10, target_rel_ci=0.5, max_iterations=40)
    proc, adapter = run_adapter(req)
    out = adapter.parse(proc.stdout, proc.stderr, request=req)
    # +-50% is met as soon as an interval exists: the run stops at the minimum.
    assert 10 <= len(out.timed_ms) <= 40


def test_ort_python_failure_is_reported_as_error_event(tmp_path):
    req = RunnerRequest(str(tmp_path / "missing.onnx"), warmup=0, iterations=3)
    proc, adapter = run_adapter(req)
    assert proc.returncode == 1
    with pytest.raises(MobilebenchError, match="ort_python failed: .*missing.onnx"):
        adapter.parse(proc.stdout, proc.stderr)
