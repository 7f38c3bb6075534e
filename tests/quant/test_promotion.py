"""Champion/challenger rule, both ways, for each family's primary metric."""

import math

import pytest

from quant.promotion import decide_promotion


def test_first_model_becomes_champion():
    decision = decide_promotion("direction", 1.0, None)
    assert decision.promote and decision.reason == "no champion yet"


@pytest.mark.parametrize(
    ("family", "better", "worse", "champion"),
    [
        ("direction", 0.95, 1.05, 1.0),  # log loss: lower wins
        ("volatility", 0.20, 0.30, 0.25),  # QLIKE: lower wins
        ("regime", 0.40, 0.30, 0.35),  # balanced accuracy: higher wins
    ],
)
def test_promoted_only_when_it_beats_the_champion(family, better, worse, champion):
    assert decide_promotion(family, better, champion).promote
    kept = decide_promotion(family, worse, champion)
    assert not kept.promote and "does not beat" in kept.reason
    assert not decide_promotion(family, champion, champion).promote  # a tie keeps the champion


def test_margin_and_non_finite_scores():
    assert not decide_promotion("direction", 0.999, 1.0, min_improvement=0.01).promote
    assert not decide_promotion("direction", math.nan, 1.0).promote
    assert decide_promotion("direction", 1.0, math.nan).promote
