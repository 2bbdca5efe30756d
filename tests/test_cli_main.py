"""The ``mobilebench`` entry point: command wiring, help, usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mobilebench.cli.main import COMMANDS, build_parser


def test_help_lists_every_command(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name, _ in COMMANDS:
        assert f"\n    {name} " in result.stdout, name


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_each_command_alone_has_the_full_parsers_arguments(name: str, cli) -> None:
    """A normal call builds only its own command's parser; it must be the same parser."""

    def options(parser) -> list[tuple[str, ...]]:
        (commands,) = [a for a in parser._actions if a.dest == "command"]
        return [tuple(a.option_strings) or (a.dest,) for a in commands.choices[name]._actions]

    assert options(build_parser(only=name)) == options(build_parser())
    result = cli(name, "--help")
    assert result.exit_code == 0 and result.stdout.startswith(f"usage: mobilebench {name}")


def test_usage_errors_are_one_line(cli) -> None:
    for args, needle in [
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        (["runs", "--limit", "0"], "--limit: 0 is below the minimum 1"),
    ]:
        result = cli(*args)
        assert result.exit_code == 2 and result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: mobilebench") and needle in line, line
    nothing = cli()
    assert nothing.exit_code == 2 and "commands:" in nothing.stderr


#: Commands that can do their job without PyTorch (profile: when the artifact is cached).
NO_TORCH = ("models", "devices", "emulator", "profile", "runs", "table2", "plot", "regress")


@pytest.mark.parametrize("name", NO_TORCH)
def test_commands_that_need_no_torch_do_not_import_it_to_parse(name: str) -> None:
    """Importing torch costs seconds; a command that does not need it must not pay for it."""
    code = (
        "import sys; from mobilebench.cli.main import build_parser; "
        f"build_parser(only={name!r}); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch', 'onnxruntime'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_the_console_script_exits_with_the_commands_status(tmp_path) -> None:
    script = [sys.executable, "-m", "mobilebench.cli.main"]
    bad = subprocess.run([*script, "runs", "--limit", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: mobilebench runs: argument --limit")
    missing = subprocess.run([*script, "runs", "--db", str(tmp_path / "none.sqlite")], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: ")
    fine = subprocess.run([*script, "models", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert fine.returncode == 0 and fine.stdout.lstrip().startswith("[")
