"""Conditional event studies with their doubt: what followed each event, per symbol and pooled
over the equities, and how sure one can be of it.

For every cell (scope, symbol, event, horizon h in sessions) the outcomes are the forward *log*
returns from the event's close to the close h sessions later (per symbol, over its own rows).

- ``mean_return`` and its interval: ``ci_low``/``ci_high`` come from a moving-block bootstrap
  over the dates: blocks of ``max(h, 5)`` consecutive sessions of the symbol (pooled scope: of
  the equities' dates) drawn with replacement until they cover its history, the events on the
  drawn dates averaged, ``resamples`` times, percentile interval; seeded per (scope, symbol,
  horizon). Blocks of dates keep overlapping h-session outcomes and clustered events together,
  and in the pooled scope every name's event of one date moves with its date. Under
  ``min_events`` events: no interval.
- ``p_value``: two-sided test of mean(event) − ``baseline_mean`` (the symbol's unconditional
  mean forward return over the same period), with a Newey–West (HAC) standard error in
  calendar time: the excess returns are summed per event date (so same-date events across names
  form one cluster) and the autocovariances of those date sums up to h − 1 sessions apart enter
  with Bartlett weights. The reference is Student t with (the number of distinct h-session
  windows the events fall in − 1) degrees of freedom, so a few clustered episodes (every June
  day of eight Junes) count as the few episodes they are. The baseline is treated as known:
  the event rows are part of its sample, so this is, if anything, conservative. Fewer than
  ``min_events`` events: no p-value.
- ``q_value``: Benjamini–Hochberg over the whole family of tested cells (all scopes, symbols,
  events and horizons with a p-value).
- Out of sample: each symbol's history (the pooled scope: the equities' dates) is split at the
  date that leaves the last ``holdout_share`` of sessions (``split_date``). Discovery is the
  earlier part, with outcomes that end before the split (purged), holdout the later part, each
  against its own baseline. ``persists``: the holdout excess has the discovery excess's sign and
  the holdout p-value is below ``holdout_alpha`` (each part needs ``min_segment_events``).
- ``insight`` = ``q_value`` < ``fdr`` and ``persists``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse, stats

from quant.patterns.events import EVENT_DIRECTION, EVENTS

POOLED = "EQUITIES"
SCOPES = ("symbol", "equities")

INSIGHT_SCHEMA: dict[str, pl.DataType] = {
    "scope": pl.String(),
    "symbol": pl.String(),
    "event": pl.String(),
    "label": pl.String(),
    "horizon": pl.Int64(),
    "n_events": pl.Int64(),
    "mean_return": pl.Float64(),
    "median_return": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "p_up": pl.Float64(),
    "p_reversal": pl.Float64(),
    "mean_abs_return": pl.Float64(),
    "baseline_mean": pl.Float64(),
    "p_value": pl.Float64(),
    "q_value": pl.Float64(),
    "discovery_mean": pl.Float64(),
    "discovery_p": pl.Float64(),
    "holdout_mean": pl.Float64(),
    "holdout_p": pl.Float64(),
    "holdout_n": pl.Int64(),
    "persists": pl.Boolean(),
    "insight": pl.Boolean(),
    "verdict": pl.String(),
    "first_date": pl.Date(),
    "last_date": pl.Date(),
    "split_date": pl.Date(),
}
"""The columns of ``pattern_insights``, in order."""

INSIGHT_COLUMNS: dict[str, str] = {
    "scope": "symbol (one symbol) or equities (all equities pooled, each event row weighted equally)",
    "symbol": "the symbol, or EQUITIES for the pooled scope",
    "event": "event id (quant.patterns.events.EVENTS)",
    "label": "the event in words",
    "horizon": "sessions from the event's close to the outcome's close",
    "n_events": "events with a known outcome at this horizon",
    "mean_return": "mean forward log return after the event",
    "median_return": "median forward log return after the event",
    "ci_low": "lower end of the 95 % moving-block bootstrap interval of mean_return (null under 20 events)",
    "ci_high": "upper end of the 95 % moving-block bootstrap interval of mean_return",
    "p_up": "share of positive forward returns",
    "p_reversal": "share against the event's direction (null for calendar and volume events)",
    "mean_abs_return": "mean absolute forward log return",
    "baseline_mean": "the symbol's unconditional mean forward log return, same horizon and period",
    "p_value": "two-sided HAC (Newey–West, lag h-1) test of mean - baseline; null under 20 events",
    "q_value": "Benjamini–Hochberg q-value over every tested cell",
    "discovery_mean": "mean forward log return of the events before split_date",
    "discovery_p": "p-value of the discovery excess over its baseline",
    "holdout_mean": "mean forward log return of the events from split_date on",
    "holdout_p": "p-value of the holdout excess over its baseline",
    "holdout_n": "events in the holdout",
    "persists": "holdout excess has the discovery excess's sign and holdout_p < 0.10",
    "insight": "q_value < 0.05 and persists",
    "verdict": "'insight: ...' or 'no clear pattern'",
    "first_date": "first event date with an outcome",
    "last_date": "last event date with an outcome",
    "split_date": "first session of the holdout (the last 30 % of sessions)",
}


@dataclass(frozen=True)
class StudyConfig:
    """How the cells are judged (see the module docstring)."""

    horizons: tuple[int, ...] = (1, 5, 20)
    equities: tuple[str, ...] = ()  # the symbols pooled into the "equities" scope
    holdout_share: float = 0.3
    min_events: int = 20
    min_segment_events: int = 10
    resamples: int = 400
    seed: int = 0
    confidence: float = 0.95
    min_block: int = 5
    fdr: float = 0.05
    holdout_alpha: float = 0.10


CELL = ["scope", "symbol", "event", "horizon"]
SEGMENTS = ("full", "discovery", "holdout")


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (statsmodels' ``fdr_bh``); NaN p-values stay NaN and are
    not counted in the family."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    if m == 0:
        return q
    order = tested[np.argsort(p[tested], kind="mergesort")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def _outcome_rows(bars: pl.DataFrame, config: StudyConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(every bar's forward log returns in long form, one row per scope, symbol, date and
    horizon, with its time index ``t`` and segment flags; per scope unit its split date and
    number of sessions)."""
    close = pl.col("close")
    panel = (
        bars.select("symbol", "date", "close")
        .sort("symbol", "date")
        .with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).over("symbol").alias("t"),
            pl.len().over("symbol").alias("_n"),
            *[
                (close.shift(-h).over("symbol") / close).log().alias(f"_fwd{h}")
                for h in config.horizons
            ],
        )
    )
    keep = 1.0 - config.holdout_share
    by_symbol = panel.with_columns(
        pl.lit("symbol").alias("scope"),
        (pl.col("_n").cast(pl.Float64) * keep).floor().cast(pl.Int64).alias("t_split"),
    )
    equities = panel.filter(pl.col("symbol").is_in(list(config.equities)))
    pooled_dates = equities.select("date").unique().sort("date")
    pooled_dates = pooled_dates.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("t"))
    pooled_split = math.floor(pooled_dates.height * keep)
    pooled = (
        equities.drop("t")
        .join(pooled_dates, on="date")
        .with_columns(
            pl.lit("equities").alias("scope"), pl.lit(pooled_split, pl.Int64).alias("t_split")
        )
    )
    rows = pl.concat([by_symbol, pooled.select(by_symbol.columns)])
    splits = pl.concat(
        [
            by_symbol.filter(pl.col("t") == pl.col("t_split")).select(
                "scope",
                "symbol",
                pl.col("date").alias("split_date"),
                pl.col("_n").cast(pl.Int64).alias("sessions"),
            ),
            pooled_dates.filter(pl.col("t") == pooled_split).select(
                pl.lit("equities").alias("scope"),
                pl.lit(POOLED).alias("symbol"),
                pl.col("date").alias("split_date"),
                pl.lit(pooled_dates.height, pl.Int64).alias("sessions"),
            ),
        ]
    )
    long = (
        rows.unpivot(
            index=["scope", "symbol", "date", "t", "t_split"],
            on=[f"_fwd{h}" for h in config.horizons],
            variable_name="horizon",
            value_name="ret",
        )
        .with_columns(pl.col("horizon").str.strip_prefix("_fwd").cast(pl.Int64))
        .filter(pl.col("ret").is_not_null() & pl.col("ret").is_finite())
        .with_columns(
            pl.lit(True).alias("full"),
            (pl.col("t") + pl.col("horizon") < pl.col("t_split")).alias("discovery"),
            (pl.col("t") >= pl.col("t_split")).alias("holdout"),
        )
    )
    return long, splits


