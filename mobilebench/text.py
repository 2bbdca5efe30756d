"""Text shown to people: "did you mean" hints, and names made safe to print.

Names come from users and from files (model names, paths, device properties, stored
errors), so any of them may hold terminal control sequences: ``ESC ]0;...`` sets the
terminal's title, ``ESC [2J`` clears the screen. Everything the CLI prints that came
from outside goes through :func:`printable`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(word: str, candidates: Iterable[str], *, noun: str = "names") -> str:
    """``"did you mean 'mnasnet_a1'?"`` for the closest candidates (difflib), else
    ``"known <noun>: a, b, c"``: the tail of an "unknown ..." message."""
    options = sorted(set(candidates))
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"known {noun}: " + (", ".join(options) if options else "none")


def printable(text: object) -> str:
    """``text`` with every non-printable character escaped the way Python writes it in a
    string literal (``\\x1b``, ``\\n``, ``\\u202e``); printable text is unchanged.

    Covers C0/C1 controls, DEL and Unicode format characters (bidirectional overrides
    that make a name read differently from what it is).
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
