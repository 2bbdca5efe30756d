"""``mobilebench profile NAME --per-op``: a traced run read into one row per operator with
fvcore's multiply-adds, stored apart from latency runs; on this computer and through the
emulated phone; and its figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow

TRACED = ["--per-op", "--warmup", "2", "--iterations", "10", "--format", "json"]
MODELS = ["mobilenet_v3_large", "skipnet_m"]


def check_profiles(runs: list[dict], db: Path) -> None:
    assert [r["model"] for r in runs] == MODELS
    with ResultsStore(db, create=False) as store:
        for run in runs:
            per_op, ops = run["per_op"], run["ops"]
            assert run["purpose"] == "per-op" and run["status"] == "ok"
            assert len(ops) >= 10
            assert {"name", "kind", "delegate", "ms", "macs"} <= set(ops[0])
            macs = sum(op["macs"] or 0 for op in ops)
            assert abs(macs - per_op["fvcore_macs"]) <= 0.2 * per_op["fvcore_macs"], run["model"]
            ops_ms = sum(op["ms"] for op in ops)
            assert 0.5 * run["median_ms"] <= ops_ms <= 1.5 * run["median_ms"], (run["model"], ops_ms, run["median_ms"])
            stored = store.ops(run["id"])
            assert len(stored) == len(ops) and stored[0].name == ops[0]["name"] and stored[0].rank == 0
        # Tracing costs time: such runs never stand for a model in a table.
        assert store.runs(purpose="latency") == []


def test_per_op_on_the_host(cli, tmp_path: Path) -> None:
    db = tmp_path / "ops.sqlite"
    result = cli("profile", *MODELS, "--device", "host", *TRACED, "--db", db)
    assert result.exit_code == 0, result.stderr
    check_profiles(json.loads(result.stdout), db)
    table = cli("table2", "--db", db)
    assert table.exit_code == 2 and "no successful executorch/fp32 runs" in table.stderr

    shown = cli("profile", "skipnet_m", "--device", "host", "--per-op", "--warmup", "1", "--iterations", "5", "--db", db)
    assert shown.exit_code == 0, shown.stderr
    assert "the 15 slowest of" in shown.stdout and "operators" in shown.stdout and "GMAC/s" in shown.stdout
    assert "the operators add up to" in shown.stderr
    as_csv = cli("profile", "skipnet_m", "--device", "host", "--per-op", "--iterations", "5", "--db", db, "--format", "csv")
    assert as_csv.exit_code == 0 and as_csv.stdout.startswith("run,model,rank,operator,kind,delegate,ms,share,MMACs")

    figure = tmp_path / "ops.png"
    drawn = cli("plot", "--x", "macs", "--y", "gmacs", "--db", db, "--output", figure)
    assert drawn.exit_code == 0, drawn.stderr
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = json.loads(result.stdout)[0]
    chosen = cli("plot", "--x", "macs", "--run", str(first["id"]), "--db", db, "--output", tmp_path / "first.svg")
    assert chosen.exit_code == 0 and f"of {len(first['ops'])} operators have multiply-adds" in chosen.stderr, chosen.stderr
    assert (tmp_path / "first.svg").read_text().lstrip().startswith("<?xml")
    missing = cli("plot", "--x", "macs", "--run", "999", "--db", db)
    assert missing.exit_code == 2 and "run 999 is not a per-op profile" in missing.stderr
    wrong = cli("plot", "--x", "macs", "--y", "top1", "--db", db)
    assert wrong.exit_code == 2 and "--x macs goes with --y gmacs" in wrong.stderr


def test_per_op_through_the_emulated_phone(cli, phone, tmp_path: Path) -> None:
    db = tmp_path / "ops.sqlite"
    result = cli("profile", *MODELS, "--device", "emulator", "--address", phone.address, *TRACED, "--db", db)
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)
    check_profiles(runs, db)
    assert all(r["emulated"] for r in runs)
    traces = Path(phone.root.root, "data/local/tmp/mobilebench/traces")
    assert not traces.exists() or list(traces.iterdir()) == []  # pulled, then removed from the phone
