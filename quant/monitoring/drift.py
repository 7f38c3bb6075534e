"""Has the feature distribution moved since training? Data drift between two panels (no Dagster).

    psi(reference, current, bins)                          -> population stability index
    feature_drift(reference, current, features, thresholds) -> DriftReport (pooled over symbols)
    drift_by_symbol(reference, current, features, thresholds) -> per-symbol PSI summary
    current_window(frame, sessions, end)                    -> the last N sessions per symbol
    reference_drift_shares(reference, features, window, step) -> drift share of each reference
                                                               window against the rest
    calibrated_thresholds(shares, quantile)                 -> (retrain, severe) share levels

The reference is what the model was trained on; the current frame is what it is now scoring
(typically ``current_window`` of the latest features). Drift is judged per feature, pooled over
all symbols, with two complementary measures:

- PSI (population stability index) measures *how much* the distribution moved, on the
  reference's decile bins; the usual reading is < 0.1 stable, 0.1-0.2 moderate, >= 0.2 large.
  It has no notion of sample size, so on a small window it is large by chance alone (its null
  expectation is roughly (bins - 1) / current rows).
- The two-sample Kolmogorov-Smirnov test measures *whether* the move is more than sampling
  noise. On tens of thousands of rows it rejects for differences far too small to matter, and
  across ~100 features some reject by chance, hence the Benjamini-Hochberg correction.

A feature is flagged only when both agree: a large move that is also statistically real.

How large a drift share is alarming depends on the features: market-wide ones (volatility,
rates, breadth) change regime every few quarters, so even windows of the training period itself
drift against the rest of it. ``reference_drift_shares`` measures that null distribution and
``calibrated_thresholds`` turns it into thresholds in place of a constant.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

SYMBOL = "symbol"
DATE = "date"
NAN = float("nan")
SHARE_FLOOR = 1e-4  # empty bins would make ln(current / reference) infinite

REPORT_SCHEMA = {
    "feature": pl.String,
    "psi": pl.Float64,
    "ks_statistic": pl.Float64,
    "ks_p_value": pl.Float64,
    "ks_p_adjusted": pl.Float64,
    "reference_rows": pl.Int64,
    "current_rows": pl.Int64,
    "reference_mean": pl.Float64,
    "current_mean": pl.Float64,
    "drifted": pl.Boolean,
}

BY_SYMBOL_SCHEMA = {
    SYMBOL: pl.String,
    "features_tested": pl.Int64,
    "drifted_share": pl.Float64,
    "max_psi": pl.Float64,
    "most_drifted": pl.String,
}


def _finite(values: np.ndarray) -> np.ndarray:
    """The finite values of ``values`` as a flat float64 array (NaN, ±inf and nulls dropped)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def _inner_edges(reference: np.ndarray, bins: int) -> np.ndarray | None:
    """Interior bin edges: the reference's unique quantiles at 1/bins .. (bins-1)/bins.

    The outer edges are implicitly -inf and +inf, so current values beyond the reference's range
    fall in the end bins instead of being dropped. ``None`` when the reference is constant
    (a single bin, PSI undefined). Tied quantiles merge bins, so discrete features get fewer.
    """
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        return None
    return edges[1:-1]


