"""The honest scoreboard of the walk-forward record: skill, not pooling.

Every score is computed per symbol and averaged within a group of like instruments (the
equities decide; ^VIX and the other indices are reported on their own, never pooled with
them), beside the baselines of ``quant.sceptic_baselines``. Direction is led by the per-date
cross-sectional rank IC over the equities at 1, 5 and 20 sessions (qlib's IC, ICIR, Rank IC,
Rank ICIR, with Newey–West t over the overlapping horizons). Probabilistic models get the
Brier score and a reliability diagram. Volatility forecasts get a Mincer–Zarnowitz regression
per symbol (HAC errors, Wald test of α = 0, β = 1).

Every p-value of the board (one-sided: the model is better) is one family of tests: Holm and
Benjamini–Hochberg adjusted values stand beside the raw ones, and a verdict rests on Holm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats

from quant.evaluation import plots, qlike_loss
from quant.evaluation.scoreboard import (
    adjust_pvalues,
    brier_score,
    cross_sectional_ic,
    daily_ic,
    expected_calibration_error,
    mincer_zarnowitz_by_symbol,
    reliability_from_classes,
)
from quant.promotion import OUTPUTS, metric_weights, paired_test
from quant.sceptic_baselines import DIRECTION_PRIOR, REGIME_PRIOR
from quant.walk_forward import FAMILY_OF, REGIME_LABELS

EPS = 1e-7
HORIZON = 20  # sessions of the volatility and regime targets
IC_TARGETS = {"fwd_return_1": 1, "fwd_return_5": 5, "fwd_return_20": 20}
DECISIVE = "equities"
ALPHA = 0.05
# the learned volatility models must beat GARCH, the classical model, as well as the naive ones
GARCH = "volatility_garch"


@dataclass
class Scoreboard:
    """The board's tables and pictures."""

    scores: pl.DataFrame
    ic: pl.DataFrame
    mincer_zarnowitz: pl.DataFrame
    calibration: pl.DataFrame
    figures: dict[str, bytes] = field(default_factory=dict)


# per-row losses (lower is better) of each metric, from outputs and labels
def _log_loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(y.size), y])


