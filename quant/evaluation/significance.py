"""Is the model better than its baseline, or is the difference noise?

    block_bootstrap_indices(dates, n_boot, block_sessions, seed) -> row indices of each resample
    compare_to_baseline(metric, fn, baseline_fn, dates, ...)     -> Comparison (paired bootstrap)
    diebold_mariano(loss_model, loss_baseline, dates, horizon)   -> DM test on per-date losses

Rows of a panel are not independent: names on the same date share the market's move, and
labels over the next 20 sessions overlap from one date to the next. Both procedures therefore
treat the date, not the row, as the unit, and account for serial dependence across dates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy import stats

NAN = float("nan")


def _date_codes(dates: np.ndarray) -> np.ndarray:
    """Codes 0..T-1 of the sorted unique dates, one per row."""
    _, codes = np.unique(np.asarray(dates), return_inverse=True)
    return codes.ravel()


def block_bootstrap_indices(
    dates: np.ndarray, n_boot: int, block_sessions: int, seed: int
) -> list[np.ndarray]:
    """Row indices of ``n_boot`` moving-block bootstrap resamples over the sorted unique dates.

    Each resample draws blocks of ``block_sessions`` consecutive dates (starting anywhere a full
    block fits) until it has as many dates as the sample, then takes every row of each drawn
    date: rows of one date move together (they are cross-sectionally correlated) and
    consecutive dates move together (overlapping multi-day labels are serially correlated).
    The number of rows varies between resamples when dates have different numbers of names.
    The same ``seed`` gives the same resamples.
    """
    if n_boot < 1 or block_sessions < 1:
        raise ValueError(f"n_boot and block_sessions must be >= 1, got {n_boot}, {block_sessions}")
    codes = _date_codes(dates)
    if codes.size == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(n_boot)]
    n_dates = int(codes.max()) + 1
    order = np.argsort(codes, kind="stable")  # rows grouped by date, dates in order
    counts = np.bincount(codes, minlength=n_dates)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # each date's first slot in ``order``
    block = min(block_sessions, n_dates)
    n_blocks = -(-n_dates // block)
    offsets = np.arange(block)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        starts = rng.integers(0, n_dates - block + 1, size=n_blocks)
        chosen = (starts[:, None] + offsets).ravel()[:n_dates]
        sizes = counts[chosen]
        # slot j of a chosen date d is first[d] + j: repeat each date's base, add a running j
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        out.append(order[np.repeat(first[chosen], sizes) + within])
    return out


@dataclass(frozen=True)
class Comparison:
    """A metric of the model beside a baseline's, on the same rows and the same resamples.

    ``difference`` is model - baseline; whether a positive difference is an improvement depends
    on ``higher_is_better``. The intervals are percentile bootstrap intervals and ``n_boot``
    counts the resamples in which both metrics were defined (the ones the test used).
    """

    metric: str
    model: float
    baseline: float
    difference: float
    model_ci: tuple[float, float]
    baseline_ci: tuple[float, float]
    difference_ci: tuple[float, float]
    p_value: float
    n_boot: int
    higher_is_better: bool

    def as_dict(self) -> dict[str, float | int | str | bool]:
        """Flat name -> value (intervals split into ``_low``/``_high``), ready to log."""
        out: dict[str, float | int | str | bool] = {}
        for name, value in asdict(self).items():
            if isinstance(value, tuple):
                out[f"{name}_low"], out[f"{name}_high"] = value
            else:
                out[name] = value
        return out


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    if values.size == 0:
        return (NAN, NAN)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def compare_to_baseline(
    metric: str,
    fn: Callable[[np.ndarray], float],
    baseline_fn: Callable[[np.ndarray], float],
    dates: np.ndarray,
    higher_is_better: bool,
    n_boot: int = 200,
    block_sessions: int = 20,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """Paired block-bootstrap comparison of a model's metric with a baseline's.

    ``fn`` and ``baseline_fn`` take an array of row indices and return the metric on those rows,
    so both are evaluated on the same resample each time: the test is paired, and what is shared
    (hard dates, the market's regime) cancels out of the difference. Point estimates use all
    rows; intervals are percentile intervals at ``level``. The p-value is the two-sided
    bootstrap p of "difference = 0": the resampled differences are centred on the observed one
    (an approximation of their distribution under the null), and p = 2 × the smaller share of
    them on either side of the observed difference, clipped to [1/n, 1] where n counts the
    resamples used. Resamples where a metric is NaN are dropped.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    rows = np.arange(len(dates))
    model, baseline = float(fn(rows)), float(baseline_fn(rows))
    difference = model - baseline
    resamples = block_bootstrap_indices(dates, n_boot, block_sessions, seed)
    boot = np.array([(fn(i), baseline_fn(i)) for i in resamples], dtype=float).reshape(-1, 2)
    m, b = boot[:, 0], boot[:, 1]
    both = np.isfinite(m) & np.isfinite(b)
    d = m[both] - b[both]
    if d.size == 0 or not math.isfinite(difference):
        p_value = NAN
    else:
        centred = d - difference
        below = float(np.mean(centred <= difference))
        above = float(np.mean(centred >= difference))
        p_value = float(np.clip(2.0 * min(below, above), 1.0 / d.size, 1.0))
    return Comparison(
        metric=metric,
        model=model,
        baseline=baseline,
        difference=difference,
        model_ci=_percentile_ci(m[np.isfinite(m)], level),
        baseline_ci=_percentile_ci(b[np.isfinite(b)], level),
        difference_ci=_percentile_ci(d, level),
        p_value=p_value,
        n_boot=int(d.size),
        higher_is_better=higher_is_better,
    )


def _newey_west_variance(d: np.ndarray, lags: int) -> float:
    """Long-run variance of a series: autocovariances up to ``lags`` with Bartlett weights."""
    centred = d - d.mean()
    t = centred.size
    variance = float(centred @ centred) / t
    for k in range(1, min(lags, t - 1) + 1):
        weight = 1.0 - k / (lags + 1.0)
        variance += 2.0 * weight * float(centred[k:] @ centred[:-k]) / t
    return variance


def diebold_mariano(
    loss_model: np.ndarray, loss_baseline: np.ndarray, dates: np.ndarray, horizon: int
) -> dict[str, float]:
    """Diebold–Mariano test of equal expected loss, on the per-date mean loss differential.

    The row differential loss_model - loss_baseline is averaged over the names of each date into
    a series d_t (T dates), so cross-sectional correlation is absorbed into d_t. Forecasts of
    ``horizon``-session quantities made on consecutive dates overlap, so d_t is autocorrelated
    up to lag horizon - 1: its variance is Newey–West (Bartlett) with that many lags, and the
    statistic gets the Harvey–Leybourne–Newbold (1997) small-sample correction and a Student t
    with T - 1 degrees of freedom (two-sided p). A negative statistic means the model's loss is
    lower. Rows with a non-finite differential are ignored. When d_t does not vary the test
    degenerates: statistic 0 and p 1 if the mean difference is 0 (identical losses), else ±inf
    and p 0. With fewer than 2 dates statistic and p are NaN.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    diff = np.asarray(loss_model, dtype=float).ravel() - np.asarray(loss_baseline, dtype=float)
    if diff.size != len(dates):
        raise ValueError(
            f"losses and dates must have the same length, got {diff.size}, {len(dates)}"
        )
    d = (
        pl.DataFrame({"date": pl.Series(np.asarray(dates)), "d": diff})
        .filter(pl.col("d").is_finite())
        .group_by("date")
        .agg(pl.col("d").mean())
        .sort("date")["d"]
        .to_numpy()
    )
    t = int(d.size)
    mean = float(d.mean()) if t else NAN
    if t < 2:
        return {"statistic": NAN, "p_value": NAN, "mean_difference": mean, "dates": t}
    variance = _newey_west_variance(d, horizon - 1)
    scale = float(np.abs(d).max())
    if variance <= (1e-12 * scale) ** 2:
        if mean == 0.0:
            statistic, p_value = 0.0, 1.0
        else:
            statistic, p_value = math.copysign(math.inf, mean), 0.0
        return {"statistic": statistic, "p_value": p_value, "mean_difference": mean, "dates": t}
    h = horizon
    # (T + 1 - 2h + h(h-1)/T) / T = (T - h)(T - h + 1) / T², never negative
    correction = math.sqrt((t - h) * (t - h + 1) / t**2)
    statistic = correction * mean / math.sqrt(variance / t)
    p_value = float(2.0 * stats.t.sf(abs(statistic), df=t - 1))
    return {"statistic": statistic, "p_value": p_value, "mean_difference": mean, "dates": t}