def _bin_index(values: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Bin of each value: 0 .. len(inner), bins closed on the left like ``np.histogram``."""
    return np.searchsorted(inner, values, side="right")


def _psi_from_shares(reference_share: np.ndarray, current_share: np.ndarray) -> np.ndarray:
    """sum((c - r) * ln(c / r)) over the last axis, both shares floored at ``SHARE_FLOOR``."""
    r = np.maximum(reference_share, SHARE_FLOOR)
    c = np.maximum(current_share, SHARE_FLOOR)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` on the reference's bins.

    Bins are the reference's quantiles (deciles by default), so each holds ~1/bins of the
    reference and the index weighs every part of its distribution alike; the outer bins are open
    so values outside the reference's range count (in the end bins). Shares are floored at 1e-4
    before the log so an empty bin gives a large but finite contribution. Non-finite values are
    ignored. NaN when either side has fewer than ``2 * bins`` finite values or the reference is
    constant. Not symmetric: the reference defines the bins.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    ref = _finite(reference)
    cur = _finite(current)
    if ref.size < 2 * bins or cur.size < 2 * bins:
        return NAN
    inner = _inner_edges(ref, bins)
    if inner is None:
        return NAN
    k = inner.size + 1
    ref_share = np.bincount(_bin_index(ref, inner), minlength=k) / ref.size
    cur_share = np.bincount(_bin_index(cur, inner), minlength=k) / cur.size
    return float(_psi_from_shares(ref_share, cur_share))


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted, and how much data a verdict needs.

    ``psi``: minimum PSI (0.2 = the conventional "large shift"); ``ks_alpha``: level of the
    Benjamini-Hochberg-adjusted KS p-value; ``min_rows``: finite values required on each side
    (per symbol in ``drift_by_symbol``); ``bins``: PSI quantile bins.
    """

    psi: float = 0.2
    ks_alpha: float = 0.05
    min_rows: int = 50
    bins: int = 10

    def __post_init__(self) -> None:
        if self.psi <= 0:
            raise ValueError(f"psi threshold must be positive, got {self.psi}")
        if not 0 < self.ks_alpha < 1:
            raise ValueError(f"ks_alpha must be in (0, 1), got {self.ks_alpha}")
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")
        if self.min_rows < 2 * self.bins:
            raise ValueError(
                f"min_rows must be >= 2 * bins ({2 * self.bins}) for PSI to be defined, "
                f"got {self.min_rows}"
            )


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift between a reference and a current panel.

    ``table`` has one row per requested feature (columns in ``REPORT_SCHEMA``); features without
    enough data on either side have null statistics, ``drifted`` False, and are left out of
    ``features_tested``. ``drift_share`` = ``drifted_count / features_tested`` (NaN if none
    was tested).
    """

    table: pl.DataFrame
    drift_share: float
    drifted_count: int
    features_tested: int

    def top(self, n: int = 10) -> pl.DataFrame:
        """The ``n`` features with the largest PSI, descending (untested features last)."""
        return self.table.sort("psi", descending=True, nulls_last=True).head(n)


def _check_columns(frame: pl.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks columns {missing}")


def _column(frame: pl.DataFrame, feature: str) -> np.ndarray:
    """A feature column's finite values as float64 (nulls become NaN, then dropped)."""
    return _finite(frame.get_column(feature).cast(pl.Float64).to_numpy())


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def feature_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    features: list[str],
    thresholds: DriftThresholds = DriftThresholds(),
) -> DriftReport:
    """PSI and a two-sample KS test per feature, pooled over all rows (all symbols) of each frame.

    A feature is DRIFTED when ``psi >= thresholds.psi`` AND its KS p-value, Benjamini-Hochberg
    adjusted across the features tested, is ``< thresholds.ks_alpha``. Either test alone is
    misleading: on tens of thousands of rows KS rejects for every feature (tiny, harmless shifts
    are "significant"), while on a small window PSI is large from sampling noise alone. Requiring
    both keeps shifts that are large *and* real. A feature whose PSI is undefined (constant
    reference) is tested by KS but cannot be flagged.

    Features with fewer than ``thresholds.min_rows`` finite values on either side get null
    statistics, ``drifted`` False, and do not count in ``features_tested``.
    """
    _check_columns(reference, features, "reference")
    _check_columns(current, features, "current")
    rows = []
    for feature in features:
        ref = _column(reference, feature)
        cur = _column(current, feature)
        row = {
            "feature": feature,
            "psi": None,
            "ks_statistic": None,
            "ks_p_value": None,
            "reference_rows": int(ref.size),
            "current_rows": int(cur.size),
            "reference_mean": _mean(ref),
            "current_mean": _mean(cur),
        }
        if min(ref.size, cur.size) >= thresholds.min_rows:
            value = psi(ref, cur, thresholds.bins)
            ks = stats.ks_2samp(ref, cur)
            row["psi"] = None if math.isnan(value) else value
            row["ks_statistic"] = float(ks.statistic)
            row["ks_p_value"] = float(ks.pvalue)
        rows.append(row)

    tested = [i for i, r in enumerate(rows) if r["ks_p_value"] is not None]
    adjusted: list[float | None] = [None] * len(rows)
    if tested:
        p_values = np.array([rows[i]["ks_p_value"] for i in tested])
        for i, p in zip(tested, stats.false_discovery_control(p_values, method="bh"), strict=True):
            adjusted[i] = float(p)
    for row, p_adj in zip(rows, adjusted, strict=True):
        row["ks_p_adjusted"] = p_adj
        row["drifted"] = (
            row["psi"] is not None
            and p_adj is not None
            and row["psi"] >= thresholds.psi
            and p_adj < thresholds.ks_alpha
        )

    table = pl.DataFrame(rows, schema=REPORT_SCHEMA, orient="row")
    drifted_count = int(table.get_column("drifted").sum())
    return DriftReport(
        table=table,
        drift_share=drifted_count / len(tested) if tested else NAN,
        drifted_count=drifted_count,
        features_tested=len(tested),
    )


