"""``mobilebench runs``: listing stored runs."""

from __future__ import annotations

import csv
import io
import json


def test_runs_listing(store, add_run, db_path, cli):
    ok = add_run(store, "skipnet_m", "pixel4", [27.0] * 8)
    failed = add_run(store, "skipnet_m", "pixel3", status="failed")
    emulated = add_run(store, "mobilenet_v3_large", "emulator", [3.0] * 8, emulated=True)

    code, out, err = cli("runs", "--db", str(db_path))
    assert code == 0, err
    assert "skipnet_m" in out and "runner crashed" in out and "emulator (emulated)" in out

    code, out, _ = cli("runs", "--db", str(db_path), "--format", "json", "--status", "ok")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [emulated, ok]
    assert rows[1]["median_ms"] == 27.0 and rows[1]["n"] == 8 and rows[0]["emulated"] is True

    code, out, _ = cli("runs", "--db", str(db_path), "--format", "csv", "--device", "pixel3")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(int(r["id"]), r["status"], r["error"], r["median_ms"]) for r in rows] == [
        (failed, "failed", "runner crashed", "")
    ]

    code, out, _ = cli("runs", "--db", str(db_path), "--format", "json", "--limit", "1")
    assert [r["id"] for r in json.loads(out)] == [emulated]


def test_runs_errors(db_path, tmp_path, store, cli):
    code, _, err = cli("runs", "--db", str(db_path), "--status", "done")
    assert code == 2 and "unknown run status" in err
    code, _, err = cli("runs", "--db", str(tmp_path / "missing.sqlite"))
    assert code == 2 and "no results database" in err
    code, _, err = cli("runs", "--db", str(db_path), "--format", "markdown")
    assert code == 2 and "unknown format" in err
