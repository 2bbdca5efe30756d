"""Every numeric option of every command is checked at parse time: finite, in range,
one ``error:`` line and exit status 2."""

from __future__ import annotations

import argparse

import pytest

from mobilebench.cli.main import build_parser


def numeric_options() -> list[tuple[str, argparse.Action]]:
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    found = []
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if action.type in (int, float) or getattr(action.type, "bounded", False):
                found.append((name, action))
    return found


def test_no_option_takes_a_bare_int_or_float() -> None:
    bare = [f"{name} {a.option_strings[0]}" for name, a in numeric_options() if a.type in (int, float)]
    assert bare == [], "use mobilebench.cli.parsing.bounded(...) so nan, inf and huge values are refused"


@pytest.mark.parametrize(("command", "option"), [(n, a.option_strings[0]) for n, a in numeric_options()])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "99999999999999999999"])
def test_non_finite_and_huge_values_are_usage_errors(command: str, option: str, value: str, cli) -> None:
    result = cli(command, option, value)
    assert result.exit_code == 2, (command, option, value, result)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: mobilebench {command}: argument {option}"), line