def drift_by_symbol(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    features: list[str],
    thresholds: DriftThresholds = DriftThresholds(),
) -> pl.DataFrame:
    """Which names moved: PSI of each symbol's current rows against the pooled reference.

    For every feature the reference's bins are computed once (pooled over all symbols, as in
    ``feature_drift``) and every symbol's current rows are binned in one pass. A (symbol, feature)
    pair is tested when the symbol has at least ``thresholds.min_rows`` finite current values and
    the pooled reference has as many (and is not constant). Only PSI is used: per-symbol windows
    are a few dozen rows, too few for a test across hundreds of names to mean much.

    Returns one row per symbol of ``current``: ``features_tested``, ``drifted_share`` (share of
    tested features with PSI >= ``thresholds.psi``), ``max_psi`` and ``most_drifted`` (the
    feature with the largest PSI); null when nothing was tested. Sorted by ``drifted_share`` then
    ``max_psi``, descending.
    """
    _check_columns(reference, features, "reference")
    _check_columns(current, [SYMBOL, *features], "current")
    if current.height == 0:
        return pl.DataFrame(schema=BY_SYMBOL_SCHEMA)
    symbols, codes = np.unique(
        current.get_column(SYMBOL).cast(pl.String).to_numpy(), return_inverse=True
    )
    codes = codes.ravel()
    n_symbols = symbols.size
    psis = np.full((n_symbols, len(features)), NAN)
    for j, feature in enumerate(features):
        ref = _column(reference, feature)
        if ref.size < thresholds.min_rows:
            continue
        inner = _inner_edges(ref, thresholds.bins)
        if inner is None:
            continue
        k = inner.size + 1
        ref_share = np.bincount(_bin_index(ref, inner), minlength=k) / ref.size
        values = current.get_column(feature).cast(pl.Float64).to_numpy()
        ok = np.isfinite(values)
        cells = codes[ok] * k + _bin_index(values[ok], inner)
        counts = np.bincount(cells, minlength=n_symbols * k).reshape(n_symbols, k)
        sizes = counts.sum(axis=1)
        shares = counts / np.maximum(sizes, 1)[:, None]
        psis[:, j] = np.where(
            sizes >= thresholds.min_rows, _psi_from_shares(ref_share, shares), NAN
        )

    tested = np.isfinite(psis)
    n_tested = tested.sum(axis=1)
    any_tested = n_tested > 0
    filled = np.where(tested, psis, -np.inf)
    best = filled.argmax(axis=1)
    share = np.where(
        any_tested, (psis >= thresholds.psi).sum(axis=1) / np.maximum(n_tested, 1), NAN
    )
    out = pl.DataFrame(
        {
            SYMBOL: symbols.tolist(),
            "features_tested": n_tested.astype(np.int64),
            "drifted_share": share,
            "max_psi": np.where(any_tested, filled.max(axis=1), NAN),
            "most_drifted": [
                features[b] if t else None for b, t in zip(best, any_tested, strict=True)
            ],
        },
        schema=BY_SYMBOL_SCHEMA,
    )
    return out.with_columns(pl.col("drifted_share", "max_psi").fill_nan(None)).sort(
        ["drifted_share", "max_psi", SYMBOL],
        descending=[True, True, False],
        nulls_last=True,
    )


