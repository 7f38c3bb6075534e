"""Honest-scoreboard metrics for a panel of daily predictions (rows keyed by ``symbol, date``).

    daily_ic(frame, score, target)                 -> date, ic, rank_ic, names (cross-section)
    ic_summary(daily, lag)                         -> IC, ICIR, Rank IC, Rank ICIR, NW t-stats
    cross_sectional_ic(frame, score, targets)      -> one ic_summary row per forward target
    expanding_class_prior(panel)                   -> per-symbol class frequencies known by date
    brier_score(probs, y)                          -> multi-class Brier score
    reliability_table(p, hit) / _from_classes      -> calibration bins; expected_calibration_error
    mincer_zarnowitz(forecast, realized, lag)      -> HAC OLS realized = a + b forecast, Wald a=0,b=1
    adjust_pvalues(p, method)                      -> Holm / Benjamini-Hochberg, NaN passed through
    probabilistic_sharpe / expected_max_sharpe / deflated_sharpe  (Bailey & Lopez de Prado 2014)
    information_ratio / excess_sharpe              -> annualized active and excess-of-cash ratios

Each figure answers "is it real?": ICs per date (not pooled) with Newey-West t-stats for
overlapping horizons, priors that only use labels already known (no look-ahead), calibration as
well as accuracy, and Sharpe ratios deflated for the number of trials behind them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import polars as pl
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from quant.evaluation.significance import _newey_west_variance

SYMBOL, DATE = "symbol", "date"
NAN = float("nan")
EULER_GAMMA = 0.5772156649015329
MIN_SUMMARY_DATES = 3
MIN_MZ_PAIRS = 10
RELATIVE_FLOOR = 1e-12  # a spread this small next to the values is rounding, not variation
CLASS_NAMES_3 = ("down", "neutral", "up")
MZ_FIELDS = ("alpha", "beta", "alpha_se", "beta_se", "r2", "wald_stat", "wald_p", "n")
PVALUE_METHODS = ("holm", "fdr_bh")


# --------------------------------------------------------------------------- information coefficient


def daily_ic(
    frame: pl.DataFrame,
    score: str,
    target: str,
    symbols: Collection[str] | None = None,
    min_names: int = 5,
) -> pl.DataFrame:
    """Per-date cross-sectional Pearson IC and Spearman rank IC of ``score`` against ``target``.

    A pooled IC mixes the market's level into the answer; the per-date IC asks whether the score
    ranks the names correctly on the same day. Rows are filtered to ``symbols`` when given (so a
    universe can be scored on its own), rows with a null or NaN score or target are dropped, and
    so are dates with fewer than ``min_names`` valid names and dates where a correlation is
    undefined (a constant score or target that day). Columns: date, ic, rank_ic, names (sorted
    by date).
    """
    if min_names < 2:
        raise ValueError(f"min_names must be >= 2, got {min_names}")
    data = frame
    if symbols is not None:
        data = data.filter(pl.col(SYMBOL).is_in(list(symbols)))
    data = data.select(
        pl.col(DATE),
        pl.col(score).cast(pl.Float64).fill_nan(None).alias("_s"),
        pl.col(target).cast(pl.Float64).fill_nan(None).alias("_t"),
    ).drop_nulls()
    return (
        data.group_by(DATE)
        .agg(
            pl.corr("_s", "_t", method="pearson").alias("ic"),
            pl.corr("_s", "_t", method="spearman").alias("rank_ic"),
            pl.len().alias("names"),
        )
        .filter(
            (pl.col("names") >= min_names)
            & pl.col("ic").is_finite()
            & pl.col("rank_ic").is_finite()
        )
        .select(DATE, "ic", "rank_ic", pl.col("names").cast(pl.Int64))
        .sort(DATE)
    )


def _varies(values: np.ndarray, std: float) -> bool:
    """Whether a series varies by more than rounding: std above 1e-12 of its largest |value|."""
    return std > RELATIVE_FLOOR * float(np.abs(values).max())


def _nw_t(values: np.ndarray, lag: int) -> float:
    """Newey-West t-stat of the mean: mean / sqrt(S / T), S the Bartlett long-run variance."""
    variance = _newey_west_variance(values, lag)
    if not variance > 0.0:
        return NAN
    return float(values.mean() / math.sqrt(variance / values.size))


def _mean_ir_t(values: np.ndarray, lag: int) -> tuple[float, float, float]:
    """(mean, mean / std with ddof=1, Newey-West t) of a series; NaN where undefined."""
    if values.size < MIN_SUMMARY_DATES:
        return NAN, NAN, NAN
    mean = float(values.mean())
    std = float(values.std(ddof=1))
    if not _varies(values, std):
        return mean, NAN, NAN
    return mean, mean / std, _nw_t(values, lag)


def ic_summary(daily: pl.DataFrame, lag: int) -> dict[str, float | int]:
    """qlib-style summary of a daily IC series, with Newey-West t-stats for overlap.

    ``IC`` and ``Rank IC`` are the mean daily ICs, ``ICIR`` / ``Rank ICIR`` the mean over the
    standard deviation (ddof=1) of the daily values. ``IC t (NW)`` / ``Rank IC t (NW)`` are
    mean / sqrt(S / T), where S is the Newey-West long-run variance with ``lag`` lags and
    Bartlett weights 1 - k / (lag + 1), autocovariances divided by T (so with lag 0 S is the
    ddof=0 variance and the t-stat is mean / (std_ddof0 / sqrt(T))). ICs of h-session forward
    returns overlap on consecutive dates, which is why the plain t-stat overstates significance
    there: pass lag = h - 1. ``dates`` counts the finite daily values. Statistics are NaN with
    fewer than 3 dates or when the series does not vary.
    """
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    out: dict[str, float | int] = {}
    dates = 0
    for column, name in (("ic", "IC"), ("rank_ic", "Rank IC")):
        values = daily.get_column(column).cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
        mean, ir, t = _mean_ir_t(values, lag)
        out[name], out[f"{name}IR"], out[f"{name} t (NW)"] = mean, ir, t
        dates = max(dates, int(values.size))
    out["dates"] = dates
    return {
        key: out[key]
        for key in ("IC", "ICIR", "Rank IC", "Rank ICIR", "IC t (NW)", "Rank IC t (NW)", "dates")
    }


def cross_sectional_ic(
    frame: pl.DataFrame,
    score: str,
    targets: Mapping[str, int],
    symbols: Collection[str] | None = None,
    min_names: int = 5,
) -> pl.DataFrame:
    """One row per forward target: ``target``, ``horizon`` and the :func:`ic_summary` fields.

    ``targets`` maps a column to its horizon in sessions (e.g. ``{"fwd_return_5": 5}``); the
    Newey-West lag is horizon - 1 because h-session returns of consecutive dates share h - 1
    sessions. Lets one score be judged at every horizon in one table.
    """
    rows = []
    for target, horizon in targets.items():
        if horizon < 1:
            raise ValueError(f"horizon of {target!r} must be >= 1, got {horizon}")
        daily = daily_ic(frame, score, target, symbols=symbols, min_names=min_names)
        rows.append({"target": target, "horizon": int(horizon), **ic_summary(daily, horizon - 1)})
    return pl.DataFrame(rows)


# --------------------------------------------------------------------------- class priors


def _prior_names(n_classes: int) -> list[str]:
    if n_classes == len(CLASS_NAMES_3):
        return [f"prior_{name}" for name in CLASS_NAMES_3]
    return [f"prior_{k}" for k in range(n_classes)]


def expanding_class_prior(
    panel: pl.DataFrame,
    label: str = "direction",
    known_at: str = "label_end",
    n_classes: int = 3,
    smoothing: float = 1.0,
) -> pl.DataFrame:
    """Per symbol and date, the class frequencies of that symbol's labels already known then.

    The honest base rate a classifier must beat: for the row (symbol, date) it counts the
    symbol's own labels whose ``known_at`` is <= date (a label is only known once the sessions it
    reads are over), Laplace-smoothed to (count_k + smoothing) / (n + n_classes * smoothing), so
    it is uniform before any label is known (NaN then, with smoothing 0). Rows with a null label or null ``known_at`` add
    nothing. Labels must be the integers 0..n_classes-1. Computed without a per-row loop:
    cumulative class counts per symbol in ``known_at`` order, then a backward ``join_asof`` by
    symbol (exact matches allowed). Returns symbol, date, prior_down, prior_neutral, prior_up for
    3 classes (else prior_0..prior_{n-1}), one row per row of ``panel``, in its order.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    counts = [f"_c{k}" for k in range(n_classes)]
    known = panel.select(
        SYMBOL,
        pl.col(known_at).alias("_known"),
        pl.col(label).cast(pl.Float64).fill_nan(None).alias("_label"),
    ).drop_nulls()
    whole = pl.col("_label").is_between(0, n_classes - 1) & (
        pl.col("_label").floor() == pl.col("_label")
    )
    bad = known.filter(~whole).height
    if bad:
        raise ValueError(f"{bad} labels in {label!r} are outside 0..{n_classes - 1}")
    events = (
        known.group_by(SYMBOL, "_known")
        .agg((pl.col("_label") == k).sum().cast(pl.Int64).alias(c) for k, c in enumerate(counts))
        .sort(SYMBOL, "_known")
        .with_columns(pl.col(c).cum_sum().over(SYMBOL) for c in counts)
        .with_columns(pl.col("_known").cast(panel.schema[DATE]))
        .sort("_known")
    )
    rows = panel.select(SYMBOL, DATE).with_row_index("_row")
    joined = (
        rows.sort(DATE)
        .join_asof(
            events,
            left_on=DATE,
            right_on="_known",
            by=SYMBOL,
            strategy="backward",
            allow_exact_matches=True,
            check_sortedness=False,
        )
        .sort("_row")
        .with_columns(pl.col(c).fill_null(0) for c in counts)
    )
    total = pl.sum_horizontal(counts) + n_classes * smoothing
    return joined.select(
        SYMBOL,
        DATE,
        *(
            ((pl.col(c) + smoothing) / total).alias(name)
            for c, name in zip(counts, _prior_names(n_classes), strict=True)
        ),
    )


