"""Parameters and fvcore FLOPs against the numbers the model cards cite."""

from __future__ import annotations

import pytest

from mobilebench.flops import count_flops
from mobilebench.zoo.resolve import resolve_model

# name -> exact parameter count of our definition (a change to the architecture shows here)
PARAMS = {"ghostnet_130": 7_358_820, "mnasnet_a1": 3_887_038, "mnasnet1_0": 4_383_312}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_cost_matches_the_card(name: str) -> None:
    resolved = resolve_model(name)
    assert resolved.card is not None and resolved.card.paper is not None
    paper = resolved.card.paper
    report = count_flops(resolved)

    assert report.params == PARAMS[name]
    assert report.params == pytest.approx(paper.params, rel=0.02)
    # fvcore's total (conv, linear, batch norm, pooling) within 5% of the paper ...
    assert report.flops == pytest.approx(paper.flops, rel=0.05)
    # ... and the papers count convolutions + classifier, which agree to 0.5%; the
    # cards explain the difference with these numbers.
    assert report.conv_linear_flops == pytest.approx(paper.flops, rel=0.005)
    assert set(report.flops_by_operator) <= {"conv", "linear", "batch_norm", "adaptive_avg_pool2d"}
    assert f"{report.flops / 1e6:.1f}M" in resolved.card.description
    assert f"{report.conv_linear_flops / 1e6:.1f}M" in resolved.card.description


def test_mnasnet_a1_card_says_it_stands_in_for_a2() -> None:
    card = resolve_model("mnasnet_a1").card
    assert card is not None
    assert "A2" in card.description and "never published" in card.description
    assert card.accuracy is not None and card.accuracy.top1 == 75.2
