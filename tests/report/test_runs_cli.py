"""``mobilebench runs``: listing stored runs."""

from __future__ import annotations

import csv
import io
import json



def test_runs_listing(store, add_run, db_path, cli):
    ok = add_run(store, "skipnet_m", "pixel4", [27.0] * 8)
    failed = add_run(store, "skipnet_m", "pixel3", status="failed")
    emulated = add_run(store, "mobilenet_v3_large", "emulator", [3.0] * 8, emulated=True)

    result = cli("runs", "--db", db_path)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "skipnet_m" in out and "runner crashed" in out and "emulator (emulated)" in out

    rows = json.loads(cli("runs", "--db", db_path, "--format", "json", "--status", "ok").stdout)
    assert [r["id"] for r in rows] == [emulated, ok]
    assert rows[1]["median_ms"] == 27.0 and rows[1]["n"] == 8 and rows[0]["emulated"] is True

    out = cli("runs", "--db", db_path, "--format", "csv", "--device", "pixel3").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(int(r["id"]), r["status"], r["error"], r["median_ms"]) for r in rows] == [
        (failed, "failed", "runner crashed", "")
    ]

    out = cli("runs", "--db", db_path, "--format", "json", "--limit", "1").stdout
    assert [r["id"] for r in json.loads(out)] == [emulated]


def test_table_cells_are_printed_as_data_not_rich_markup(store, add_run, db_path, cli):
    """A model name (a file stem, a card) may contain brackets or colons: the table shows
    it as it is. Read as rich markup, "[/]" was an error with a traceback and "[bold]" vanished."""
    name = "exp[/]v2 [bold]x[/bold] :thumbs_up:"
    add_run(store, name, "pixel4", [27.0] * 8)
    result = cli("runs", "--db", db_path)
    assert result.exit_code == 0, result.stderr
    assert name in result.stdout


def test_runs_errors(db_path, tmp_path, store, cli):
    for args, message in {
        ("--status", "done"): "argument --status: invalid choice: 'done'",
        ("--format", "markdown"): "argument --format: invalid choice: 'markdown'",
        ("--limit", "0"): "argument --limit: 0 is below the minimum 1",
    }.items():
        result = cli("runs", "--db", db_path, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    result = cli("runs", "--db", tmp_path / "missing.sqlite")
    assert result.exit_code == 2 and "no results database" in result.stderr

