"""Champion health: how the models in service did on the sessions whose labels have arrived.

The losses of what each champion served recently (``quant.monitoring.served_health``) are
compared with its own reference level. ``decay_test`` makes that comparison a test with a known false-alarm rate: the per-session
losses of the predictions actually served against the champion's reference loss (measured out
of sample when it was promoted), one-sided, Newey–West for overlapping targets, with p-values
calibrated for the few sessions a monitor has. ``false_alarm_rate`` measures what share of
stable (or, given a decayed simulator, of decayed) series it flags.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from quant.evaluation.significance import _newey_west_variance

KEYS = ["symbol", "date"]
DIRECTION = ["p_down", "p_neutral", "p_up"]
REGIME = ["p_bear", "p_sideways", "p_bull", "p_highvol"]


@dataclass(frozen=True)
class HealthTolerances:
    """How much worse than its reference level a champion's served loss may be before a
    significant excess counts as decay, in loss units: nats of log loss (direction and regime
    probabilities) and QLIKE (volatility)."""

    log_loss: float = 0.02
    qlike: float = 0.05
    regime_log_loss: float = 0.05


# --- decay test: served losses against the reference level -------------------------------------

NULL_DRAWS = 20_000  # simulated stable series per (sessions, lag): p resolution 1 / 20,001
NULL_CHUNK = 2_000


@dataclass(frozen=True)
class DecayTest:
    """Outcome of ``decay_test``: is the served loss above reference + tolerance?

    ``excess`` = mean_loss - reference (the tolerance is not subtracted); ``statistic`` =
    (mean_loss - reference - tolerance) / its Newey–West standard error; ``sessions`` = finite
    per-session losses used. ``decayed`` is ``p_value < alpha``; NaN fields mean not judged,
    and ``reason`` says why in one line.
    """

    mean_loss: float
    reference: float
    tolerance: float
    excess: float
    statistic: float
    p_value: float
    sessions: int
    decayed: bool
    reason: str


def _newey_west_rows(rows: np.ndarray, lags: int) -> np.ndarray:
    """``_newey_west_variance`` of every row of a 2-D array at once (the same formula)."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    t = rows.shape[1]
    variance = np.einsum("ij,ij->i", centred, centred) / t
    for k in range(1, min(lags, t - 1) + 1):
        weight = 1.0 - k / (lags + 1.0)
        variance += 2.0 * weight * np.einsum("ij,ij->i", centred[:, k:], centred[:, :-k]) / t
    return variance


@lru_cache(maxsize=64)
def _null_statistics(sessions: int, lag: int) -> np.ndarray:
    """The decay statistic on ``NULL_DRAWS`` stable series of ``sessions`` values, sorted.

    The series are equal-weight moving sums of ``lag + 1`` i.i.d. normal shocks: the
    autocorrelation of losses on overlapping ``lag + 1``-session targets (the overlap of two
    targets k sessions apart is lag + 1 - k sessions). Of the MA(lag) shapes tried it is the
    least favourable for the Bartlett estimator, whose weights shrink the high-lag
    autocovariances this shape has most of: with declining or geometric weights the test is
    conservative (lag 19, T = 63, alpha 1 %: 0.9 % and 0.55 % of stable series flagged, 1.05 %
    with equal weights; ``benchmarks/bench_health_false_alarms.py``). Dependence beyond
    ``lag`` sessions is not covered. The statistic is scale free, so the shocks' scale does not
    matter. Seeded by (sessions, lag): the same inputs give the same p-values.
    """
    rng = np.random.default_rng([sessions, lag])
    out = []
    for lo in range(0, NULL_DRAWS, NULL_CHUNK):
        n = min(NULL_CHUNK, NULL_DRAWS - lo)
        shocks = np.cumsum(rng.standard_normal((n, sessions + lag)), axis=1)
        shocks = np.concatenate([np.zeros((n, 1)), shocks], axis=1)
        series = shocks[:, lag + 1 :] - shocks[:, :sessions]
        out.append(series.mean(axis=1) / np.sqrt(_newey_west_rows(series, lag) / sessions))
    return np.sort(np.concatenate(out))


def _decay_p_value(statistic: float, sessions: int, lag: int) -> float:
    """One-sided p of the decay statistic: P(statistic >= observed) for a stable series.

    lag 0: exact for normal losses; the Newey–West variance with no lags divides by T, so
    statistic * sqrt((T - 1) / T) is the usual t statistic, Student t with T - 1 df. lag > 0:
    Student t is far too liberal in small samples (Bartlett with lag 19 on 63 sessions misses
    about a third of the long-run variance of overlapping targets and the estimate itself is
    noisy: on stable MA(19) series a 1 % test flags ~11 %, a 5 % test ~18 %), so the p-value is
    read off the statistic's simulated distribution on stable series of the same length and lag
    (``_null_statistics``), a finite-sample version of fixed-b critical values.
    """
    if math.isnan(statistic):
        return math.nan
    if lag == 0:
        return float(stats.t.sf(statistic * math.sqrt((sessions - 1) / sessions), sessions - 1))
    null = _null_statistics(sessions, lag)
    beyond = null.size - int(np.searchsorted(null, statistic, side="left"))
    return (beyond + 1.0) / (null.size + 1.0)


