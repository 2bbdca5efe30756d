"""Resolving a zoo name or card, and an export cache hit, must not import torch.

torch takes seconds to import, which `mobilebench profile` with a warm artifact cache
would otherwise pay on every call. Each check runs in a fresh interpreter, where
``sys.modules`` shows what was imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mobilebench.zoo import registry


def run_fresh(script: str, **env: str) -> str:
    """Run ``script`` in a new interpreter with ``env`` added; its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_builtin_index_matches_registrations():
    """The index resolve answers from must agree with what the modules register."""
    registry.list_models()  # imports every zoo module
    registered = {
        name: registry.BuiltinModel(entry.builder.__module__, entry.input_multiple)
        for name, entry in registry._REGISTRY.items()
        if entry.builder.__module__.startswith("mobilebench.zoo.")
    }
    assert registry.BUILTIN_MODELS == registered


def test_resolving_card_and_registry_name_does_not_import_torch(tmp_path: Path):
    no_cards = tmp_path / "no_cards"
    no_cards.mkdir()
    script = """
        import sys
        from mobilebench.zoo.resolve import resolve_model

        resolved = resolve_model("skipnet_m", input_size=160)
        assert resolved.kind == "zoo" and resolved.arch == "skipnet_m", resolved
        print(resolved.card is not None, "torch" in sys.modules)
    """
    # With the shipped cards, skipnet_m is a card; with an empty folder, a registry name.
    assert run_fresh(script) == "True False"
    assert run_fresh(script, MOBILEBENCH_MODELS_DIR=str(no_cards)) == "False False"
    listing = "import sys; from mobilebench.zoo.cards import load_cards; load_cards(); print('torch' in sys.modules)"
    assert run_fresh(listing) == "False"


def test_resolve_still_checks_input_multiple_without_torch():
    script = """
        import sys
        from mobilebench.errors import UsageError
        from mobilebench.zoo.resolve import resolve_model

        try:
            resolve_model("skipnet_m", input_size=100)
        except UsageError as exc:
            print("multiple of 16" in str(exc), "torch" in sys.modules)
    """
    assert run_fresh(script) == "True False"


def test_export_cache_hit_does_not_import_torch(tmp_path: Path):
    """A cache hit builds nothing. The entry is planted under the key export_model computes,
    with placeholder bytes: a real SkipNet export costs ~50 s, and the cache only checks
    that the file matches its sidecar."""
    script = """
        import sys
        from mobilebench.export import ExportOptions, export_model
        from mobilebench.export import cache, pipeline
        from mobilebench.zoo.resolve import resolve_model

        resolved = resolve_model("skipnet_m")
        options = ExportOptions(runtime="executorch", dtype="fp32")
        root = cache.prepare_cache_root(cache.default_cache_root())
        calibration = pipeline.plan_calibration(resolved, options)
        key = cache.key_of(pipeline.key_material(resolved, options, calibration))
        entry = cache.CacheEntry.for_export(
            root, name=resolved.name, runtime="executorch", dtype="fp32", dynamic_batch=False,
            suffix=pipeline.ARTIFACT_SUFFIX["executorch"], key=key,
        )
        entry.commit(b"placeholder program", {"artifact": {"runtime": "executorch", "dtype": "fp32", "input_shape": [1, 3, 224, 224]}})

        artifact = export_model(resolved, options)
        print(artifact.cached, artifact.path == entry.artifact_path, "torch" in sys.modules)
    """
    assert run_fresh(script, MOBILEBENCH_CACHE_DIR=str(tmp_path / "cache")) == "True True False"