def _brier(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    onehot = (y[:, None] == np.arange(p.shape[1])[None, :]).astype(float)
    return np.sum((p - onehot) ** 2, axis=1)


def _error(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (p.argmax(axis=1) != y).astype(float)


LOSSES = {"log_loss": _log_loss, "brier": _brier, "accuracy": _error}


def _onehot(index: np.ndarray, k: int) -> np.ndarray:
    return (index[:, None] == np.arange(k)[None, :]).astype(float)


def _direction_baselines(rows: pl.DataFrame) -> dict[str, np.ndarray]:
    prior = rows.select(DIRECTION_PRIOR).to_numpy().astype(float)
    pooled = rows.select("prior_down", "prior_neutral", "prior_up").to_numpy().astype(float)
    previous = rows["prev_direction"].fill_null(1).to_numpy().astype(int)
    return {
        "symbol_prior": prior,
        "pooled_prior": pooled,
        "symbol_majority": _onehot(prior.argmax(axis=1), 3),
        "previous_direction": _onehot(previous, 3),
    }


DIRECTION_TESTS = [
    ("log_loss", "symbol_prior"),
    ("log_loss", "pooled_prior"),
    ("brier", "symbol_prior"),
    ("accuracy", "symbol_majority"),
    ("accuracy", "previous_direction"),
]


def _weights(rows: pl.DataFrame) -> np.ndarray:
    """1 / (symbols × the symbol's rows): the metric per symbol, averaged over symbols."""
    return metric_weights("direction", rows)


def _compare(
    rows: pl.DataFrame, loss_model: np.ndarray, loss_base: np.ndarray, lag: int
) -> tuple[float, float, float]:
    w = _weights(rows)
    test = paired_test(rows["date"].to_numpy(), w * (loss_model - loss_base), 0.0, lag)
    return float(np.sum(w * loss_model)), float(np.sum(w * loss_base)), test.p_better


def _row(model, family, group, metric, baseline, value, base, p, rows) -> dict:
    return {
        "model": model,
        "family": family,
        "group": group,
        "metric": metric,
        "baseline": baseline,
        "model_value": value,
        "baseline_value": base,
        "p_raw": p,
        "symbols": rows["symbol"].n_unique(),
        "sessions": rows["date"].n_unique(),
    }


def _accuracy_value(metric: str, value: float) -> float:
    return 1.0 - value if metric == "accuracy" else value


def _direction_rows(model: str, group: str, rows: pl.DataFrame) -> list[dict]:
    rows = rows.drop_nulls([*OUTPUTS["direction"], "direction", *DIRECTION_PRIOR])
    if rows.is_empty():
        return []
    y = rows["direction"].to_numpy().astype(int)
    p = rows.select(OUTPUTS["direction"]).to_numpy().astype(float)
    bases = _direction_baselines(rows)
    out = []
    for metric, baseline in DIRECTION_TESTS:
        loss = LOSSES[metric]
        value, base, p_value = _compare(rows, loss(p, y), loss(bases[baseline], y), 0)
        out.append(
            _row(
                model,
                "direction",
                group,
                metric,
                baseline,
                _accuracy_value(metric, value),
                _accuracy_value(metric, base),
                p_value,
                rows,
            )
        )
    return out


def _volatility_rows(
    model: str, group: str, rows: pl.DataFrame, garch: pl.DataFrame | None
) -> list[dict]:
    rows = rows.drop_nulls(["vol_forecast", "fwd_vol_20", "trail_vol_20"])
    if garch is not None and model != GARCH:
        rows = rows.join(garch, on=["symbol", "date"], how="left")
    out = []
    baselines = {
        "naive_trailing_20d": "trail_vol_20",
        "symbol_har": "har_symbol",
        "symbol_har_range": "har_range_symbol",
    }
    if "garch_vol" in rows.columns:
        baselines["garch"] = "garch_vol"
    for baseline, column in baselines.items():
        part = rows.drop_nulls(column)
        if part.is_empty():
            continue
        realized = part["fwd_vol_20"].to_numpy()
        loss_model = qlike_loss(realized, part["vol_forecast"].to_numpy())
        loss_base = qlike_loss(realized, part[column].to_numpy())
        value, base, p_value = _compare(part, loss_model, loss_base, HORIZON - 1)
        out.append(_row(model, "volatility", group, "qlike", baseline, value, base, p_value, part))
        if baseline == "naive_trailing_20d":
            # the same rows pooled (no per-symbol averaging), still within the group only
            out.append(
                _row(
                    model,
                    "volatility",
                    group,
                    "qlike_pooled_rows",
                    baseline,
                    float(loss_model.mean()),
                    float(loss_base.mean()),
                    math.nan,
                    part,
                )
            )
    return out


def _regime_rows(model: str, group: str, rows: pl.DataFrame) -> list[dict]:
    rows = rows.with_columns(
        pl.col(REGIME_LABELS["regime"]).alias("regime"),
        pl.col(REGIME_LABELS["regime_now"]).alias("regime_now"),
    ).drop_nulls([*OUTPUTS["regime"], "regime", "regime_now", *REGIME_PRIOR])
    if rows.is_empty():
        return []
    y = rows["regime"].to_numpy().astype(int)
    p = rows.select(OUTPUTS["regime"]).to_numpy().astype(float)
    prior = rows.select(REGIME_PRIOR).to_numpy().astype(float)
    persistence = _onehot(rows["regime_now"].to_numpy().astype(int), 4)
    out = []
    w = metric_weights("regime", rows)
    dates = rows["date"].to_numpy()
    correct_m = (p.argmax(axis=1) == y).astype(float)
    correct_b = (persistence.argmax(axis=1) == y).astype(float)
    test = paired_test(dates, -w * (correct_m - correct_b), 0.0, HORIZON - 1)
    out.append(
        _row(
            model,
            "regime",
            group,
            "balanced_accuracy",
            "persistence",
            float(np.sum(w * correct_m)),
            float(np.sum(w * correct_b)),
            test.p_better,
            rows,
        )
    )
    for metric in ("log_loss", "brier"):
        loss = LOSSES[metric]
        value, base, p_value = _compare(rows, loss(p, y), loss(prior, y), HORIZON - 1)
        out.append(_row(model, "regime", group, metric, "symbol_prior", value, base, p_value, rows))
    return out


def _in(rows: pl.DataFrame, symbols: frozenset[str]) -> pl.DataFrame:
    return rows.filter(pl.col("symbol").is_in(sorted(symbols)))


def score_table(record: pl.DataFrame, groups: Mapping[str, frozenset[str]]) -> pl.DataFrame:
    """model | family | group | metric | baseline | model_value | baseline_value | p_raw |
    p_holm | p_bh | verdict | symbols | sessions: every model against every sceptic's
    baseline, per group of like instruments."""
    garch = None
    if GARCH in record["model"].unique().to_list():
        garch = record.filter(pl.col("model") == GARCH).select(
            "symbol", "date", pl.col("vol_forecast").alias("garch_vol")
        )
    out: list[dict] = []
    for model in sorted(record["model"].unique().to_list()):
        family = FAMILY_OF[model]
        mine = record.filter(pl.col("model") == model)
        for group, symbols in groups.items():
            rows = _in(mine, symbols)
            if rows.is_empty():
                continue
            if family == "direction":
                out += _direction_rows(model, group, rows)
            elif family == "volatility":
                out += _volatility_rows(model, group, rows, garch)
            else:
                out += _regime_rows(model, group, rows)
    table = pl.DataFrame(out, infer_schema_length=None)
    return table if table.is_empty() else adjusted(table)


def min_names(equities: frozenset[str]) -> int:
    """Names a date needs for its cross-sectional IC: 5, or every equity of a smaller
    universe (at least 3: a rank correlation of two names is always ±1)."""
    return max(3, min(5, len(equities)))


def _ic_rows(record: pl.DataFrame, equities: frozenset[str]) -> pl.DataFrame:
    frames = []
    for model in sorted(record["model"].unique().to_list()):
        if FAMILY_OF[model] != "direction":
            continue
        rows = _in(record.filter(pl.col("model") == model), equities).with_columns(
            (pl.col("p_up") - pl.col("p_down")).alias("score")
        )
        table = cross_sectional_ic(
            rows, "score", IC_TARGETS, symbols=equities, min_names=min_names(equities)
        )
        frames.append(table.with_columns(pl.lit(model).alias("model")))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def ic_table(record: pl.DataFrame, equities: frozenset[str]) -> pl.DataFrame:
    """model | target | horizon | IC | ICIR | Rank IC | Rank ICIR | IC t (NW) | Rank IC t (NW) |
    dates | p_raw (one-sided, Rank IC > 0): the direction headline."""
    table = _ic_rows(record, equities)
    if table.is_empty():
        return table
    t = table["Rank IC t (NW)"].to_numpy().astype(float)
    dates = table["dates"].to_numpy().astype(float)
    p = np.where(np.isfinite(t), stats.t.sf(t, df=np.maximum(dates - 1, 1)), np.nan)
    return table.with_columns(pl.Series("p_raw", p)).select("model", pl.exclude("model"))


def adjusted(table: pl.DataFrame) -> pl.DataFrame:
    """``table`` with Holm and Benjamini–Hochberg adjusted p-values over all its rows and a
    verdict per row resting on Holm."""
    p = table["p_raw"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    holm = adjust_pvalues(p, "holm")
    bh = adjust_pvalues(p, "fdr_bh")
    better = _better(table)
    verdicts = [
        "—"
        if not math.isfinite(h)
        else "beats it (Holm-significant)"
        if b and h < ALPHA
        else "better, not significant"
        if b
        else "does not beat it"
        for b, h in zip(better, holm, strict=True)
    ]
    return table.with_columns(
        pl.Series("p_holm", holm).fill_nan(None),
        pl.Series("p_bh", bh).fill_nan(None),
        pl.Series("verdict", verdicts),
    )


def _better(table: pl.DataFrame) -> list[bool]:
    higher = {"accuracy", "balanced_accuracy"}
    return [
        (m > b) if metric in higher or metric.startswith("Rank IC") else (m < b)
        for m, b, metric in zip(
            table["model_value"].to_list(),
            table["baseline_value"].to_list(),
            table["metric"].to_list(),
            strict=True,
        )
    ]


def with_ic_tests(scores: pl.DataFrame, ic: pl.DataFrame) -> pl.DataFrame:
    """The score table with the rank-IC tests as rows (metric "Rank IC", baseline "zero"),
    the whole family adjusted together."""
    if ic.is_empty():
        return scores
    rows = ic.select(
        "model",
        pl.lit("direction").alias("family"),
        pl.lit(DECISIVE).alias("group"),
        pl.format("Rank IC {}d", pl.col("horizon")).alias("metric"),
        pl.lit("zero").alias("baseline"),
        pl.col("Rank IC").alias("model_value"),
        pl.lit(0.0).alias("baseline_value"),
        "p_raw",
        pl.lit(None, pl.Int64).alias("symbols"),
        pl.col("dates").cast(pl.Int64).alias("sessions"),
    )
    base = scores.drop("p_holm", "p_bh", "verdict") if "p_holm" in scores.columns else scores
    return adjusted(pl.concat([base, rows], how="diagonal_relaxed"))


def mz_table(record: pl.DataFrame, groups: Mapping[str, frozenset[str]]) -> pl.DataFrame:
    """model | group | symbol | alpha | beta | … | wald_p: Mincer–Zarnowitz per symbol of every
    volatility model (HAC over the overlapping 20-session targets)."""
    frames = []
    for model in sorted(record["model"].unique().to_list()):
        if FAMILY_OF[model] != "volatility":
            continue
        mine = record.filter(pl.col("model") == model).drop_nulls(["vol_forecast", "fwd_vol_20"])
        for group, symbols in groups.items():
            rows = _in(mine, symbols)
            if rows.is_empty():
                continue
            table = mincer_zarnowitz_by_symbol(rows, "vol_forecast", "fwd_vol_20", HORIZON - 1)
            frames.append(
                table.with_columns(pl.lit(model).alias("model"), pl.lit(group).alias("group"))
            )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed").select(
        "model", "group", pl.all().exclude("model", "group")
    )


def mz_summary(table: pl.DataFrame) -> pl.DataFrame:
    """model | group | symbols | median α | median β | median R² | share of symbols where
    α = 0, β = 1 is rejected at 5 %."""
    if table.is_empty():
        return table
    return (
        table.group_by("model", "group", maintain_order=True)
        .agg(
            pl.len().alias("symbols"),
            pl.col("alpha").median().alias("median_alpha"),
            pl.col("beta").median().alias("median_beta"),
            pl.col("r2").median().alias("median_r2"),
            (pl.col("wald_p") < ALPHA).mean().alias("share_rejected"),
        )
        .sort("model", "group")
    )


def calibration(record: pl.DataFrame, equities: frozenset[str]) -> tuple[pl.DataFrame, dict]:
    """model | brier | ece | rows (equities) and a reliability diagram per probabilistic model
    (one-vs-rest over its classes)."""
    rows_out, pictures = [], {}
    for model in sorted(record["model"].unique().to_list()):
        family = FAMILY_OF[model]
        if family == "volatility":
            continue
        rows = _in(record.filter(pl.col("model") == model), equities)
        label = "direction" if family == "direction" else REGIME_LABELS["regime"]
        rows = rows.drop_nulls([*OUTPUTS[family], label])
        if rows.is_empty():
            continue
        p = rows.select(OUTPUTS[family]).to_numpy().astype(float)
        p = np.clip(p, 0.0, 1.0) / np.clip(p, 0.0, 1.0).sum(axis=1, keepdims=True)
        y = rows[label].to_numpy().astype(int)
        table = reliability_from_classes(p, y)
        rows_out.append(
            {
                "model": model,
                "brier": brier_score(p, y),
                "ece": expected_calibration_error(table),
                "rows": rows.height,
            }
        )
        hits = (y[:, None] == np.arange(p.shape[1])[None, :]).astype(float)
        pictures[f"reliability_{model}"] = plots.calibration_png(
            hits.ravel(), p.ravel(), f"{model}: reliability, every class one-vs-rest (equities)"
        )
    return pl.DataFrame(rows_out), pictures


def ic_figure(record: pl.DataFrame, equities: frozenset[str]) -> dict[str, bytes]:
    """Cumulative daily cross-sectional rank IC (1 session) of each direction model."""
    dates = None
    for model in sorted(record["model"].unique().to_list()):
        if FAMILY_OF[model] != "direction":
            continue
        rows = _in(record.filter(pl.col("model") == model), equities).with_columns(
            (pl.col("p_up") - pl.col("p_down")).alias("score")
        )
        daily = daily_ic(
            rows, "score", "fwd_return_1", symbols=equities, min_names=min_names(equities)
        ).sort("date")
        if daily.is_empty():
            continue
        frame = daily.select("date", pl.col("rank_ic").cum_sum().alias(model))
        dates = frame if dates is None else dates.join(frame, on="date", how="full", coalesce=True)
    if dates is None:
        return {}
    dates = dates.sort("date").with_columns(pl.exclude("date").forward_fill())
    x = dates["date"].to_numpy().astype("datetime64[D]")
    lines = {c: dates[c].to_numpy() for c in dates.columns if c != "date"}
    return {
        "cumulative_rank_ic": plots.line_png(
            x, lines, "cumulative daily cross-sectional rank IC, 1 session (equities)", "sum of IC"
        )
    }


def scoreboard(record: pl.DataFrame, groups: Mapping[str, frozenset[str]]) -> Scoreboard:
    """The whole board of a record with outcomes and sceptic baselines attached; ``groups``
    maps group names to symbols, ``DECISIVE`` (the equities) among them."""
    equities = groups[DECISIVE]
    ic = ic_table(record, equities)
    scores = with_ic_tests(score_table(record, groups), ic)
    mz = mz_table(record, groups)
    calibration_table, pictures = calibration(record, equities)
    return Scoreboard(
        scores, ic, mz, calibration_table, {**ic_figure(record, equities), **pictures}
    )


def headline(board: Scoreboard) -> str:
    """Plain words: which models beat their strongest per-symbol baseline on the equities
    after the Holm adjustment, and which do not."""
    scores = board.scores
    if scores.is_empty():
        return "no scores yet"
    primary = {
        "direction": ("log_loss", "symbol_prior"),
        "volatility": ("qlike", "symbol_har"),
        "regime": ("balanced_accuracy", "persistence"),
    }
    beats, fails = [], []
    for model in sorted(scores["model"].unique().to_list()):
        family = FAMILY_OF[model]
        metric, baseline = primary[family]
        row = scores.filter(
            (pl.col("model") == model)
            & (pl.col("group") == DECISIVE)
            & (pl.col("metric") == metric)
            & (pl.col("baseline") == baseline)
        )
        if row.is_empty():
            continue
        r = row.row(0, named=True)
        text = (
            f"{model} ({metric} {r['model_value']:.4f} vs {baseline} {r['baseline_value']:.4f}, "
            f"Holm p={r['p_holm']:.3f})"
        )
        (beats if r["verdict"].startswith("beats") else fails).append(text)
    ic = board.ic
    ic_text = ""
    if not ic.is_empty():
        parts = [
            f"{r['model']} {r['Rank IC']:+.4f} (t {r['Rank IC t (NW)']:.2f})"
            for r in ic.filter(pl.col("horizon") == 1).iter_rows(named=True)
        ]
        ic_text = (
            "Cross-sectional rank IC at 1 session over the equities: " + ", ".join(parts) + ". "
        )
    said = ic_text
    said += (
        "Beat their per-symbol baseline after Holm: " + "; ".join(beats) + ". "
        if beats
        else "No model beats its per-symbol baseline after the Holm adjustment. "
    )
    if fails:
        said += "Do not: " + "; ".join(fails) + "."
    return said.strip()
