"""The name registry: registration, duplicates, patterns, unknown names."""

from __future__ import annotations

import pytest
from torch import nn

import mobilebench
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.zoo import registry


@pytest.fixture
def scratch_name():
    """A registry name that is removed again after the test."""
    name = "test_only_tiny_net"
    yield name
    registry._REGISTRY.pop(name, None)


def test_register_create_and_list(scratch_name):
    @mobilebench.register_model(scratch_name)
    def tiny(*, num_classes: int = 1000, hidden: int = 4) -> nn.Module:
        """A tiny test network."""
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.Linear(hidden, num_classes))

    assert scratch_name in mobilebench.list_models("test_only_*")
    model = mobilebench.create_model(scratch_name, num_classes=3, hidden=5)
    assert model[2].out_features == 3 and model[1].out_features == 5
    entry = registry.get_model_entry(scratch_name)
    assert entry.options == {"hidden": 4}
    assert entry.description == "A tiny test network."


def test_duplicate_name_is_refused(scratch_name):
    def build(*, num_classes: int = 1000) -> nn.Module:
        return nn.Linear(1, num_classes)

    registry.register_model(scratch_name)(build)
    with pytest.raises(MobilebenchError, match="already registered"):
        registry.register_model(scratch_name)(build)
    with pytest.raises(MobilebenchError, match="already registered"):
        registry.register_model("skipnet_m")(build)


def test_builder_signature_is_checked(scratch_name):
    def positional(num_classes=1000):
        return nn.Linear(1, num_classes)

    with pytest.raises(MobilebenchError, match="keyword-only"):
        registry.register_model(scratch_name)(positional)


def test_list_models_pattern():
    assert mobilebench.list_models("skipnet_*") == ["skipnet_l", "skipnet_m", "skipnet_s", "skipnet_xs"]
    assert mobilebench.list_models("mobilenet_v3_*") == [
        "mobilenet_v3_large", "mobilenet_v3_large_125", "mobilenet_v3_small",
    ]
    assert mobilebench.list_models("nothing*") == []
    everything = mobilebench.list_models()
    assert everything == sorted(everything) and "mobilenet_v2" in everything


def test_unknown_name_lists_close_matches():
    with pytest.raises(UsageError, match=r"unknown model 'skipnet_mm'; did you mean 'skipnet_m'") as info:
        mobilebench.create_model("skipnet_mm")
    assert info.value.exit_code == 2
