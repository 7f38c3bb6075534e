"""Scores of class probabilities and of ranking signals.

classification_metrics(y_true, proba)          -> accuracy, balanced accuracy, macro F1, log loss
information_coefficient(score, forward_return) -> pooled Pearson and Spearman IC
daily_rank_ic(dates, score, forward_return)    -> mean cross-sectional rank IC per date, t-stat
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

PROBA_FLOOR = 1e-7
MIN_PAIRS = 3
MIN_NAMES_PER_DATE = 5
NAN = float("nan")


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 and log loss of class probabilities.

    ``y_true`` holds class codes 0..k-1 and ``proba`` is (n, k) with rows summing to 1; the
    predicted class is the argmax. Balanced accuracy and macro F1 are reported beside accuracy
    because the classes are imbalanced (a majority-class forecaster scores well on accuracy
    alone). Probabilities are clipped to [1e-7, 1] and renormalized so that one confident
    mistake costs a large but finite log loss; ``labels=range(k)`` keeps the loss defined when
    a class is absent from ``y_true``. Empty input gives NaN everywhere.
    """
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] != y.size:
        raise ValueError(f"proba must be (n, k) with n = {y.size} rows, got shape {p.shape}")
    if y.size == 0:
        return {"accuracy": NAN, "balanced_accuracy": NAN, "macro_f1": NAN, "log_loss": NAN}
    k = p.shape[1]
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"class codes must lie in 0..{k - 1}, got {y.min()}..{y.max()}")
    labels = list(range(k))
    pred = p.argmax(axis=1)
    clipped = np.clip(p, PROBA_FLOOR, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    # balanced_accuracy_score averages recall over the classes present in y_true; predicting an
    # absent class is legitimate here, so its warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y, pred)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y, clipped, labels=labels)),
    }


def _finite_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if x.size != y.size:
        raise ValueError(f"inputs must have the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    return float(np.corrcoef(x, y)[0, 1])


def information_coefficient(score: np.ndarray, forward_return: np.ndarray) -> dict[str, float]:
    """Pooled information coefficient of a signal: ``ic`` (Pearson) and ``rank_ic`` (Spearman).

    The IC measures whether a higher score goes with a higher forward return, which is what a
    trading signal needs even when its class accuracy is unremarkable; the rank version is
    robust to fat-tailed returns. Non-finite pairs are ignored; fewer than 3 pairs or a constant
    input give NaN (the correlation is undefined, not an error).
    """
    x, y = _finite_pairs(score, forward_return)
    ic = _pearson(x, y)
    rank_ic = NAN if math.isnan(ic) else _pearson(rankdata(x), rankdata(y))
    return {"ic": ic, "rank_ic": rank_ic}


def daily_rank_ic(
    dates: np.ndarray, score: np.ndarray, forward_return: np.ndarray
) -> dict[str, float]:
    """Mean cross-sectional rank IC: Spearman correlation of score and return within each date.

    A pooled IC mixes the time series with the cross-section (a signal that only tracks the
    market's level scores well pooled); the per-date IC asks whether the signal ranks names
    correctly on the same day. Only dates with at least 5 names (finite pairs) and a
    non-constant score and return count. Returns ``mean``, ``std``, ``t_stat`` (mean / (std /
    sqrt(dates)), treating the dates as independent; NaN when the IC does not vary) and
    ``dates`` (how many dates counted).
    """
    x, y = np.asarray(score, dtype=float).ravel(), np.asarray(forward_return, dtype=float).ravel()
    if not len(dates) == x.size == y.size:
        raise ValueError(
            f"dates, score and forward_return must have the same length, "
            f"got {len(dates)}, {x.size}, {y.size}"
        )
    frame = pl.DataFrame({"date": pl.Series(np.asarray(dates)), "score": x, "ret": y}).filter(
        pl.col("score").is_finite() & pl.col("ret").is_finite()
    )
    per_date = (
        frame.with_columns(
            pl.col("score").rank("average").over("date").alias("score_rank"),
            pl.col("ret").rank("average").over("date").alias("ret_rank"),
        )
        .group_by("date")
        .agg(
            pl.len().alias("names"),
            pl.col("score_rank").std().alias("score_sd"),
            pl.col("ret_rank").std().alias("ret_sd"),
            pl.corr("score_rank", "ret_rank").alias("ic"),
        )
        .filter(
            (pl.col("names") >= MIN_NAMES_PER_DATE)
            & (pl.col("score_sd") > 0)
            & (pl.col("ret_sd") > 0)
            & pl.col("ic").is_finite()
        )
    )
    ic = per_date["ic"].to_numpy()
    n = int(ic.size)
    if n == 0:
        return {"mean": NAN, "std": NAN, "t_stat": NAN, "dates": 0}
    mean = float(ic.mean())
    std = float(ic.std(ddof=1)) if n > 1 else NAN
    t_stat = mean / (std / math.sqrt(n)) if n > 1 and std > 0 else NAN
    return {"mean": mean, "std": std, "t_stat": t_stat, "dates": n}
