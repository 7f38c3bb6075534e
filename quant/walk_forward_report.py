"""Scoring the walk-forward record: each family per year and overall, beside its baseline.

The primary metric is computed per symbol and averaged over the decisive group (the equities),
as promotion does; baselines are what a sceptic would use at the same refit:

- direction: the symbol's own expanding class prior (its labels known by the row's date; the
  refit's pooled prior when the record carries no per-symbol one);
  also the mean daily cross-sectional rank IC of P(Up) - P(Down) over the equities;
- volatility: the naive trailing 20-session realized vol (HAR is a family of its own here);
- regime: persistence (today's regime by the thresholds known at the refit).

Each model-minus-baseline gap carries a one-sided paired test on its per-date loss
differential (Newey–West over the overlapping 20-session targets), per year and overall.
``record_signals`` turns the record into the signals the served combiner would have made on
each day, so the backtest can be judged on years rather than one window.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.evaluation import plots
from quant.promotion import OUTPUTS, ShadowPolicy, group_metric, loss_sign, metric_weights
from quant.promotion import row_scores as _row_scores
from quant.signals import SignalRule, combine, soft_vote
from quant.walk_forward import FAMILY_OF, REGIME_LABELS, schedule

KEYS = ["symbol", "date"]
BASELINE = {
    "direction": "symbol_prior",
    "volatility": "naive_trailing_20d",
    "regime": "persistence",
}
PRIMARY = {"direction": "log_loss", "volatility": "qlike", "regime": "balanced_accuracy"}
# what each row is scored against, attached once so the record is self-contained
OUTCOMES = ["direction", "fwd_return_1", "fwd_vol_20", "trail_vol_20"]
PRIORS = {"p_down": "prior_down", "p_neutral": "prior_neutral", "p_up": "prior_up"}
SIGNAL_MODELS = {
    "direction": ("direction_xgboost", "direction_lstm"),
    "volatility": "volatility_garch",
    "regime": "regime_random_forest",
}


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


def with_outcomes(record: pl.DataFrame, panel: pl.DataFrame) -> pl.DataFrame:
    """The record plus what each row is scored against: the labels (known only after the
    row's label end) and the class prior of its refit's training rows."""
    if record.is_empty():
        return record
    priors = class_priors(panel, record["refit_date"].unique().sort().to_list()).rename(PRIORS)
    labels = panel.select(*KEYS, *OUTCOMES)
    return record.join(labels, on=KEYS, how="inner").join(priors, on="refit_date", how="left")


def _rank_ic(rows: pl.DataFrame) -> float:
    score = rows.with_columns((pl.col("p_up") - pl.col("p_down")).alias("_s"))
    daily = (
        score.group_by("date")
        .agg(pl.corr(pl.col("_s").rank(), pl.col("fwd_return_1").rank()).alias("ic"))
        .drop_nulls("ic")
        .filter(pl.col("ic").is_not_nan())
    )
    return float(daily["ic"].mean()) if daily.height else float("nan")


def _baseline_rows(family: str, rows: pl.DataFrame) -> pl.DataFrame:
    """The same rows with the baseline's outputs in the model's columns."""
    if family == "direction":
        # the symbol's own expanding prior where the record carries it (the sceptic's choice),
        # else the refit's pooled prior
        own = [f"sym_{v}" for v in PRIORS.values()]
        source = own if set(own) <= set(rows.columns) else list(PRIORS.values())
        return rows.with_columns(pl.col(v).alias(k) for k, v in zip(PRIORS, source, strict=True))
    if family == "volatility":
        return rows.with_columns(pl.col("trail_vol_20").alias("vol_forecast"))
    persistence = pl.col("regime_now").cast(pl.Int64)
    return rows.with_columns(
        *[
            pl.when(persistence == i).then(1.0).otherwise(0.0).alias(c)
            for i, c in enumerate(OUTPUTS["regime"])
        ]
    )


def _baseline_name(family: str, rows: pl.DataFrame) -> str:
    if family == "direction" and not {f"sym_{v}" for v in PRIORS.values()} <= set(rows.columns):
        return "class_prior"  # the refit's pooled prior: the record has no per-symbol one
    return BASELINE[family]


def _scored_rows(model: str, record: pl.DataFrame) -> pl.DataFrame:
    family = FAMILY_OF[model]
    rows = record.filter(pl.col("model") == model)
    if family == "regime":
        # persistence exists only where today's regime does: both are scored on those rows
        rows = rows.with_columns(
            pl.col(REGIME_LABELS["regime"]).alias("regime"),
            pl.col(REGIME_LABELS["regime_now"]).alias("regime_now"),
        ).filter(pl.col("regime").is_not_null() & pl.col("regime_now").is_not_null())
    return rows.drop_nulls(OUTPUTS[family])


def _scored(record: pl.DataFrame, panel: pl.DataFrame | None) -> pl.DataFrame:
    if "fwd_vol_20" in record.columns:
        return record
    if panel is None:
        raise ValueError("the record has no outcomes attached: pass the labeled panel")
    return with_outcomes(record, panel)


def _gap_test(family: str, rows: pl.DataFrame, base: pl.DataFrame, lag: int) -> float:
    """One-sided p-value that the model's metric beats the baseline's on the same rows."""
    from quant.promotion import paired_test

    weights = metric_weights(family, rows)
    losses = loss_sign(family) * (_row_scores(family, rows) - _row_scores(family, base))
    return paired_test(rows["date"].to_numpy(), weights * losses, 0.0, lag).p_better


def yearly_scores(
    record: pl.DataFrame,
    panel: pl.DataFrame | None = None,
    anchors: frozenset[str] | None = None,
    policy: ShadowPolicy | None = None,
) -> pl.DataFrame:
    """model | family | period (a year, or "all") | metric | model value | baseline | baseline
    value | p_value (one-sided, model better) | sessions | rank_ic (direction).

    ``record``: the walk-forward record, with outcomes attached (``with_outcomes``) or with the
    labeled ``panel`` to attach them from."""
    record = _scored(record, panel)
    policy = policy or ShadowPolicy()
    out = []
    for model in record["model"].unique().sort().to_list():
        family = FAMILY_OF[model]
        rows = _in(_scored_rows(model, record), anchors)
        if rows.is_empty():
            continue
        rows = rows.with_columns(pl.col("date").dt.year().cast(pl.String).alias("period"))
        periods = [*rows["period"].unique().sort().to_list(), "all"]
        for period in periods:
            part = rows if period == "all" else rows.filter(pl.col("period") == period)
            base = _baseline_rows(family, part)
            out.append(
                {
                    "model": model,
                    "family": family,
                    "period": period,
                    "metric": PRIMARY[family],
                    "model_value": group_metric(family, part),
                    "baseline": _baseline_name(family, part),
                    "baseline_value": group_metric(family, base),
                    "p_value": _gap_test(family, part, base, policy.lag(family)),
                    "sessions": part["date"].n_unique(),
                    "rank_ic": _rank_ic(part) if family == "direction" else None,
                }
            )
    return pl.DataFrame(out, infer_schema_length=None)


def per_block(
    record: pl.DataFrame,
    panel: pl.DataFrame | None = None,
    anchors: frozenset[str] | None = None,
) -> pl.DataFrame:
    """model | refit_date | primary metric | baseline value | rank_ic (direction): one row per
    refit block."""
    record = _scored(record, panel)
    out = []
    for model in record["model"].unique().sort().to_list():
        family = FAMILY_OF[model]
        rows = _in(_scored_rows(model, record), anchors)
        for (refit,), part in rows.group_by("refit_date", maintain_order=True):
            out.append(
                {
                    "model": model,
                    "refit_date": refit,
                    "value": group_metric(family, part),
                    "baseline_value": group_metric(family, _baseline_rows(family, part)),
                    "rank_ic": _rank_ic(part) if family == "direction" else None,
                }
            )
    return pl.DataFrame(out, infer_schema_length=None).sort("model", "refit_date")


def better(row: dict) -> bool:
    """Whether a scores row's model value beats its baseline's (point estimate)."""
    model, base = row["model_value"], row["baseline_value"]
    return model > base if row["metric"] == "balanced_accuracy" else model < base


def verdict(scores: pl.DataFrame, alpha: float = 0.05) -> str:
    """One clause per model: the whole record's metric beside its baseline and whether the
    gap is significant."""
    parts = []
    for row in scores.filter(pl.col("period") == "all").iter_rows(named=True):
        significant = row["p_value"] is not None and row["p_value"] < alpha
        state = (
            "beats it (significant)"
            if better(row) and significant
            else "better, not significant"
            if better(row)
            else "does not beat it"
        )
        parts.append(
            f"{row['model']}: {row['metric']} {row['model_value']:.4f} vs {row['baseline']} "
            f"{row['baseline_value']:.4f}, p={row['p_value']:.3f}: {state}"
        )
    return "; ".join(parts)


def record_signals(record: pl.DataFrame, rule: SignalRule | None = None) -> pl.DataFrame | None:
    """The signals the served combiner would have made each day of the record from the
    walk-forward predictions (soft vote of the direction models present, GARCH volatility, the
    forest's regime), with each row's next-session return; None when a family is missing."""
    present = set(record["model"].unique().to_list()) if not record.is_empty() else set()
    directions = [m for m in SIGNAL_MODELS["direction"] if m in present]
    if not directions or not {SIGNAL_MODELS["volatility"], SIGNAL_MODELS["regime"]} <= present:
        return None

    def rows(model: str) -> pl.DataFrame:
        return record.filter(pl.col("model") == model)

    direction = soft_vote([rows(m) for m in directions])
    signals = combine(
        direction, rows(SIGNAL_MODELS["volatility"]), rows(SIGNAL_MODELS["regime"]), rule
    )
    returns = rows(directions[0]).select(*KEYS, "fwd_return_1")
    return signals.join(returns, on=KEYS, how="inner").with_columns(
        pl.lit(",".join(directions)).alias("direction_models")
    )


def figures(scores: pl.DataFrame, blocks: pl.DataFrame) -> dict[str, bytes]:
    """Rank IC of each refit block over time and the cumulative yearly gain over the baseline
    of every model."""
    out = {}
    direction = blocks.filter(pl.col("rank_ic").is_not_null())
    if direction.height:
        dates = np.array(direction["refit_date"].unique().sort().to_list(), dtype="datetime64[D]")
        series = {}
        for (model,), part in direction.group_by("model", maintain_order=True):
            by_date = dict(
                zip(part["refit_date"].to_list(), part["rank_ic"].to_list(), strict=True)
            )
            series[model] = np.array([by_date.get(d.item(), np.nan) for d in dates], dtype=float)
        series["zero"] = np.zeros(dates.size)
        out["rank_ic_per_block"] = plots.line_png(
            dates, series, "mean daily rank IC of each refit block (equities)", "rank IC"
        )
    yearly = scores.filter(pl.col("period") != "all").sort("model", "period")
    if yearly.height:
        years = yearly["period"].unique().sort().to_list()
        gains = {}
        for (model,), part in yearly.group_by("model", maintain_order=True):
            gain = dict(
                zip(
                    part["period"].to_list(),
                    (part["baseline_value"] - part["model_value"]).to_list(),
                    strict=True,
                )
            )
            sign = -1.0 if part["metric"][0] == "balanced_accuracy" else 1.0
            gains[model] = np.cumsum([sign * gain.get(y, 0.0) for y in years])
        out["cumulative_gain"] = plots.line_png(
            np.array([int(y) for y in years]),
            gains,
            "cumulative yearly gain over the baseline (metric units; > 0 = better)",
            "cumulative gain",
        )
    return out


__all__ = [
    "class_priors",
    "figures",
    "per_block",
    "record_signals",
    "schedule",
    "verdict",
    "with_outcomes",
    "yearly_scores",
]
