"""The retrain/sweep rule, and champion health on known numbers."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant.automation import RETRAIN, SWEEP, Observation, TriggerPolicy, decide, most_severe
from quant.monitoring.health import HealthTolerances, assess

POLICY = TriggerPolicy(retrain_drift_share=0.3, severe_drift_share=0.5)


@pytest.mark.parametrize(
    ("share", "job"), [(0.1, None), (0.29, None), (0.3, RETRAIN), (0.49, RETRAIN), (0.5, SWEEP)]
)
def test_drift_share_thresholds(share, job):
    decision = decide(Observation("feature_drift", 7, drift_share=share), POLICY)
    assert decision.job == job
    assert f"{share:.2f}" in decision.reason


def test_decay_triggers_a_retrain_and_run_keys_are_deterministic():
    decayed = decide(Observation("model_health", 12, decayed=True), POLICY)
    assert decayed.job == RETRAIN and decayed.run_key == "retrain:model_health:12"
    assert decide(Observation("model_health", 12, decayed=False), POLICY).job is None
    again = decide(Observation("model_health", 12, decayed=True), POLICY)
    assert again.run_key == decayed.run_key


def test_the_most_severe_decision_wins_and_invalid_thresholds_are_refused():
    decisions = [
        decide(Observation("feature_drift", 1, drift_share=0.6), POLICY),
        decide(Observation("model_health", 2, decayed=True), POLICY),
        decide(Observation("feature_drift", 3, drift_share=0.1), POLICY),
    ]
    assert most_severe(decisions).job == SWEEP
    assert most_severe(decisions[2:]) is None
    with pytest.raises(ValueError, match="thresholds"):
        TriggerPolicy(retrain_drift_share=0.6, severe_drift_share=0.5)


def _labeled(days: int = 200) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    dates = [date(2024, 1, 1) + timedelta(days=i) for i in range(days)]
    return pl.DataFrame(
        {
            "symbol": "AAA",
            "date": dates,
            "direction": rng.integers(0, 3, days),
            "fwd_return_1": rng.normal(0, 0.01, days),
        }
    )


def test_health_flags_a_model_that_got_worse_and_not_one_that_held_up():
    labeled = _labeled()
    recent_start = labeled["date"][150]
    y = labeled["direction"].to_numpy()
    informed = np.full((labeled.height, 3), 0.1)
    informed[np.arange(labeled.height), y] = 0.8
    uniform = np.full((labeled.height, 3), 1 / 3)
    late = (labeled["date"] >= recent_start).to_numpy()[:, None]

    def outputs(p):
        return labeled.select("symbol", "date").with_columns(
            pl.Series("p_down", p[:, 0]),
            pl.Series("p_neutral", p[:, 1]),
            pl.Series("p_up", p[:, 2]),
        )

    steady = assess(
        "m",
        "direction",
        labeled,
        outputs(informed),
        recent_start,
        date(2024, 1, 1),
        HealthTolerances(),
    )
    assert not steady.decayed and steady.recent_rows == 50 and steady.reference_rows == 150
    worse = np.where(late, uniform, informed)
    decayed = assess(
        "m",
        "direction",
        labeled,
        outputs(worse),
        recent_start,
        date(2024, 1, 1),
        HealthTolerances(),
    )
    assert decayed.decayed and "log_loss" in decayed.reason
    assert decayed.recent["log_loss"] == pytest.approx(np.log(3))
    # a reference shorter than the window judged is too noisy: no verdict
    short = assess(
        "m",
        "direction",
        labeled,
        outputs(worse),
        labeled["date"][120],
        labeled["date"][100],
        HealthTolerances(),
    )
    assert not short.decayed and "not enough" in short.reason
