"""The commands against a real PostgreSQL server (started by the tests, tests/pg.py):
profile, runs, table2, regress and compare with ``--db postgresql://...``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow

FEW = ["--device", "host", "--warmup", "1", "--iterations", "6"]


def test_the_commands_against_postgresql(cli, postgres_url: str, tmp_path: Path, skipnet_pte) -> None:
    profiled = cli("profile", "skipnet_m", *FEW, "--repeat", "3", "--db", postgres_url, "--format", "json")
    assert profiled.exit_code == 0, profiled.stderr
    assert [r["status"] for r in json.loads(profiled.stdout)] == ["ok"] * 3

    listed = cli("runs", "--db", postgres_url, "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 3

    table = cli("table2", "--db", postgres_url, "--devices", "host", "--format", "csv")
    assert table.exit_code == 0, table.stderr
    (row,) = list(csv.DictReader(io.StringIO(table.stdout)))
    assert row["Model"] == "skipnet_m" and float(row["host (ms)"]) > 0

    baseline = tmp_path / "host.csv"
    made = cli("regress", "--baseline", baseline, "--device", "host", "--update-baseline", "--db", postgres_url)
    assert made.exit_code == 0, made.stderr
    assert len(baseline.read_text().splitlines()) == 1 + 3  # a header, every run kept
    again = cli("profile", "skipnet_m", *FEW, "--repeat", "3", "--db", postgres_url, "--format", "json")
    assert again.exit_code == 0, again.stderr
    checked = cli("regress", "--baseline", baseline, "--device", "host", "--db", postgres_url, "--format", "json")
    assert checked.exit_code in (0, 1, 3), checked.stderr  # a shared machine: any honest verdict
    assert "skipnet_m" in checked.stdout

    compared_json = cli(
        "compare", "skipnet_m", "skipnet_m", "--device", "host", "--pairs", "10", "--batches", "1", "--looks", "1",
        "--db", postgres_url, "--format", "json",
    )  # fmt: skip
    assert compared_json.exit_code in (0, 1, 3), compared_json.stderr
    out = json.loads(compared_json.stdout)
    with ResultsStore(postgres_url, create=False) as store:
        comparison = store.get_comparison(out["comparison_id"])
        assert comparison is not None and comparison.pairs == 10 and comparison.verdict == out["verdict"]
        assert {store.get_run(i).meta.comparison_id for i in out["runs"]} == {comparison.id}
        assert len(store.runs()) == 6 + 2