def _baselines(long: pl.DataFrame) -> pl.DataFrame:
    """The unconditional mean forward return per (scope, symbol, horizon) in each segment."""
    return long.group_by("scope", "symbol", "horizon").agg(
        pl.col("ret").filter(pl.col(s)).mean().alias(f"_base_{s}") for s in SEGMENTS
    )


def _hac_sums(frame: pl.DataFrame, n_cells: int, max_lag: int) -> np.ndarray:
    """Per cell, sum of u_t u_s over event dates with |t - s| <= lag, Bartlett-weighted
    (1 - |t - s| / (lag + 1)): the Newey–West long-run variance of the date sums ``u``.

    ``frame`` holds (cell, t, u, lag), one row per cell and event date, sorted by (cell, t)."""
    cell = frame["cell"].to_numpy()
    t = frame["t"].to_numpy()
    u = frame["u"].to_numpy()
    lag = frame["lag"].to_numpy()
    total = np.bincount(cell, weights=u * u, minlength=n_cells)
    for k in range(1, max_lag + 1):  # event dates are distinct, so a gap <= lag needs k <= lag
        if k >= len(u):
            break
        gap = t[k:] - t[:-k]
        near = (cell[k:] == cell[:-k]) & (gap <= lag[k:])
        weight = np.where(near, 1.0 - gap / (lag[k:] + 1.0), 0.0)
        total += 2.0 * np.bincount(cell[k:], weights=weight * u[k:] * u[:-k], minlength=n_cells)
    return total


