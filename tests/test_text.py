"""mobilebench.text: "did you mean" hints and names that cannot drive a terminal."""

from __future__ import annotations

from mobilebench.text import printable, suggest


def test_suggest_names_close_matches_else_lists_the_candidates() -> None:
    assert suggest("mobilenet_v3_lage", ["mobilenet_v3_large", "skipnet_m"]) == "did you mean 'mobilenet_v3_large'?"
    assert suggest("zzz", ["b", "a"], noun="models") == "known models: a, b"
    assert suggest("zzz", [], noun="devices") == "known devices: none"


def test_printable_escapes_control_and_format_characters_only() -> None:
    hostile = "model\x1b]0;owned\x07\x1b[2J\u202eetp.\n"
    shown = printable(hostile)
    assert shown == "model\\x1b]0;owned\\x07\\x1b[2J\\u202eetp.\\n"
    assert shown.isprintable()
    assert printable("skipnet_m résumé [/] 模型") == "skipnet_m résumé [/] 模型"
    assert printable(42) == "42"
