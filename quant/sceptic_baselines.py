"""The baselines a sceptic would pick, attached to every row of the walk-forward record.

A model earns its place only by beating the simplest forecast that uses the same information
per symbol. Each baseline here is built from what was known at the row's decision:

- direction: the symbol's own expanding class prior (its labels known by the row's date), its
  majority class, and the previous session's direction;
- volatility: the symbol's naive trailing 20-session vol (already on the record), a HAR fitted
  on the symbol alone at each refit (returns: daily, weekly, monthly realized vol), and a HAR
  whose monthly term is the high-low range (Parkinson) estimator; GARCH's own forecast is the
  baseline the learned volatility models must beat;
- regime: persistence (on the record) and the symbol's own expanding regime frequencies.

A pooled baseline fitted across instruments lets a model "win" by learning which symbol it is
looking at (^VIX's vol level is six times an equity's); per-symbol baselines close that door.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.evaluation.scoreboard import expanding_class_prior
from quant.models.har import REGRESSORS as HAR_REGRESSORS
from quant.models.har import har_regressors

KEYS = ["symbol", "date"]
DIRECTION_PRIOR = ["sym_prior_down", "sym_prior_neutral", "sym_prior_up"]
REGIME_PRIOR = ["sym_prior_bear", "sym_prior_sideways", "sym_prior_bull", "sym_prior_highvol"]
RANGE_REGRESSORS = ("rv_1", "rv_5", "parkinson_vol_20")
HAR_FLOOR = 1e-4
BASELINE_COLUMNS = [
    "fwd_return_5",
    "fwd_return_20",
    "prev_direction",
    *DIRECTION_PRIOR,
    *REGIME_PRIOR,
    "har_symbol",
    "har_range_symbol",
]


def forward_log_return(horizon: int) -> pl.Expr:
    """Log return from the row's close to the close ``horizon`` sessions later (per symbol)."""
    step = (1.0 + pl.col("fwd_return_1")).log()
    return step.rolling_sum(horizon, min_samples=horizon).shift(-(horizon - 1)).over("symbol")


def _priors(panel: pl.DataFrame, label: str, n_classes: int, names: list[str]) -> pl.DataFrame:
    known = panel.select("symbol", "date", label, "label_end").drop_nulls()
    priors = expanding_class_prior(known, label=label, known_at="label_end", n_classes=n_classes)
    found = [c for c in priors.columns if c not in KEYS]
    return priors.rename(dict(zip(found, names, strict=True)))


def _fit_per_symbol(design: np.ndarray, target: np.ndarray, train: np.ndarray) -> np.ndarray | None:
    use = train & np.isfinite(design).all(axis=1) & np.isfinite(target)
    if use.sum() <= design.shape[1] * 10:  # too few rows for a trustworthy OLS
        return None
    beta, *_ = np.linalg.lstsq(design[use], target[use], rcond=None)
    return beta


def per_symbol_har(
    panel: pl.DataFrame, rows: pl.DataFrame, regressors: tuple[str, ...], name: str
) -> pl.DataFrame:
    """symbol | date | refit_date | ``name``: for each row of ``rows`` (symbol, date,
    refit_date), the forecast of a HAR fitted on that symbol's own panel rows whose label ended
    by the refit date (purged exactly as the models are)."""
    data = har_regressors(panel.select("symbol", "date", "log_ret_1", *_extra(regressors)))
    data = data.join(panel.select(*KEYS, "fwd_vol_20", "label_end"), on=KEYS, how="left")
    wanted = rows.select("symbol", "date", "refit_date").unique()
    out = []
    for (symbol,), history in data.group_by("symbol"):
        history = history.sort("date")
        design = np.column_stack(
            [np.ones(history.height)]
            + [history[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in regressors]
        )
        target = history["fwd_vol_20"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        label_end = history["label_end"].to_numpy()
        dates = history["date"].to_numpy()
        mine = wanted.filter(pl.col("symbol") == symbol)
        for (refit,), block in mine.group_by("refit_date"):
            beta = _fit_per_symbol(design, target, label_end <= np.datetime64(refit))
            if beta is None:
                continue
            at = np.searchsorted(dates, block["date"].to_numpy())
            at = np.clip(at, 0, dates.size - 1)
            hit = dates[at] == block["date"].to_numpy()
            values = np.where(hit, np.maximum(design[at] @ beta, HAR_FLOOR), np.nan)
            out.append(block.with_columns(pl.Series(name, values).fill_nan(None)))
    if not out:
        return rows.select("symbol", "date", "refit_date").with_columns(
            pl.lit(None, pl.Float64).alias(name)
        )
    return pl.concat(out)


def _extra(regressors: tuple[str, ...]) -> list[str]:
    return [c for c in regressors if c not in HAR_REGRESSORS]


def with_sceptic_baselines(record: pl.DataFrame, panel: pl.DataFrame) -> pl.DataFrame:
    """The record (outcomes attached) plus every baseline column in ``BASELINE_COLUMNS``."""
    if record.is_empty():
        return record
    panel = panel.sort(KEYS)
    forward = panel.select(
        *KEYS,
        forward_log_return(5).alias("fwd_return_5"),
        pl.col("fwd_return_20"),
        pl.col("prev_direction"),
    )
    direction = _priors(panel, "direction", 3, DIRECTION_PRIOR)
    regime = _priors(panel, "regime", 4, REGIME_PRIOR)
    keyed = record.select("symbol", "date", "refit_date")
    har = per_symbol_har(panel, keyed, HAR_REGRESSORS, "har_symbol")
    har_range = per_symbol_har(panel, keyed, RANGE_REGRESSORS, "har_range_symbol")
    on = ["symbol", "date", "refit_date"]
    present = [c for c in BASELINE_COLUMNS if c in record.columns]
    return (
        record.drop(present)
        .join(forward, on=KEYS, how="left")
        .join(direction, on=KEYS, how="left")
        .join(regime, on=KEYS, how="left")
        .join(har, on=on, how="left")
        .join(har_range, on=on, how="left")
    )