def _segment_tests(
    outcomes: pl.DataFrame, segment: str, cells: pl.DataFrame, config: StudyConfig
) -> pl.DataFrame:
    """Per cell in ``segment``: events, mean return, mean excess over the segment's baseline and
    the HAC p-value of that excess (null under the segment's minimum number of events)."""
    minimum = config.min_events if segment == "full" else config.min_segment_events
    rows = outcomes.filter(pl.col(segment)).with_columns(
        (pl.col("ret") - pl.col(f"_base_{segment}")).alias("_excess")
    )
    summary = rows.group_by("cell").agg(
        pl.len().alias("n"),
        pl.col("ret").mean().alias("mean"),
        pl.col("_excess").mean().alias("excess"),
        pl.col("t").n_unique().alias("dates"),
        (pl.col("t") // pl.col("horizon")).n_unique().alias("windows"),
    )
    by_date = (
        rows.join(summary.select("cell", "excess"), on="cell")
        .group_by("cell", "t")
        .agg(
            (pl.col("_excess") - pl.col("excess")).sum().alias("u"),
            (pl.col("horizon").first() - 1).alias("lag"),
        )
        .sort("cell", "t")
    )
    long_run = _hac_sums(by_date, cells.height, max(config.horizons) - 1)
    summary = summary.sort("cell")
    n = summary["n"].to_numpy().astype(float)
    windows = summary["windows"].to_numpy()
    excess = summary["excess"].to_numpy()
    se = np.sqrt(np.maximum(long_run[summary["cell"].to_numpy()], 0.0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(excess) / se
    p = 2.0 * stats.t.sf(z, df=np.maximum(windows - 1, 1))
    p = np.where((n >= minimum) & (windows >= 2) & (se > 0) & np.isfinite(p), p, np.nan)
    return summary.with_columns(pl.Series("p", p).fill_nan(None)).select(
        "cell",
        pl.col("n").cast(pl.Int64).alias(f"{segment}_n"),
        pl.col("mean").alias(f"{segment}_mean"),
        pl.col("excess").alias(f"{segment}_excess"),
        pl.col("p").alias(f"{segment}_p"),
    )


def _generator(key: tuple[object, ...], seed: int) -> np.random.Generator:
    """A generator of its own per (scope, symbol, horizon): one group's draws do not depend on
    the other groups."""
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, key)).encode())])


def _block_counts(
    sessions: int, block: int, rng: np.random.Generator, resamples: int
) -> sparse.csr_matrix:
    """How often each block start is drawn in each resample (sparse, resamples x starts): each
    resample draws ceil(sessions / block) starts uniformly, with replacement."""
    starts = sessions - block + 1
    draws = rng.integers(0, starts, size=(resamples, math.ceil(sessions / block)))
    rows = np.repeat(np.arange(resamples), draws.shape[1])
    ones = np.ones(draws.size)
    return sparse.csr_matrix((ones, (rows, draws.ravel())), shape=(resamples, starts))