def decay_test(
    daily_loss: np.ndarray,
    reference: float,
    tolerance: float,
    lag: int,
    alpha: float = 0.01,
    min_sessions: int = 21,
    metric: str = "loss",
) -> DecayTest:
    """Has the champion's served loss risen above its reference level + tolerance?

    ``daily_loss``: the per-session mean loss of the predictions served (averaged across symbols
    by the caller, so cross-sectional correlation is absorbed), lower is better; non-finite
    sessions are dropped. ``reference``: the champion's out-of-sample loss at promotion;
    ``tolerance``: how much worse is still acceptable. One-sided test of
    H1: E[loss] > reference + tolerance with statistic
    (mean - reference - tolerance) / sqrt(NW / T), NW the Newey–West (Bartlett) long-run variance
    with ``lag`` lags: consecutive losses on overlapping h-session targets are correlated, lag
    = h - 1 (19 for 20-session targets, 0 for next-session ones). ``decayed`` = p < ``alpha``,
    so a stable champion (mean loss = reference) is flagged in at most ``alpha`` of the windows,
    and in far fewer when ``tolerance`` > 0 (``benchmarks/bench_health_false_alarms.py``).

    The p-value is exact Student t (T - 1 df) for lag 0 and, for lag > 0, read off the
    statistic's simulated distribution on stable overlapping-target series of the same length
    (see ``_decay_p_value``): Student t would flag a stable MA(19) series ~11 % of the time at
    alpha 1 % over 63 sessions. Power is low there whatever the test: 63 sessions of
    20-session targets hold about three independent observations (a 3 x 0.02 decay of losses
    with sd 0.1 is flagged ~4 % of the time at alpha 1 %, ~13 % at 5 %, against ~82 % and ~96 %
    with next-session targets), so only a large decay is detected that early.

    Not judged (decayed False, NaN statistic) when ``reference`` is not finite or fewer than
    ``min_sessions`` finite losses were served. ``metric`` only names the loss in ``reason``.
    """
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if min_sessions < 2:
        raise ValueError(f"min_sessions must be >= 2, got {min_sessions}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
    values = np.asarray(daily_loss, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    t = int(values.size)
    mean = float(values.mean()) if t else math.nan
    reference = float(reference)

    def unjudged(reason: str) -> DecayTest:
        excess = mean - reference if t else math.nan
        return DecayTest(mean, reference, tolerance, excess, math.nan, math.nan, t, False, reason)

    if not math.isfinite(reference):
        return unjudged(f"reference {metric} is {reference}: no out-of-sample level, not judged")
    if t < min_sessions:
        return unjudged(f"not enough served sessions ({t} < {min_sessions}), not judged")
    gap = mean - reference - tolerance
    variance = _newey_west_variance(values, lag)
    scale = max(float(np.abs(values).max()), abs(reference) + tolerance)
    if variance <= (1e-12 * scale) ** 2:  # constant losses: the verdict is the sign of the gap
        statistic = 0.0 if abs(gap) <= 1e-12 * scale else math.copysign(math.inf, gap)
    else:
        statistic = gap / math.sqrt(variance / t)
    p_value = _decay_p_value(statistic, t, lag)
    decayed = p_value < alpha
    verdict = f"< {alpha:g} → decayed" if decayed else f">= {alpha:g} → not decayed"
    reason = (
        f"{metric} {mean:.4f} over {t} served sessions vs reference {reference:.4f} "
        f"+ tolerance {tolerance:g}: p = {p_value:.3g} {verdict}"
    )
    return DecayTest(
        mean, reference, tolerance, mean - reference, statistic, p_value, t, decayed, reason
    )


def false_alarm_rate(
    simulate: Callable[[np.random.Generator], np.ndarray],
    reference: float,
    tolerance: float,
    lag: int,
    alpha: float,
    n_sim: int = 2000,
    seed: int = 0,
    min_sessions: int = 21,
) -> float:
    """Share of ``n_sim`` simulated series that ``decay_test`` flags as decayed.

    ``simulate(rng)`` returns one series of per-session losses; give it a stable model (mean
    loss = ``reference``) to measure the false-alarm rate, a decayed one to measure power. Its
    binomial standard error is sqrt(rate (1 - rate) / n_sim). The same seed gives the same rate.
    """
    if n_sim < 1:
        raise ValueError(f"n_sim must be >= 1, got {n_sim}")
    rng = np.random.default_rng(seed)
    flagged = sum(
        decay_test(simulate(rng), reference, tolerance, lag, alpha, min_sessions).decayed
        for _ in range(n_sim)
    )
    return flagged / n_sim
