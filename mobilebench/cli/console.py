"""The one rich Console setup of the CLI.

Tables go to stdout and live progress to stderr, so ``--format json`` output stays
parseable. Everything printed is data (model names, paths, stored errors): rich's
markup and emoji codes are off, so ``[/]`` in a path is printed, not parsed. Piped
output (CI logs, files) has no terminal width and is not squeezed to 80 columns.
"""

from __future__ import annotations

import sys

from rich.console import Console

#: Columns of piped output.
PIPED_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=stream,
        width=None if stream.isatty() else PIPED_WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
    )
