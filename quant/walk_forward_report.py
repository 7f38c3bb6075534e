"""Scoring the walk-forward record: each family per year and overall, beside its baseline.

The primary metric is computed per symbol and averaged over the decisive group (the equities),
as promotion does; baselines are what a sceptic would use at the same refit:

- direction: the class prior of the refit's own training rows (labels ending by its cutoff);
  also the mean daily cross-sectional rank IC of P(Up) - P(Down) over the equities;
- volatility: the naive trailing 20-session realized vol (HAR is a family of its own here);
- regime: persistence (today's regime by the thresholds known at the refit).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.promotion import OUTPUTS, group_metric
from quant.walk_forward import FAMILY_OF, REGIME_LABELS, schedule

KEYS = ["symbol", "date"]
BASELINE = {"direction": "class_prior", "volatility": "naive_trailing_20d", "regime": "persistence"}


def _in(rows: pl.DataFrame, symbols: frozenset[str] | None) -> pl.DataFrame:
    if not symbols:
        return rows
    chosen = rows.filter(pl.col("symbol").is_in(sorted(symbols)))
    return chosen if not chosen.is_empty() else rows


def class_priors(panel: pl.DataFrame, refit_dates: list) -> pl.DataFrame:
    """refit_date | p_down, p_neutral, p_up: class frequencies of the rows each refit could fit
    on (Laplace-smoothed)."""
    rows = []
    for refit in refit_dates:
        y = panel.filter(pl.col("label_end") <= refit)["direction"].drop_nulls().to_numpy()
        counts = np.bincount(y.astype(int), minlength=3) + 1.0
        p = counts / counts.sum()
        rows.append({"refit_date": refit, "p_down": p[0], "p_neutral": p[1], "p_up": p[2]})
    return pl.DataFrame(rows)


def _rank_ic(rows: pl.DataFrame) -> float:
    score = rows.with_columns((pl.col("p_up") - pl.col("p_down")).alias("_s"))
    daily = (
        score.group_by("date")
        .agg(pl.corr(pl.col("_s").rank(), pl.col("fwd_return_1").rank()).alias("ic"))
        .drop_nulls("ic")
        .filter(pl.col("ic").is_not_nan())
    )
    return float(daily["ic"].mean()) if daily.height else float("nan")


def _baseline_rows(family: str, rows: pl.DataFrame, priors: pl.DataFrame) -> pl.DataFrame:
    if family == "direction":
        return rows.drop(OUTPUTS["direction"]).join(priors, on="refit_date", how="left")
    if family == "volatility":
        return rows.with_columns(pl.col("trail_vol_20").alias("vol_forecast"))
    persistence = pl.col("regime_now").cast(pl.Int64)
    return rows.with_columns(
        *[
            pl.when(persistence == i).then(1.0).otherwise(0.0).alias(c)
            for i, c in enumerate(OUTPUTS["regime"])
        ]
    ).filter(pl.col("regime_now").is_not_null())


def _scored_rows(model: str, record: pl.DataFrame, panel: pl.DataFrame) -> pl.DataFrame:
    family = FAMILY_OF[model]
    mine = record.filter(pl.col("model") == model)
    labels = panel.select(*KEYS, "direction", "fwd_return_1", "fwd_vol_20", "trail_vol_20")
    rows = mine.join(labels, on=KEYS, how="inner")
    if family == "regime":
        rows = rows.with_columns(
            pl.col(REGIME_LABELS["regime"]).alias("regime"),
            pl.col(REGIME_LABELS["regime_now"]).alias("regime_now"),
        ).filter(pl.col("regime").is_not_null())
    return rows.drop_nulls(OUTPUTS[family])


def yearly_scores(
    record: pl.DataFrame, panel: pl.DataFrame, anchors: frozenset[str] | None = None
) -> pl.DataFrame:
    """model | family | period (a year, or "all") | metric | model value | baseline | baseline
    value | sessions | rank_ic (direction)."""
    refits = record["refit_date"].unique().sort().to_list()
    priors = class_priors(panel, refits)
    out = []
    for model in record["model"].unique().sort().to_list():
        family = FAMILY_OF[model]
        rows = _in(_scored_rows(model, record, panel), anchors)
        if rows.is_empty():
            continue
        rows = rows.with_columns(pl.col("date").dt.year().cast(pl.String).alias("period"))
        periods = [*rows["period"].unique().sort().to_list(), "all"]
        for period in periods:
            part = rows if period == "all" else rows.filter(pl.col("period") == period)
            base = _baseline_rows(family, part, priors)
            metric = {"direction": "log_loss", "volatility": "qlike"}.get(
                family, "balanced_accuracy"
            )
            entry = {
                "model": model,
                "family": family,
                "period": period,
                "metric": metric,
                "model_value": group_metric(family, part),
                "baseline": BASELINE[family],
                "baseline_value": group_metric(family, base) if base.height else float("nan"),
                "sessions": part["date"].n_unique(),
                "rank_ic": _rank_ic(part) if family == "direction" else None,
            }
            out.append(entry)
    return pl.DataFrame(out, infer_schema_length=None)


def per_block(record: pl.DataFrame, panel: pl.DataFrame, anchors: frozenset[str] | None = None):
    """model | refit_date | primary metric | rank_ic (direction): one row per refit block."""
    out = []
    for model in record["model"].unique().sort().to_list():
        family = FAMILY_OF[model]
        rows = _in(_scored_rows(model, record, panel), anchors)
        for (refit,), part in rows.group_by("refit_date", maintain_order=True):
            out.append(
                {
                    "model": model,
                    "refit_date": refit,
                    "value": group_metric(family, part),
                    "rank_ic": _rank_ic(part) if family == "direction" else None,
                }
            )
    return pl.DataFrame(out, infer_schema_length=None).sort("model", "refit_date")


__all__ = ["class_priors", "per_block", "schedule", "yearly_scores"]