def current_window(
    frame: pl.DataFrame, sessions: int = 63, end: datetime.date | None = None
) -> pl.DataFrame:
    """Per symbol, its last ``sessions`` rows dated on or before ``end`` (all dates if None).

    The window is counted in each symbol's own rows (sessions it traded), so a name that missed
    days reaches further back; a name with fewer rows contributes what it has. Sorted by symbol,
    date. 63 sessions is about a quarter.
    """
    if sessions < 1:
        raise ValueError(f"sessions must be >= 1, got {sessions}")
    _check_columns(frame, [SYMBOL, DATE], "input")
    if end is not None:
        frame = frame.filter(pl.col(DATE) <= end)
    return frame.sort(SYMBOL, DATE).filter(
        pl.col(DATE).rank("ordinal", descending=True).over(SYMBOL) <= sessions
    )


# --- the drift share's own distribution inside the reference -----------------------------------

SHARES_SCHEMA = {
    "window_start": pl.Date,
    "window_end": pl.Date,
    "drift_share": pl.Float64,
    "drifted_features": pl.Int64,
}
KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp(method="auto") is exact up to this many per side
# Beyond n * D^2 = 10.4 the asymptotic KS p-value 2 * smirnov(n, D) is below 2 exp(-2 n D^2)
# ~ 2e-9 (Massart's bound); it is computed only if that bound could change a decision.
KS_BOUND_NDD = 10.4
MIN_THRESHOLD = 1e-6  # a calibrated threshold never reaches 0: a share of 0 is never drift


def _window_starts(n_dates: int, window: int, step: int, max_windows: int | None) -> np.ndarray:
    """First date code of each complete window; evenly spaced down to ``max_windows``."""
    starts = np.arange(0, max(n_dates - window + 1, 0), step, dtype=np.int64)
    if max_windows is not None and starts.size > max_windows:
        keep = np.unique(np.round(np.linspace(0, starts.size - 1, max_windows)).astype(np.int64))
        starts = starts[keep]
    return starts


@dataclass(frozen=True)
class _WindowStats:
    """Per (window, feature): PSI, KS statistic, the KS ``en`` (effective sample size) and the
    KS p-value where scipy's exact small-sample path applies (NaN: asymptotic or untested)."""

    psi: np.ndarray
    ks_d: np.ndarray
    ks_en: np.ndarray
    ks_p_exact: np.ndarray


