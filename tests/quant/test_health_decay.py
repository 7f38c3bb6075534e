"""The served-loss decay test on simulated champions with known answers: false-alarm rates of
stable models (i.i.d. and overlapping-target losses), power against a real decay, edge cases."""

import math

import numpy as np
import pytest
from scipy import stats

from quant.evaluation.significance import _newey_west_variance
from quant.monitoring.health import (
    DecayTest,
    HealthTolerances,
    _newey_west_rows,
    decay_test,
    false_alarm_rate,
)

REFERENCE = 1.0
TOLERANCE = HealthTolerances().log_loss  # 0.02
N_SIM = 2_000


def iid_losses(sessions: int, mean: float = REFERENCE):
    """Per-session log losses shaped like a 3-class model's: mean ``mean``, sd 0.1, right-skewed
    (0.8 + Gamma(4, 0.05): skewness 1)."""

    def simulate(rng: np.random.Generator) -> np.ndarray:
        return mean - 0.2 + rng.gamma(4.0, 0.05, sessions)

    return simulate


def overlapping_losses(sessions: int, mean: float = REFERENCE, lag: int = 19):
    """Losses on overlapping (lag + 1)-session targets: an equal-weight MA(lag) of skewed i.i.d.
    shocks (standardised Gamma(2): skewness 1.4), mean ``mean``, sd 0.1."""

    def simulate(rng: np.random.Generator) -> np.ndarray:
        shocks = (rng.gamma(2.0, 1.0, sessions + lag) - 2.0) / math.sqrt(2.0)
        running = np.concatenate([[0.0], np.cumsum(shocks)])
        return mean + 0.1 * (running[lag + 1 :] - running[:sessions]) / math.sqrt(lag + 1)

    return simulate


def binomial_bound(alpha: float, n: int = N_SIM) -> float:
    return alpha + 3.0 * math.sqrt(alpha * (1.0 - alpha) / n)


def test_vectorised_newey_west_is_the_significance_helper():
    rows = np.random.default_rng(0).normal(size=(5, 40)).cumsum(axis=1)
    for lags in (0, 1, 19, 60):
        expected = [_newey_west_variance(r, lags) for r in rows]
        assert _newey_west_rows(rows, lags) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_stable_iid_model_false_alarm_rate_is_at_most_alpha(alpha):
    rate = false_alarm_rate(iid_losses(63), REFERENCE, 0.0, lag=0, alpha=alpha, n_sim=N_SIM)
    print(f"i.i.d., T=63, tolerance 0, alpha {alpha}: false-alarm rate {rate:.4f}")
    assert rate <= binomial_bound(alpha)
    # with the default tolerance a stable model is judged against reference + 0.02
    tolerant = false_alarm_rate(iid_losses(63), REFERENCE, TOLERANCE, 0, alpha, N_SIM)
    print(f"i.i.d., T=63, tolerance {TOLERANCE}, alpha {alpha}: false-alarm rate {tolerant:.4f}")
    assert tolerant <= alpha / 10


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_stable_overlapping_target_model_false_alarm_rate_is_at_most_two_alpha(alpha):
    """MA(19) losses, lag 19, 63 sessions: Student t p-values would flag 2-10x too often, so
    the p-value comes from the statistic's simulated null; it holds the rate near alpha."""
    simulate = overlapping_losses(63)
    rate = false_alarm_rate(simulate, REFERENCE, 0.0, lag=19, alpha=alpha, n_sim=N_SIM)
    print(f"MA(19), lag 19, T=63, tolerance 0, alpha {alpha}: false-alarm rate {rate:.4f}")
    assert rate <= 2 * alpha
    tolerant = false_alarm_rate(simulate, REFERENCE, TOLERANCE, 19, alpha, N_SIM)
    assert tolerant <= rate
    # why: the same statistic with Student t p-values (the textbook recipe) is far too liberal
    rng = np.random.default_rng(0)
    naive = np.mean(
        [
            stats.t.sf(decay_test(simulate(rng), REFERENCE, 0.0, 19).statistic, 62) < alpha
            for _ in range(N_SIM)
        ]
    )
    print(f"MA(19), lag 19, T=63, alpha {alpha}: Student t would flag {naive:.4f}")
    assert naive > 2 * alpha


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_a_decayed_model_is_flagged(alpha):
    """Mean loss = reference + 3 x tolerance (0.04 beyond the tolerated level), sd 0.1."""
    decayed = iid_losses(63, mean=REFERENCE + 3 * TOLERANCE)
    power = false_alarm_rate(decayed, REFERENCE, TOLERANCE, lag=0, alpha=alpha, n_sim=N_SIM)
    print(f"i.i.d., T=63, alpha {alpha}: power at +3 x tolerance {power:.4f}")
    assert power > 0.8


