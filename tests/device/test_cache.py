"""The device's model cache: under its budget, least recently used out, and emptied on
request; on the phone emulator (over ADB) and on this computer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.device import connect, get_profile
from mobilebench.device.cache import cached_models, clean_model_cache, trim_model_cache

from .conftest import emulator_profile


@pytest.fixture(params=["emulator", "host"])
def small_cache(request, tmp_path: Path):
    """A device whose model cache holds at most 1 MB."""
    if request.param == "emulator":
        profile = emulator_profile(request.getfixturevalue("emulator"))
    else:
        profile = replace(get_profile("host"), workdir=str(tmp_path / "work"))
    with connect(replace(profile, model_cache_mb=1)) as dev:
        yield dev


def test_least_recently_used_models_go_first_and_kept_ones_never(small_cache, tmp_path: Path) -> None:
    dev = small_cache
    folder = dev.profile.model_dir
    model = tmp_path / "model.pte"
    model.write_bytes(b"m" * 400_000)
    for name, used_at in (("a.pte", 1000), ("b.pte", 2000), ("c.pte", 3000)):
        dev.push(model, f"{folder}/{name}")
        assert dev.run(["touch", "-a", "-d", f"@{used_at}", f"{folder}/{name}"], timeout_s=10).exit_code == 0
    assert [m.name for m in cached_models(dev)] == ["a.pte", "b.pte", "c.pte"]
    # 1.2 MB > 1 MB: the oldest goes; a model in use is touched first.
    assert trim_model_cache(dev, keep=[f"{folder}/a.pte"]) == [f"{folder}/b.pte"]
    assert [m.name for m in cached_models(dev)] == ["c.pte", "a.pte"]
    dev.push(model, f"{folder}/d.pte")
    assert trim_model_cache(dev, keep=[f"{folder}/d.pte"]) == [f"{folder}/c.pte"]
    # Over budget with only kept models: nothing of them is removed.
    big = tmp_path / "big.pte"
    big.write_bytes(b"b" * 1_200_000)
    dev.push(big, f"{folder}/e.pte")
    removed = trim_model_cache(dev, keep=[f"{folder}/e.pte"])
    assert sorted(removed) == [f"{folder}/a.pte", f"{folder}/d.pte"]
    assert [m.name for m in cached_models(dev)] == ["e.pte"]
    assert [m.size for m in clean_model_cache(dev)] == [1_200_000]
    assert dev.stat(folder) is None and cached_models(dev) == [] and trim_model_cache(dev, keep=[]) == []