def _percentiles(means: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column (cell), the ``tail`` and 1 - ``tail`` quantiles of the finite resampled means
    (a resample that drew none of a rare event's dates has no mean); NaN under 2 of them."""
    low = np.full(means.shape[1], np.nan)
    high = np.full(means.shape[1], np.nan)
    finite = np.isfinite(means)
    whole = finite.all(axis=0)
    if whole.any():
        low[whole], high[whole] = np.quantile(means[:, whole], [tail, 1.0 - tail], axis=0)
    partial = ~whole & (finite.sum(axis=0) >= 2)
    if partial.any():
        bounds = np.nanquantile(means[:, partial], [tail, 1.0 - tail], axis=0)
        low[partial], high[partial] = bounds
    return low, high


def _bootstrap(
    outcomes: pl.DataFrame, cells: pl.DataFrame, units: pl.DataFrame, config: StudyConfig
) -> pl.DataFrame:
    """Moving-block bootstrap interval of each cell's mean return, over the sessions of its
    symbol (the pooled scope: the equities' dates): blocks of ``max(h, min_block)``
    consecutive sessions drawn with replacement until they cover the history, the events of the
    drawn sessions (all of a date's events together) averaged, ``resamples`` times; the
    percentile interval at ``confidence``. The draws are shared by every event of a (scope,
    symbol, horizon), so the work is two sparse matrix products per group."""
    per_session = (
        outcomes.group_by("cell", "t")
        .agg(pl.col("ret").sum().alias("x"), pl.len().alias("c"))
        .join(cells.select("cell", "scope", "symbol", "horizon"), on="cell")
        .join(units.select("scope", "symbol", "sessions"), on=["scope", "symbol"])
    )
    tail = (1.0 - config.confidence) / 2.0
    low = np.full(cells.height, np.nan)
    high = np.full(cells.height, np.nan)
    for key, group in per_session.partition_by(
        ["scope", "symbol", "horizon"], as_dict=True, maintain_order=True
    ).items():
        sessions = int(group["sessions"][0])
        block = min(max(int(key[2]), config.min_block), sessions)
        ids, local = np.unique(group["cell"].to_numpy(), return_inverse=True)
        # per cell, running sums over the sessions of the event returns and event counts
        flat = local * (sessions + 1) + group["t"].to_numpy() + 1
        size = ids.size * (sessions + 1)
        prefix = np.stack(
            [
                np.bincount(flat, weights=group[w].to_numpy().astype(float), minlength=size)
                for w in ("x", "c")
            ]
        ).reshape(2, ids.size, sessions + 1)
        prefix = np.cumsum(prefix, axis=2)
        block_sums = prefix[:, :, block:] - prefix[:, :, : sessions - block + 1]
        counts = _block_counts(sessions, block, _generator(key, config.seed), config.resamples)
        drawn_x, drawn_c = counts @ block_sums[0].T, counts @ block_sums[1].T
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(drawn_c > 0, drawn_x / drawn_c, np.nan)
        low[ids], high[ids] = _percentiles(means, tail)
    return pl.DataFrame({"cell": np.arange(cells.height), "ci_low": low, "ci_high": high})


def _verdict(config: StudyConfig) -> pl.Expr:
    """'insight: <direction words>' or 'no clear pattern' (with the reason when too few)."""
    excess = pl.col("mean_return") - pl.col("baseline_mean")
    direction = pl.col("_direction")
    kind = (
        pl.when(direction.is_null())
        .then(pl.lit(""))
        .when(direction * excess < 0)
        .then(pl.lit("reversal, "))
        .otherwise(pl.lit("continuation, "))
    )
    words = pl.concat_str(
        pl.lit("insight: "),
        kind,
        pl.col("horizon").cast(pl.String),
        pl.lit("-session return "),
        pl.when(excess > 0).then(pl.lit("above")).otherwise(pl.lit("below")),
        pl.lit(" usual by "),
        (excess.abs() * 100).round(2).cast(pl.String),
        pl.lit(" % (log), held out of sample"),
    )
    return (
        pl.when(pl.col("insight"))
        .then(words)
        .when(pl.col("n_events") < config.min_events)
        .then(pl.lit("no clear pattern (too few events)"))
        .otherwise(pl.lit("no clear pattern"))
    )


def empty_insights() -> pl.DataFrame:
    """A zero-row frame with :data:`INSIGHT_SCHEMA`."""
    return pl.DataFrame(schema=INSIGHT_SCHEMA)


def study(bars: pl.DataFrame, events: pl.DataFrame, config: StudyConfig) -> pl.DataFrame:
    """The event study of every (scope, symbol, event, horizon) cell: one row each, with the
    columns of :data:`INSIGHT_SCHEMA` (returns are log returns).

    ``bars``: (symbol, date, close), one row per symbol and session; ``events``: (symbol, date,
    event) as :func:`quant.patterns.events.detect_events` gives. Cells exist where an event has
    at least one known outcome; symbols in ``config.equities`` are also pooled (scope
    "equities", symbol "EQUITIES").
    """
    long, units = _outcome_rows(bars, config)
    long = long.join(_baselines(long), on=["scope", "symbol", "horizon"])
    outcomes = events.select("symbol", "date", "event").join(long, on=["symbol", "date"])
    # the pooled rows keep their own symbol's baseline, then take the pooled unit's name
    outcomes = outcomes.with_columns(
        pl.when(pl.col("scope") == "equities")
        .then(pl.lit(POOLED))
        .otherwise("symbol")
        .alias("symbol")
    )
    if outcomes.is_empty():
        return empty_insights()
    cells = (
        outcomes.select(CELL)
        .unique()
        .sort(CELL)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("cell"))
    )
    directions = pl.DataFrame(
        {"event": list(EVENT_DIRECTION), "_direction": list(EVENT_DIRECTION.values())},
        schema={"event": pl.String(), "_direction": pl.Int64()},
    )
    signed = pl.col("ret") * pl.col("_direction")
    outcomes = outcomes.join(cells, on=CELL)
    described = (
        outcomes.join(directions, on="event", how="left")
        .group_by("cell")
        .agg(
            pl.col("ret").median().alias("median_return"),
            (pl.col("ret") > 0).mean().alias("p_up"),
            pl.when(pl.col("_direction").first().is_not_null())
            .then((signed < 0).mean())
            .alias("p_reversal"),
            pl.col("ret").abs().mean().alias("mean_abs_return"),
            pl.col("_base_full").mean().alias("baseline_mean"),
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
            pl.col("_direction").first(),
        )
    )
    tests = [_segment_tests(outcomes, s, cells, config) for s in SEGMENTS]
    table = cells.join(described, on="cell")
    for part in tests:
        table = table.join(part, on="cell", how="left")
    table = table.join(_bootstrap(outcomes, cells, units, config), on="cell", how="left")
    q = benjamini_hochberg(table["full_p"].fill_null(np.nan).to_numpy())
    same_direction = pl.col("holdout_excess").sign() * pl.col("discovery_excess").sign() > 0
    persists = (
        same_direction
        & pl.col("discovery_p").is_not_null()
        & (pl.col("holdout_p") < config.holdout_alpha)
    ).fill_null(False)
    labels = pl.DataFrame({"event": list(EVENTS), "label": list(EVENTS.values())})
    table = (
        table.with_columns(
            pl.Series("q_value", q).fill_nan(None),
            persists.alias("persists"),
            pl.col("full_n").alias("n_events"),
            pl.col("full_mean").alias("mean_return"),
            pl.col("full_p").alias("p_value"),
            pl.col("holdout_n").fill_null(0),
            # too few events: no interval either (a bootstrap of a handful of values is noise)
            *[
                pl.when(pl.col("full_n") >= config.min_events).then(pl.col(c)).alias(c)
                for c in ("ci_low", "ci_high")
            ],
        )
        .with_columns(
            ((pl.col("q_value") < config.fdr) & pl.col("persists"))
            .fill_null(False)
            .alias("insight")
        )
        .with_columns(_verdict(config).alias("verdict"))
        .join(labels, on="event", how="left")
        .with_columns(pl.col("label").fill_null(pl.col("event")))
        .join(units.select("scope", "symbol", "split_date"), on=["scope", "symbol"], how="left")
    )
    return table.select(pl.col(name).cast(dtype) for name, dtype in INSIGHT_SCHEMA.items()).sort(
        pl.col("scope").replace_strict({s: i for i, s in enumerate(SCOPES)}), *CELL[1:]
    )