def _rest_quantiles(
    xs: np.ndarray, rest_before: np.ndarray, n_rest: int, q: np.ndarray
) -> np.ndarray:
    """``np.quantile(rest, q)`` (method "linear"), the rest being ``xs`` minus a window's rows.

    ``xs`` are all of the feature's values, sorted, and ``rest_before[j]`` counts the rest's
    values before the window's j-th row in that order, so the rest's value of rank r sits at
    position r + #{j: rest_before[j] <= r}. The interpolation repeats numpy's arithmetic
    (``_lerp``) so the bin edges, hence the PSI, are bit-identical to ``psi()`` on the rest.
    """
    virtual = (n_rest - 1) * q
    below = np.where(virtual >= n_rest - 1, n_rest - 1, np.floor(virtual))
    above = np.minimum(below + 1, n_rest - 1)
    ranks = np.concatenate([below, above]).astype(np.int64)
    at = ranks + np.searchsorted(rest_before, ranks, side="right")
    a, b = xs[at[: q.size]], xs[at[q.size :]]
    gamma = virtual - below
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of a small float array without NaN (sort, drop repeats): the same values."""
    ordered = np.sort(values)
    return ordered[np.append(True, ordered[1:] != ordered[:-1])]


def _feature_windows(
    values: np.ndarray,
    day: np.ndarray,
    starts: np.ndarray,
    window: int,
    thresholds: DriftThresholds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PSI and KS of every window against the rest of the reference, for one feature.

    ``values``: the feature's finite reference values in date order; ``day``: their date codes
    (non-decreasing). They are sorted once into ``xs``. A window's rows and the rest partition
    ``xs``, so both empirical CDFs (KS) and both bin counts (PSI) are counts of window rows
    before a position of ``xs``: binary searches in the window's sorted positions, never a pass
    over the whole reference per window. The KS statistic is read only where it can peak: at
    the end of each group of tied values that holds window rows or precedes one (elsewhere the
    rest's CDF gains and the window's stays put), and at the end. Returns PSI, KS D, KS ``en``
    and the exact-path KS p-value per window; NaN where ``feature_drift`` leaves the feature
    untested (or its PSI undefined, or the p-value asymptotic).
    """
    n_windows, n = starts.size, values.size
    psi_out, d_out, en_out, p_out = (np.full(n_windows, NAN) for _ in range(4))
    if n == 0:
        return psi_out, d_out, en_out, p_out
    order = np.argsort(values, kind="stable")
    xs = values[order]
    by_day = np.empty(n, dtype=np.int64)
    by_day[order] = np.arange(n)  # position in xs of each value, the values in date order
    new_value = np.append(True, xs[1:] != xs[:-1])
    group = np.cumsum(new_value) - 1  # tie group of each position
    group_end = np.flatnonzero(np.append(new_value[1:], True))  # CDFs are read here
    first = np.searchsorted(day, np.concatenate([starts, starts + window]))
    q = np.linspace(0.0, 1.0, thresholds.bins + 1)
    for w in range(n_windows):
        at = np.sort(by_day[first[w] : first[n_windows + w]])  # the window's positions in xs
        n_cur = at.size
        n_rest = n - n_cur
        if min(n_cur, n_rest) < thresholds.min_rows:
            continue
        held = group[at]
        held = held[np.append(True, held[1:] != held[:-1])]
        peaks = np.sort(np.concatenate([held - 1, held, [group_end.size - 1]]))
        peaks = peaks[np.append(peaks[1:] != peaks[:-1], True) & (peaks >= 0)]
        ends = group_end[peaks]
        cur_cdf = np.searchsorted(at, ends, side="right")
        gap = cur_cdf / n_cur - (ends + 1 - cur_cdf) / n_rest
        d_out[w] = np.abs(gap).max()
        big, small = float(max(n_rest, n_cur)), float(min(n_rest, n_cur))
        en_out[w] = np.round(big * small / (big + small))
        if big <= KS_EXACT_MAX_N:  # scipy's exact path: small samples, cheap to rerun
            inside = np.zeros(n, dtype=bool)
            inside[at] = True
            p_out[w] = stats.ks_2samp(xs[~inside], xs[inside]).pvalue

        rest_before = at - np.arange(n_cur)
        edges = _sorted_unique(_rest_quantiles(xs, rest_before, n_rest, q))
        if edges.size < 2:
            continue  # constant rest: PSI undefined, KS still counts
        below = np.searchsorted(xs, edges[1:-1], side="left")  # values below each inner edge
        cur_below = np.searchsorted(at, below, side="left")
        rest_counts = np.diff(np.concatenate([[0], below - cur_below, [n_rest]]))
        cur_counts = np.diff(np.concatenate([[0], cur_below, [n_cur]]))
        psi_out[w] = _psi_from_shares(rest_counts / n_rest, cur_counts / n_cur)
    return psi_out, d_out, en_out, p_out


