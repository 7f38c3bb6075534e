"""Promotion in shadow: a new configuration needs a significant win, a refresh is kept unless
significantly worse, the metric is per symbol averaged over the decisive group."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant.promotion import (
    NEW_CONFIGURATION,
    REFRESH,
    ShadowPolicy,
    decide_shadow,
    first_champion,
    group_metric,
    metric_weights,
    paired_test,
    row_scores,
)

SYMBOLS = [f"EQ{i}" for i in range(20)]
POLICY = ShadowPolicy()


def direction_rows(seed: int, sessions: int = 21) -> pl.DataFrame:
    """20 equities x ``sessions`` sessions of next-day classes drawn 45/10/45."""
    rng = np.random.default_rng(seed)
    dates = [date(2026, 1, 5) + timedelta(days=i) for i in range(sessions)]
    frame = pl.DataFrame(
        {
            "symbol": np.repeat(SYMBOLS, sessions),
            "date": dates * len(SYMBOLS),
        }
    )
    y = rng.choice(3, size=frame.height, p=[0.45, 0.10, 0.45])
    return frame.with_columns(pl.Series("direction", y))


def probabilities(rows: pl.DataFrame, skill: float, seed: int) -> np.ndarray:
    """Near the base rates, tilted by ``skill`` towards the true class, plus noise."""
    rng = np.random.default_rng(seed)
    base = np.tile([0.45, 0.10, 0.45], (rows.height, 1))
    truth = np.eye(3)[rows["direction"].to_numpy()]
    noise = rng.normal(0, 0.03, size=base.shape)
    p = np.clip(base + skill * (truth - base) + noise, 0.01, None)
    return p / p.sum(axis=1, keepdims=True)


def scores(rows: pl.DataFrame, p: np.ndarray) -> np.ndarray:
    frame = rows.with_columns(
        pl.Series("p_down", p[:, 0]), pl.Series("p_neutral", p[:, 1]), pl.Series("p_up", p[:, 2])
    )
    return row_scores("direction", frame)


def test_a_new_configuration_with_an_insignificant_edge_is_refused():
    rows = direction_rows(1)
    champion = scores(rows, probabilities(rows, 0.0, seed=2))
    challenger = scores(rows, probabilities(rows, 0.0, seed=3))  # same skill, other noise
    decision = decide_shadow("direction", NEW_CONFIGURATION, rows, challenger, champion, POLICY)
    assert not decision.promote
    assert decision.p_value > POLICY.alpha
    assert "no significant win" in decision.reason
    assert decision.sessions == 21
    assert decision.shadow_start == "2026-01-05" and decision.shadow_end == "2026-01-25"


def test_a_planted_clearly_better_new_configuration_is_promoted():
    rows = direction_rows(4)
    champion = scores(rows, probabilities(rows, 0.0, seed=5))
    challenger = scores(rows, probabilities(rows, 0.3, seed=6))
    decision = decide_shadow("direction", NEW_CONFIGURATION, rows, challenger, champion, POLICY)
    assert decision.promote and decision.p_value < 0.001
    assert decision.challenger < decision.champion
    assert "significant win" in decision.reason


def test_a_refresh_is_kept_unless_significantly_worse():
    rows = direction_rows(7)
    champion = scores(rows, probabilities(rows, 0.05, seed=8))
    similar = scores(rows, probabilities(rows, 0.05, seed=9))  # same skill, other noise
    kept = decide_shadow("direction", REFRESH, rows, similar, champion, POLICY)
    assert kept.promote and "not significantly worse" in kept.reason
    broken = scores(rows, probabilities(rows, -0.4, seed=10))  # confidently wrong
    refused = decide_shadow("direction", REFRESH, rows, broken, champion, POLICY)
    assert not refused.promote and refused.p_value < POLICY.alpha
    assert "significantly worse" in refused.reason
    # the same small excess is not "worse by more than the margin" with a wide margin
    wide = ShadowPolicy(margins={"direction": 1.0})
    assert decide_shadow("direction", REFRESH, rows, broken, champion, wide).promote


def test_decision_tags_carry_the_window_scores_and_p_value():
    rows = direction_rows(11)
    champion = scores(rows, probabilities(rows, 0.0, seed=12))
    decision = decide_shadow("direction", REFRESH, rows, champion, champion, POLICY)
    tags = decision.tags()
    assert tags["shadow_start"] == "2026-01-05" and tags["shadow_end"] == "2026-01-25"
    assert float(tags["shadow_challenger_score"]) == pytest.approx(decision.challenger)
    assert tags["shadow_kind"] == REFRESH and tags["shadow_decision"] == "promoted"
    assert first_champion("direction").promote


def test_the_metric_is_per_symbol_then_averaged_not_pooled():
    # one symbol with many rows must not dominate: the mean of per-symbol balanced accuracies
    big = pl.DataFrame(
        {"symbol": ["A"] * 90, "date": [date(2026, 1, 1)] * 90, "regime": [0] * 45 + [1] * 45}
    )
    small = pl.DataFrame(
        {"symbol": ["B"] * 10, "date": [date(2026, 1, 1)] * 10, "regime": [0] * 5 + [2] * 5}
    )
    rows = pl.concat([big, small])
    # A: every call right; B: every call "Bear" (recall 1 for Bear, 0 for Bull)
    pred = np.concatenate([rows["regime"].to_numpy()[:90], np.zeros(10, dtype=int)])
    proba = np.eye(4)[pred]
    frame = rows.with_columns(
        *(
            pl.Series(c, proba[:, i])
            for i, c in enumerate(["p_bear", "p_sideways", "p_bull", "p_highvol"])
        )
    )
    assert group_metric("regime", frame) == pytest.approx((1.0 + 0.5) / 2)
    assert metric_weights("direction", rows).sum() == pytest.approx(1.0)


def test_paired_test_of_identical_losses_says_nothing_either_way():
    dates = np.repeat(np.arange(21), 5)
    test = paired_test(dates, np.zeros(dates.size), margin=0.0, lag=0)
    assert test.p_better == 1.0 and test.p_worse_than_margin == 1.0
    assert test.difference == 0.0
