"""``mobilebench models``."""

from __future__ import annotations

import csv
import io
import json


def test_json_lists_cards_then_architectures(cards_folder, cli):
    result = cli("models", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    cards = {r["name"]: r for r in rows if r["kind"] == "card"}
    archs = {r["name"]: r for r in rows if r["kind"] == "arch"}
    assert cards["skipnet_m"]["top1"] == 76.2 and cards["skipnet_m"]["paper_flops"] == 246e6
    assert cards["skipnet_m"]["checkpoint"] is None
    assert {"skipnet_xs", "skipnet_s", "skipnet_m", "skipnet_l", "mobilenet_v3_large", "mobilenet_v2"} <= set(archs)
    assert archs["skipnet_m"]["description"].startswith("SkipNet-M")
    assert rows.index(cards["skipnet_m"]) < rows.index(archs["mobilenet_v2"])


def test_table_and_csv(cards_folder, cli):
    result = cli("models")
    assert result.exit_code == 0, result.output
    assert "skipnet_m" in result.stdout and "random init" in result.stdout and "76.2" in result.stdout
    result = cli("models", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert next(r for r in rows if r["name"] == "skipnet_xs" and r["kind"] == "card")["top5"] == "88.9"


def test_a_broken_card_is_listed_with_its_error_and_hides_no_other(cards_folder, cli):
    (cards_folder / "broken.toml").write_text('arch = "skipnet_m"\nweights = "x.pth"\n')
    result = cli("models", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout) if r["kind"] != "arch"}
    assert rows["skipnet_m"]["kind"] == "card" and rows["skipnet_m"]["top1"] == 76.2
    assert rows["broken"]["kind"] == "card (broken)" and "broken.toml:2: unknown key 'weights'" in rows["broken"]["description"]
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("warning: ") and "broken.toml:2: unknown key 'weights'" in warning
    table = cli("models")
    assert table.exit_code == 0 and "card (broken)" in table.stdout and "skipnet_xs" in table.stdout