def test_decay_test_fields_and_reason_of_a_clear_decay():
    losses = np.random.default_rng(1).normal(1.06, 0.05, 42)
    test = decay_test(losses, 1.0123, 0.02, lag=0, metric="log loss")
    assert isinstance(test, DecayTest)
    assert test.decayed and test.p_value < 0.01
    assert test.sessions == 42
    assert test.mean_loss == pytest.approx(losses.mean())
    assert test.excess == pytest.approx(losses.mean() - 1.0123)
    se = math.sqrt(_newey_west_variance(losses, 0) / 42)
    assert test.statistic == pytest.approx((losses.mean() - 1.0123 - 0.02) / se)
    # lag 0: Student t (41 df) on the t statistic with the unbiased variance
    t_stat = (losses.mean() - 1.0323) / (losses.std(ddof=1) / math.sqrt(42))
    assert test.p_value == pytest.approx(stats.t.sf(t_stat, 41), rel=1e-9)
    assert test.reason == (
        f"log loss {losses.mean():.4f} over 42 served sessions vs reference 1.0123 "
        f"+ tolerance 0.02: p = {test.p_value:.3g} < 0.01 → decayed"
    )
    assert "\n" not in test.reason


def test_decay_test_not_decayed_and_overlapping_p_values_are_deterministic():
    losses = overlapping_losses(63)(np.random.default_rng(2))
    a = decay_test(losses, REFERENCE, TOLERANCE, lag=19)
    b = decay_test(losses, REFERENCE, TOLERANCE, lag=19)
    assert a == b
    assert 0 < a.p_value <= 1 and not a.decayed
    assert a.reason.endswith("→ not decayed")
    # the same statistic is less significant when the losses are declared overlapping
    shifted = losses + 0.1
    assert (
        decay_test(shifted, REFERENCE, 0.0, 19).p_value
        > decay_test(shifted, REFERENCE, 0.0, 0).p_value
    )


def test_decay_test_edge_cases():
    short = np.concatenate([np.full(20, 2.0), [np.nan, np.inf, -np.inf]])
    test = decay_test(short, REFERENCE, TOLERANCE, lag=0)
    assert not test.decayed and test.sessions == 20
    assert "not enough served sessions (20 < 21)" in test.reason
    assert math.isnan(test.p_value) and math.isnan(test.statistic)
    assert test.mean_loss == 2.0

    empty = decay_test(np.array([]), REFERENCE, TOLERANCE, lag=0)
    assert not empty.decayed and empty.sessions == 0 and math.isnan(empty.mean_loss)

    ok = np.full(30, 1.5)
    for reference in (math.nan, math.inf):
        test = decay_test(ok, reference, TOLERANCE, lag=0)
        assert not test.decayed and math.isnan(test.p_value)
        assert "not judged" in test.reason and "reference" in test.reason

    # constant losses: no variance, the verdict is the sign of the excess
    assert decay_test(np.full(30, 1.5), REFERENCE, TOLERANCE, 0).decayed
    assert decay_test(np.full(30, 1.5), REFERENCE, TOLERANCE, 19).decayed
    assert not decay_test(np.full(30, 0.5), REFERENCE, TOLERANCE, 0).decayed
    assert not decay_test(np.full(30, 1.02), REFERENCE, TOLERANCE, 0).decayed

    for bad in ({"lag": -1}, {"alpha": 0.0}, {"alpha": 1.0}, {"min_sessions": 1}):
        with pytest.raises(ValueError):
            decay_test(ok, REFERENCE, TOLERANCE, **{"lag": 0, **bad})
    with pytest.raises(ValueError):
        decay_test(ok, REFERENCE, -0.01, lag=0)
    with pytest.raises(ValueError):
        false_alarm_rate(iid_losses(30), REFERENCE, TOLERANCE, 0, 0.01, n_sim=0)


def test_false_alarm_rate_is_reproducible_and_respects_min_sessions():
    simulate = iid_losses(30, mean=REFERENCE + 0.1)
    a = false_alarm_rate(simulate, REFERENCE, TOLERANCE, 0, 0.05, n_sim=200, seed=3)
    assert a == false_alarm_rate(simulate, REFERENCE, TOLERANCE, 0, 0.05, n_sim=200, seed=3)
    assert a > 0.9
    never = false_alarm_rate(simulate, REFERENCE, TOLERANCE, 0, 0.05, n_sim=50, min_sessions=31)
    assert never == 0.0