def _bh_drifted(p: np.ndarray, psi_large: np.ndarray, ks_alpha: float) -> np.ndarray:
    """``feature_drift``'s rule on one window's tested features."""
    return psi_large & (stats.false_discovery_control(p, method="bh") < ks_alpha)


def _drift_decisions(stats_: _WindowStats, thresholds: DriftThresholds) -> np.ndarray:
    """Drifted flags (windows x features) from PSI and KS, BH-adjusted within each window.

    The asymptotic p-value (``kstwo.sf``, what ``ks_2samp`` uses beyond 10,000 rows a side) costs
    ~1 ms where n·D² is moderate to large, and most drifting windows have many such features.
    Where n·D² >= ``KS_BOUND_NDD`` it lies in [0, 2 exp(-2 n D²)]; BH decisions can only grow
    as p-values fall, so a window is decided from the two ends of those intervals when they
    agree, and only otherwise are its p-values computed. The decisions are those of computing
    every p-value.
    """
    tested = np.isfinite(stats_.ks_d)
    exact = np.isfinite(stats_.ks_p_exact)
    with np.errstate(invalid="ignore"):
        ndd = stats_.ks_en * stats_.ks_d**2
        bounded = tested & ~exact & (ndd >= KS_BOUND_NDD)
        psi_large = stats_.psi >= thresholds.psi
    p = stats_.ks_p_exact.copy()
    compute = tested & ~exact & ~bounded
    p[compute] = np.clip(stats.kstwo.sf(stats_.ks_d[compute], stats_.ks_en[compute]), 0.0, 1.0)
    upper = np.where(bounded, np.minimum(2.0 * np.exp(-2.0 * ndd), 1.0), NAN)
    drifted = np.zeros(tested.shape, dtype=bool)
    for w in np.flatnonzero(tested.any(axis=1)):
        cols = np.flatnonzero(tested[w])
        loose = bounded[w, cols]
        low = np.where(loose, 0.0, p[w, cols])
        high = np.where(loose, upper[w, cols], p[w, cols])
        flags = _bh_drifted(low, psi_large[w, cols], thresholds.ks_alpha)
        if loose.any() and not np.array_equal(
            flags, _bh_drifted(high, psi_large[w, cols], thresholds.ks_alpha)
        ):
            sharp = p[w, cols]
            sharp[loose] = np.clip(
                stats.kstwo.sf(stats_.ks_d[w, cols[loose]], stats_.ks_en[w, cols[loose]]), 0, 1
            )
            flags = _bh_drifted(sharp, psi_large[w, cols], thresholds.ks_alpha)
        drifted[w, cols] = flags
    return drifted