# --------------------------------------------------------------------------- probability scores


def _probs_and_labels(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float)
    labels = np.asarray(y).ravel()
    if p.ndim != 2 or p.shape[0] != labels.size:
        raise ValueError(
            f"probs must be (n, classes) with n = len(y), got {p.shape}, {labels.size}"
        )
    return p, labels


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(float)


def brier_score(probs: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score: mean over rows of sum_k (p_k - 1[y = k])^2 (0 is perfect).

    A proper score of the whole probability vector, so it rewards calibration and sharpness
    together; a uniform forecast over K classes scores 1 - 1/K. NaN for no rows.
    """
    p, labels = _probs_and_labels(probs, y)
    if labels.size == 0:
        return NAN
    return float(np.mean(np.sum((p - _one_hot(labels, p.shape[1])) ** 2, axis=1)))


def reliability_table(p: np.ndarray, hit: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """Reliability diagram data: equal-width bins of ``p`` on [0, 1] with the observed hit rate.

    A calibrated forecast has hit_rate close to p_mean in every bin. Columns: bin (0..bins-1, the
    last bin closed at 1), p_mean, hit_rate, count; empty bins are omitted and non-finite pairs
    ignored. Probabilities outside [0, 1] are an error.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    prob = np.asarray(p, dtype=float).ravel()
    outcome = np.asarray(hit, dtype=float).ravel()
    if prob.size != outcome.size:
        raise ValueError(f"p and hit must have the same length, got {prob.size}, {outcome.size}")
    ok = np.isfinite(prob) & np.isfinite(outcome)
    prob, outcome = prob[ok], outcome[ok]
    if prob.size and (prob.min() < 0.0 or prob.max() > 1.0):
        raise ValueError("probabilities must lie in [0, 1]")
    index = np.minimum(np.floor(prob * bins), bins - 1).astype(np.int64)
    return (
        pl.DataFrame({"bin": index, "p": prob, "hit": outcome})
        .group_by("bin")
        .agg(
            pl.col("p").mean().alias("p_mean"),
            pl.col("hit").mean().alias("hit_rate"),
            pl.len().cast(pl.Int64).alias("count"),
        )
        .sort("bin")
    )


def reliability_from_classes(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """:func:`reliability_table` pooled one-vs-rest over classes: each row adds (p_k, y == k)
    for every class k, so one table judges the calibration of the whole probability vector."""
    p, labels = _probs_and_labels(probs, y)
    return reliability_table(p.ravel(), _one_hot(labels, p.shape[1]).ravel(), bins=bins)


def expected_calibration_error(table: pl.DataFrame) -> float:
    """Count-weighted mean |hit_rate - p_mean| over the bins of a reliability table (0 is
    perfectly calibrated); NaN for an empty table."""
    count = table.get_column("count").cast(pl.Float64).to_numpy()
    if count.sum() == 0:
        return NAN
    gap = np.abs(table.get_column("hit_rate").to_numpy() - table.get_column("p_mean").to_numpy())
    return float(np.sum(count * gap) / count.sum())


# --------------------------------------------------------------------------- Mincer-Zarnowitz


def _nan_mz(n: int) -> dict[str, float | int]:
    out: dict[str, float | int] = dict.fromkeys(MZ_FIELDS, NAN)
    out["n"] = n
    return out


def _wald(diff: np.ndarray, cov: np.ndarray) -> float:
    """diff' cov^-1 diff; a (numerically) singular covariance gives 0 for no difference, else inf."""
    try:
        return float(diff @ np.linalg.solve(cov, diff))
    except np.linalg.LinAlgError:
        return 0.0 if np.allclose(diff, 0.0) else math.inf


def mincer_zarnowitz(
    forecast: np.ndarray, realized: np.ndarray, lag: int
) -> dict[str, float | int]:
    """Mincer-Zarnowitz regression realized = alpha + beta * forecast, with HAC standard errors.

    An unbiased forecast has alpha 0 and beta 1; ``wald_stat`` / ``wald_p`` test both at once
    (chi-square, 2 df) with the Newey-West covariance (``maxlags=lag``, Bartlett kernel, via
    statsmodels), because errors of overlapping multi-session forecasts are autocorrelated (use
    lag = horizon - 1). Also alpha_se, beta_se, r2 and n (pairs used). Non-finite pairs are
    dropped; fewer than 10 pairs or a constant forecast give NaNs.
    """
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    f = np.asarray(forecast, dtype=float).ravel()
    r = np.asarray(realized, dtype=float).ravel()
    if f.size != r.size:
        raise ValueError(f"forecast and realized must have the same length, got {f.size}, {r.size}")
    ok = np.isfinite(f) & np.isfinite(r)
    f, r = f[ok], r[ok]
    n = int(f.size)
    if n < MIN_MZ_PAIRS or np.ptp(f) == 0.0:
        return _nan_mz(n)
    fit = sm.OLS(r, sm.add_constant(f, has_constant="add")).fit(
        cov_type="HAC", cov_kwds={"maxlags": lag}
    )
    params = np.asarray(fit.params, dtype=float)
    cov = np.asarray(fit.cov_params(), dtype=float)
    wald_stat = _wald(params - np.array([0.0, 1.0]), cov)
    return {
        "alpha": float(params[0]),
        "beta": float(params[1]),
        "alpha_se": float(np.sqrt(cov[0, 0])),
        "beta_se": float(np.sqrt(cov[1, 1])),
        "r2": float(fit.rsquared),
        "wald_stat": wald_stat,
        "wald_p": float(stats.chi2.sf(wald_stat, df=2)),
        "n": n,
    }


def mincer_zarnowitz_by_symbol(
    frame: pl.DataFrame, forecast: str, realized: str, lag: int
) -> pl.DataFrame:
    """:func:`mincer_zarnowitz` per symbol (rows in date order): one row per symbol with symbol
    and the MZ fields, so a forecast that is unbiased overall but biased for some names shows."""
    rows = []
    for (symbol,), part in frame.sort(SYMBOL, DATE).group_by(SYMBOL, maintain_order=True):
        fit = mincer_zarnowitz(
            part.get_column(forecast).cast(pl.Float64).fill_null(NAN).to_numpy(),
            part.get_column(realized).cast(pl.Float64).fill_null(NAN).to_numpy(),
            lag,
        )
        rows.append({SYMBOL: symbol, **fit})
    schema = {SYMBOL: pl.String, **dict.fromkeys(MZ_FIELDS, pl.Float64), "n": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- multiple testing


def adjust_pvalues(p: Sequence[float], method: str = "holm") -> np.ndarray:
    """p-values adjusted for multiple testing with statsmodels ``multipletests``.

    ``holm`` controls the family-wise error rate, ``fdr_bh`` the false discovery rate
    (Benjamini-Hochberg). NaN entries (tests that could not be run) stay NaN and are left out of
    the family, so they neither count as tests nor change the others' adjustment.
    """
    if method not in PVALUE_METHODS:
        raise ValueError(f"method must be one of {PVALUE_METHODS}, got {method!r}")
    values = np.asarray(p, dtype=float).ravel()
    out = np.full(values.shape, NAN)
    ok = ~np.isnan(values)
    if ok.any():
        out[ok] = multipletests(values[ok], method=method)[1]
    return out


# --------------------------------------------------------------------------- Sharpe ratios


def probabilistic_sharpe(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probabilistic Sharpe ratio: the probability that the true Sharpe exceeds ``sr_benchmark``.

    PSR = Phi((sr - sr*) sqrt(n - 1) / sqrt(1 - skew sr + (kurtosis - 1) / 4 sr^2)), with
    per-period (non-annualized) Sharpe ratios and raw kurtosis (normal = 3): negative skew and
    fat tails widen the Sharpe's sampling error. NaN for fewer than 2 observations or a
    non-positive variance term.
    """
    term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if n_obs < 2 or not term > 0.0:
        return NAN
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(term)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """Expected maximum Sharpe of ``n_trials`` zero-skill trials whose Sharpes have variance V.

    sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))), g the Euler-Mascheroni constant:
    the benchmark the best of N attempts clears by luck alone. One trial involves no selection
    and gives 0. Per-period units: V is the variance of the trials' non-annualized Sharpes.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(sr_variance) * z)


def deflated_sharpe(returns: np.ndarray, n_trials: int, sr_variance: float) -> dict[str, float]:
    """Deflated Sharpe ratio of a per-period return series selected as the best of ``n_trials``.

    DSR = PSR against the expected maximum Sharpe of the trials (:func:`expected_max_sharpe`),
    so it corrects for both selection and non-normal returns. ``sr_variance`` is the variance of
    the trials' per-period Sharpes. Returns sr (mean / std ddof=1), skew and raw kurtosis (plain
    moment estimators), expected_max_sr, dsr and n_obs (finite returns used); NaN statistics
    with fewer than 3 returns or constant returns.
    """
    r = np.asarray(returns, dtype=float).ravel()
    r = r[np.isfinite(r)]
    n = int(r.size)
    benchmark = expected_max_sharpe(sr_variance, n_trials)
    out = {"sr": NAN, "skew": NAN, "kurtosis": NAN, "expected_max_sr": benchmark, "dsr": NAN}
    std = float(r.std(ddof=1)) if n >= 3 else 0.0
    if n >= 3 and _varies(r, std):
        sr = float(r.mean()) / std
        skew = float(stats.skew(r))
        kurt = float(stats.kurtosis(r, fisher=False))
        dsr = probabilistic_sharpe(sr, benchmark, n, skew, kurt)
        out.update(sr=sr, skew=skew, kurtosis=kurt, dsr=dsr)
    return {**out, "n_obs": n}


def _annualized_ratio(values: np.ndarray, periods_per_year: int) -> float:
    x = values[np.isfinite(values)]
    if x.size < 2:
        return NAN
    std = float(x.std(ddof=1))
    if not _varies(x, std):
        return NAN
    return float(x.mean() / std * math.sqrt(periods_per_year))


def information_ratio(
    returns: np.ndarray, benchmark: np.ndarray, periods_per_year: int = 252
) -> float:
    """Annualized information ratio: mean active return (returns - benchmark) over its standard
    deviation (ddof=1), times sqrt(periods_per_year). The skill in beating the benchmark per unit
    of tracking error; NaN for fewer than 2 finite pairs or a constant active return."""
    r = np.asarray(returns, dtype=float).ravel()
    b = np.asarray(benchmark, dtype=float).ravel()
    if r.size != b.size:
        raise ValueError(f"returns and benchmark must have the same length, got {r.size}, {b.size}")
    return _annualized_ratio(r - b, periods_per_year)


def excess_sharpe(
    returns: np.ndarray, cash_rate_annual: float = 0.0, periods_per_year: int = 252
) -> float:
    """Annualized Sharpe of returns in excess of cash (per-period rate = annual / periods):
    mean / std (ddof=1) times sqrt(periods_per_year). Holding cash is free, so only the excess
    over it is a reward for risk; NaN for fewer than 2 returns or constant returns."""
    r = np.asarray(returns, dtype=float).ravel()
    return _annualized_ratio(r - cash_rate_annual / periods_per_year, periods_per_year)
