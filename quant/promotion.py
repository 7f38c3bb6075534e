"""Champion / challenger, decided in shadow: when a newly trained model replaces the one in service.

A challenger fitted on data up to T is scored beside the champion on the sessions after T, which
neither has fitted on (``data_as_of`` of the challenger is the later cutoff). Once
``ShadowPolicy.sessions`` such sessions have their labels, the challenger is judged:

- a **refresh** (same configuration, newer data) replaces the champion unless it is
  significantly worse by more than the family's margin (one-sided test of
  "challenger loss - champion loss > margin");
- a **new configuration** (other hyper-parameters, e.g. a sweep's result, or a new model) needs
  a significant win (one-sided test of "challenger loss - champion loss < 0");
- with no champion at all, the first model serves at once.

The primary metric (log loss for direction, QLIKE for volatility, balanced accuracy for regime)
is computed per symbol and averaged over the equities; indices and volatility indices are scored
apart and never decide. The test is paired on the same rows: the per-row loss differential,
weighted so that it adds up to the metric, is summed per date into a series whose mean is the
metric difference; its variance is Newey–West with ``horizon - 1`` lags for 20-session targets
(overlapping labels), none for next-session ones, and p comes from Student's t with T - 1
degrees of freedom. With 21 sessions of 20-session targets the evidence is thin (about one
independent period), so a new volatility or regime configuration rarely shows a significant
win so soon: that is the honest answer, not a defect of the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats

from quant.evaluation import qlike_loss
from quant.evaluation.significance import _newey_west_variance

PRIMARY_METRIC = {
    "direction": ("log_loss", False),
    "volatility": ("qlike", False),
    "regime": ("balanced_accuracy", True),
}
OUTPUTS = {
    "direction": ["p_down", "p_neutral", "p_up"],
    "volatility": ["vol_forecast"],
    "regime": ["p_bear", "p_sideways", "p_bull", "p_highvol"],
}
LABEL = {"direction": "direction", "volatility": "fwd_vol_20", "regime": "regime"}
FIRST, REFRESH, NEW_CONFIGURATION = "first", "refresh", "new configuration"
EPS = 1e-7


@dataclass(frozen=True)
class ShadowPolicy:
    """How many new sessions a challenger waits for, the test level and the refresh margins
    (in the primary metric's units: nats of log loss, QLIKE, balanced accuracy)."""

    sessions: int = 21
    alpha: float = 0.05
    margins: dict[str, float] = field(
        default_factory=lambda: {"direction": 0.002, "volatility": 0.02, "regime": 0.01}
    )
    horizon: int = 20

    def lag(self, family: str) -> int:
        """Newey–West lags of the family's daily loss differential."""
        return 0 if family == "direction" else self.horizon - 1


def row_scores(family: str, rows: pl.DataFrame) -> np.ndarray:
    """Per-row score of a model's outputs against the labels of ``rows`` (labels and outputs
    joined): log loss, QLIKE, or 1 for a correct regime call."""
    if family == "direction":
        y = rows["direction"].to_numpy().astype(int)
        p = np.clip(rows.select(OUTPUTS[family]).to_numpy().astype(float), EPS, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(y.size), y])
    if family == "volatility":
        return qlike_loss(rows["fwd_vol_20"].to_numpy(), rows["vol_forecast"].to_numpy())
    y = rows["regime"].to_numpy().astype(int)
    pred = rows.select(OUTPUTS[family]).to_numpy().argmax(axis=1)
    return (pred == y).astype(float)


def metric_weights(family: str, rows: pl.DataFrame) -> np.ndarray:
    """Row weights that turn ``row_scores`` into the primary metric computed per symbol and
    averaged over the symbols of ``rows``: 1 / (symbols x rows of the symbol), and for balanced
    accuracy 1 / (symbols x classes present x rows of the symbol's class)."""
    n_symbols = max(rows["symbol"].n_unique(), 1)
    if family == "regime":
        frame = rows.select(
            (
                1.0
                / (
                    pl.len().over("symbol", "regime")
                    * pl.col("regime").n_unique().over("symbol")
                    * n_symbols
                )
            ).alias("w")
        )
    else:
        frame = rows.select((1.0 / (pl.len().over("symbol") * n_symbols)).alias("w"))
    return frame["w"].to_numpy().astype(float)


def group_metric(family: str, rows: pl.DataFrame) -> float:
    """The primary metric per symbol, averaged over the symbols of ``rows`` (NaN when empty)."""
    if rows.is_empty():
        return math.nan
    return float(np.sum(metric_weights(family, rows) * row_scores(family, rows)))


def loss_sign(family: str) -> float:
    """+1 where the metric is a loss, -1 where higher is better (the tests work on losses)."""
    return -1.0 if PRIMARY_METRIC[family][1] else 1.0


@dataclass(frozen=True)
class PairedTest:
    """One-sided tests on the per-date differential (challenger - champion, in loss units)."""

    difference: float
    statistic_better: float
    p_better: float
    p_worse_than_margin: float
    sessions: int


