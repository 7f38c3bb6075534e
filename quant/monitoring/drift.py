"""Has the feature distribution moved since training? Data drift between two panels (no Dagster).

    psi(reference, current, bins)                          -> population stability index
    feature_drift(reference, current, features, thresholds) -> DriftReport (pooled over symbols)
    drift_by_symbol(reference, current, features, thresholds) -> per-symbol PSI summary
    current_window(frame, sessions, end)                    -> the last N sessions per symbol

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
