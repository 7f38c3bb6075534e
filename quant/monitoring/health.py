"""Champion health: how the models in service did on the sessions whose labels have arrived.

The recent window (default: the last 63 labeled sessions) is compared with the same model's
level over the earlier out-of-sample rows (test split before the window). A model has decayed
when its primary metric is worse than that level by more than a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from quant.evaluation import information_coefficient, qlike_loss
from quant.promotion import PRIMARY_METRIC

KEYS = ["symbol", "date"]
DIRECTION = ["p_down", "p_neutral", "p_up"]
REGIME = ["p_bear", "p_sideways", "p_bull", "p_highvol"]


@dataclass(frozen=True)
class HealthTolerances:
    """How much worse than its out-of-sample level a champion may get before it counts as
    decayed: log loss (direction), QLIKE (volatility), balanced accuracy (regime)."""

    log_loss: float = 0.02
    qlike: float = 0.15
    balanced_accuracy: float = 0.08


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == k] == k) for k in np.unique(y)]))


def family_scores(family: str, rows: pl.DataFrame) -> dict[str, float]:
    """The health metrics of one family on rows joined with the model's outputs."""
    if rows.is_empty():
        return {}
    if family == "direction":
        y = rows["direction"].to_numpy().astype(int)
        p = rows.select(DIRECTION).to_numpy()
        ic = information_coefficient(p[:, 2] - p[:, 0], rows["fwd_return_1"].to_numpy())
        return {
            "log_loss": _log_loss(y, p),
            "accuracy": float(np.mean(p.argmax(axis=1) == y)),
            "rank_ic": ic["rank_ic"],
        }
    if family == "volatility":
        realized = rows["fwd_vol_20"].to_numpy()
        forecast = rows["vol_forecast"].to_numpy()
        return {"qlike": float(np.mean(qlike_loss(realized, forecast)))}
    y = rows["regime"].to_numpy().astype(int)
    pred = rows.select(REGIME).to_numpy().argmax(axis=1)
    return {"balanced_accuracy": _balanced_accuracy(y, pred), "accuracy": float(np.mean(pred == y))}


PRIMARY = {family: metric for family, (metric, _) in PRIMARY_METRIC.items()}


@dataclass(frozen=True)
class HealthResult:
    model: str
    family: str
    recent: dict[str, float]
    reference: dict[str, float]
    recent_rows: int
    reference_rows: int
    decayed: bool
    reason: str


def assess(
    model: str,
    family: str,
    labeled: pl.DataFrame,
    outputs: pl.DataFrame,
    recent_start: object,
    reference_start: object,
    tolerances: HealthTolerances,
) -> HealthResult:
    """Score ``outputs`` on the recent window (dates ≥ ``recent_start``) and on the reference
    window (``reference_start`` ≤ date < ``recent_start``); flag decay by the primary metric.
    The reference must hold at least as many rows as the recent window, else nothing is judged."""
    columns = [c for c in outputs.columns if c not in KEYS]
    joined = labeled.join(outputs, on=KEYS, how="inner").drop_nulls(columns)
    recent = joined.filter(pl.col("date") >= recent_start)
    reference = joined.filter((pl.col("date") >= reference_start) & (pl.col("date") < recent_start))
    now, before = family_scores(family, recent), family_scores(family, reference)
    metric = PRIMARY[family]
    # a level measured on fewer rows than the window it judges is too noisy to call decay
    if metric not in now or metric not in before or reference.height < recent.height:
        reason = (
            f"not enough out-of-sample history to judge ({reference.height} reference rows "
            f"for {recent.height} recent ones)"
        )
        return HealthResult(
            model, family, now, before, recent.height, reference.height, False, reason
        )
    tolerance = getattr(tolerances, metric)
    if metric == "balanced_accuracy":
        worse = before[metric] - now[metric]
    elif metric == "qlike":
        worse = (now[metric] - before[metric]) / max(before[metric], 1e-12)
    else:
        worse = now[metric] - before[metric]
    decayed = worse > tolerance
    reason = (
        f"{metric} {now[metric]:.4f} recently vs {before[metric]:.4f} before "
        f"({'worse' if worse > 0 else 'better'} by {abs(worse):.4f}; tolerance {tolerance})"
    )
    return HealthResult(
        model, family, now, before, recent.height, reference.height, decayed, reason
    )