def reference_drift_shares(
    reference: pl.DataFrame,
    features: list[str],
    window: int = 63,
    step: int | None = None,
    thresholds: DriftThresholds = DriftThresholds(),
    max_windows: int | None = None,
) -> pl.DataFrame:
    """The drift share's null distribution: how much the reference drifts against itself.

    The reference period is cut into consecutive windows of ``window`` sessions (its sorted
    unique dates; a window starts every ``step`` sessions, default ``window``: non-overlapping;
    the last incomplete window is dropped). Each window, all symbols' rows on its dates, is
    judged by exactly the rule of ``feature_drift`` against the rest of the reference (the
    reference without that window's dates): its ``drift_share`` is what the monitor would have
    reported for a quarter the model was trained on. Market-wide features (volatility, rates,
    breadth) move between regimes, so these shares are far from 0; their distribution, not a
    constant, is what a current window's share should be compared with (``calibrated_thresholds``).

    Windows here are blocks of sessions of the pooled panel, while ``current_window`` takes each
    symbol's own last rows; the two coincide when the symbols share a calendar. ``max_windows``
    keeps that many evenly spaced windows (useful with a small ``step``); None keeps them all.

    Returns one row per window: ``window_start``, ``window_end`` (its first and last date),
    ``drift_share`` (NaN when no feature could be tested) and ``drifted_features``. The same
    values as calling ``feature_drift(rest, window_rows, ...)`` window by window, but each
    feature's reference is sorted once and every window is read off it by binary searches:
    ~1.3 s for 24 windows x 105 features of the 26-symbol sample (~13 s for the loop; see
    ``benchmarks/bench_drift_calibration.py``). Time grows with the number of windows (~50 ms
    each there), so with a small ``step`` cap them with ``max_windows`` (100 windows ≈ 4 s).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    step = window if step is None else step
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if max_windows is not None and max_windows < 1:
        raise ValueError(f"max_windows must be >= 1, got {max_windows}")
    _check_columns(reference, [DATE, *features], "reference")
    reference = reference.sort(DATE, maintain_order=True)
    dates, day = np.unique(reference.get_column(DATE).to_numpy(), return_inverse=True)
    day = day.ravel()
    starts = _window_starts(dates.size, window, step, max_windows)
    if starts.size == 0:
        return pl.DataFrame(schema=SHARES_SCHEMA)

    columns = []
    for feature in features:
        values = reference.get_column(feature).cast(pl.Float64).to_numpy()
        finite = np.isfinite(values)
        columns.append(_feature_windows(values[finite], day[finite], starts, window, thresholds))
    stacked = _WindowStats(*(np.column_stack([c[i] for c in columns]) for i in range(4)))
    drifted = _drift_decisions(stacked, thresholds)
    n_tested = np.isfinite(stacked.ks_d).sum(axis=1)
    n_drifted = drifted.sum(axis=1)
    return pl.DataFrame(
        {
            "window_start": dates[starts],
            "window_end": dates[starts + window - 1],
            "drift_share": np.where(n_tested > 0, n_drifted / np.maximum(n_tested, 1), NAN),
            "drifted_features": n_drifted.astype(np.int64),
        },
        schema=SHARES_SCHEMA,
    )


def calibrated_thresholds(
    shares: np.ndarray,
    quantile: float = 0.95,
    severe_quantile: float = 1.0,
    severe_floor_gap: float = 0.1,
) -> tuple[float, float]:
    """(retrain, severe) drift-share thresholds read off the reference's own drift shares.

    ``shares``: the null distribution, e.g. ``reference_drift_shares(...)["drift_share"]``
    (non-finite values are ignored). retrain = its ``quantile`` quantile; severe = the larger of
    its ``severe_quantile`` quantile (default: the largest share the reference ever showed) and
    retrain + ``severe_floor_gap``, so the two levels stay apart when the null is narrow. Both
    are clipped to (0, 1] (at least ``MIN_THRESHOLD``: a share of 0 is never drift).

    How to read it: with the defaults, a current window whose drift share reaches the retrain
    threshold is less usual than 95 % of the reference's own windows of the same length: the
    inputs moved more than they routinely did during the period the model learned from. Severe
    means more than the reference ever moved (or well beyond the retrain level). It says nothing
    about whether the model got worse; that is the decay test's job. With ~25 windows the 95 %
    quantile sits between the two largest shares, so it is itself uncertain by a few hundredths.
    Fewer than 4 finite shares raise ValueError: too little history to calibrate.
    """
    for name, value in (("quantile", quantile), ("severe_quantile", severe_quantile)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must lie in (0, 1], got {value}")
    if severe_floor_gap < 0:
        raise ValueError(f"severe_floor_gap must be >= 0, got {severe_floor_gap}")
    values = _finite(shares)
    if values.size < 4:
        raise ValueError(
            f"{values.size} reference window(s) with a drift share: too little history to "
            "calibrate thresholds (need >= 4; use a longer reference or a smaller window/step)"
        )
    retrain = float(np.quantile(values, quantile))
    severe = max(float(np.quantile(values, severe_quantile)), retrain + severe_floor_gap)
    return (
        float(np.clip(retrain, MIN_THRESHOLD, 1.0)),
        float(np.clip(severe, MIN_THRESHOLD, 1.0)),
    )
