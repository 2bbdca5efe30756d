"""Where mobilebench keeps files outside the project: config, cache, results.

All locations honour an environment variable first so tests and CI can isolate them:

- ``MOBILEBENCH_CONFIG_DIR`` (else ``$XDG_CONFIG_HOME/mobilebench``, else
  ``~/.config/mobilebench``): user ``devices.toml`` and the ADB RSA key pair.
- ``MOBILEBENCH_CACHE_DIR`` (else ``$XDG_CACHE_HOME/mobilebench``, else
  ``~/.cache/mobilebench``): exported artifacts (``artifacts/``), the shapes of ready
  ones (``ready-artifacts/``), the host work dir, what was pushed where.
- ``MOBILEBENCH_DB`` (else ``results/mobilebench.sqlite`` under the current directory):
  the results database, a file path or a ``postgresql://`` URL.
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


def config_dir() -> Path:
    if env := os.environ.get("MOBILEBENCH_CONFIG_DIR"):
        return Path(env)
    return _xdg("XDG_CONFIG_HOME", ".config") / "mobilebench"


def cache_dir() -> Path:
    if env := os.environ.get("MOBILEBENCH_CACHE_DIR"):
        return Path(env)
    return _xdg("XDG_CACHE_HOME", ".cache") / "mobilebench"


def default_db() -> str:
    """The results database when none is given: a file path or a database URL."""
    return os.environ.get("MOBILEBENCH_DB") or str(Path("results") / "mobilebench.sqlite")


def project_root() -> Path:
    """The source checkout this package lives in (for ``models/`` and ``android_app/``)."""
    return Path(__file__).resolve().parent.parent