def paired_test(dates: np.ndarray, differential: np.ndarray, margin: float, lag: int) -> PairedTest:
    """``differential``: weighted per-row loss differences (their sum is the metric
    difference). Summed per date and scaled by the number of dates, the series' mean is that
    difference; tested with Newey–West variance (``lag`` lags) and Student's t."""
    frame = (
        pl.DataFrame({"date": pl.Series(np.asarray(dates)), "d": differential})
        .group_by("date")
        .agg(pl.col("d").sum())
        .sort("date")
    )
    t = frame.height
    d = frame["d"].to_numpy() * t
    mean = float(d.mean()) if t else math.nan
    if t < 2:
        return PairedTest(mean, math.nan, math.nan, math.nan, t)
    variance = _newey_west_variance(d, lag)
    if variance <= (1e-12 * max(float(np.abs(d).max()), 1e-300)) ** 2:
        # the same gap every day (often: identical losses): certain, not noisy
        p_better = 0.0 if mean < 0 else 1.0
        p_worse = 0.0 if mean > margin else 1.0
        return PairedTest(mean, math.nan, p_better, p_worse, t)
    se = math.sqrt(variance / t)
    statistic = mean / se
    p_better = float(stats.t.cdf(statistic, df=t - 1))
    p_worse = float(stats.t.sf((mean - margin) / se, df=t - 1))
    return PairedTest(mean, statistic, p_better, p_worse, t)


@dataclass(frozen=True)
class ShadowDecision:
    """The verdict on one challenger, with what it rests on."""

    promote: bool
    kind: str
    reason: str
    metric: str
    challenger: float
    champion: float | None
    p_value: float
    sessions: int
    shadow_start: str | None = None
    shadow_end: str | None = None
    apart: dict[str, dict[str, float]] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        """The decision as MLflow model-version tags."""
        out = {
            "shadow_kind": self.kind,
            "shadow_decision": "promoted" if self.promote else "rejected",
            "shadow_metric": self.metric,
            "shadow_challenger_score": f"{self.challenger:.6g}",
            "shadow_champion_score": "" if self.champion is None else f"{self.champion:.6g}",
            "shadow_p_value": f"{self.p_value:.4g}",
            "shadow_sessions": str(self.sessions),
            "promotion": self.reason,
        }
        if self.shadow_start:
            out["shadow_start"], out["shadow_end"] = self.shadow_start, self.shadow_end or ""
        return out


def first_champion(family: str, score: float = math.nan) -> ShadowDecision:
    """No champion yet: the first model serves at once (nothing to compare it with)."""
    metric, _ = PRIMARY_METRIC[family]
    return ShadowDecision(
        True, FIRST, "no champion yet: first model serves", metric, score, None, math.nan, 0
    )


def decide_shadow(
    family: str,
    kind: str,
    rows: pl.DataFrame,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray,
    policy: ShadowPolicy,
) -> ShadowDecision:
    """Judge a challenger on the shadow ``rows`` (the decisive group: equities; labels joined)
    where ``challenger_scores`` and ``champion_scores`` are both models' ``row_scores``."""
    metric, _ = PRIMARY_METRIC[family]
    weights = metric_weights(family, rows)
    challenger = float(np.sum(weights * challenger_scores))
    champion = float(np.sum(weights * champion_scores))
    dates = rows["date"].to_numpy()
    sign = loss_sign(family)
    margin = policy.margins.get(family, 0.0)
    test = paired_test(
        dates, sign * weights * (challenger_scores - champion_scores), margin, policy.lag(family)
    )
    window = (str(rows["date"].min()), str(rows["date"].max())) if rows.height else (None, None)
    scores = f"{metric} {challenger:.5f} vs champion {champion:.5f} over {test.sessions} sessions"
    if kind == REFRESH:
        worse = math.isfinite(test.p_worse_than_margin) and test.p_worse_than_margin < policy.alpha
        if not math.isfinite(challenger):
            promote, why = False, f"refresh: challenger {metric} is not finite"
        elif worse:
            promote = False
            why = (
                f"refresh significantly worse by more than the margin {margin}: {scores}, "
                f"p = {test.p_worse_than_margin:.3g} < {policy.alpha}"
            )
        else:
            promote = True
            why = (
                f"refresh not significantly worse (margin {margin}): {scores}, "
                f"p = {test.p_worse_than_margin:.3g}"
            )
        p_value = test.p_worse_than_margin
    else:
        better = math.isfinite(test.p_better) and test.p_better < policy.alpha
        promote = better and math.isfinite(challenger)
        verdict = "significant win" if promote else "no significant win"
        why = f"new configuration, {verdict}: {scores}, p = {test.p_better:.3g} (alpha {policy.alpha})"
        p_value = test.p_better
    return ShadowDecision(
        promote, kind, why, metric, challenger, champion, p_value, test.sessions, *window
    )
