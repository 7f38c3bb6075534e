"""Market context: what the whole market is doing, joined onto every (symbol, date).

- volatility index (^VIX): level, 1- and 5-day log changes, distance from its 20-day mean;
- benchmark trend (^GSPC): distance from its 50/200-day moving averages, above/below, 20-day return;
- breadth: share of the equities above their own 50/200-day moving averages;
- per symbol against the benchmark: rolling 60-day beta and correlation, relative strength over
  20 and 60 sessions.

Calendars differ (an Indian index and a US stock share no session calendar), so market-wide values
are joined by date *as of*: the last value known at the symbol's close, never a later one. A market
that closes before New York (NSE) only sees the US values of the *previous* US session: the US
close of the same date happens ten hours after the Indian one.

The volatility index's official close prints at 4:15 pm ET, a quarter of an hour after the 4:00 pm
equity close at which signals are computed and from which the labels' forward returns run. So
every column derived from it (``vix_*``) is joined strictly *before* the row's date for every
symbol except the volatility index itself (its own close is its own decision time): a US equity
on date t sees the VIX of the last VIX session before t. The benchmark and the breadth are made of
4:00 pm closes, simultaneous with the symbol's own close, so US symbols see the same session's.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from quant.features import indicators as ind

LOG_CLOSE = pl.col("close").log()


@dataclass(frozen=True)
class ContextSpec:
    """Which series play which role (from the universe, not hard-coded symbol names)."""

    volatility_index: str
    benchmark: str
    equities: tuple[str, ...]
    closes_before_benchmark: frozenset[str] = frozenset()


CONTEXT_COLUMNS = {
    "vix_level": "volatility index close (points); for every other symbol, the close of the last "
    "volatility-index session before the row's date (it closes at 4:15 pm ET, after the equities)",
    "vix_change_1": "1-day log change of the volatility index (lagged like vix_level)",
    "vix_change_5": "5-day log change of the volatility index (lagged like vix_level)",
    "vix_sma_dist_20": "volatility index relative to its 20-day mean (lagged like vix_level)",
    "spx_sma_dist_50": "benchmark close relative to its 50-day moving average",
    "spx_sma_dist_200": "benchmark close relative to its 200-day moving average",
    "spx_above_sma_50": "1 when the benchmark is above its 50-day moving average",
    "spx_above_sma_200": "1 when the benchmark is above its 200-day moving average",
    "spx_ret_20": "benchmark 20-day log return",
    "breadth_50": "share of the equities closing above their 50-day moving average",
    "breadth_200": "share of the equities closing above their 200-day moving average",
    "beta_60": "60-session beta of the symbol's daily log return to the benchmark's",
    "corr_60": "60-session correlation of the symbol's daily log return with the benchmark's",
    "rel_strength_20": "symbol's 20-session log return minus the benchmark's over the same span",
    "rel_strength_60": "symbol's 60-session log return minus the benchmark's over the same span",
}


def _series(bars: pl.DataFrame, symbol: str) -> pl.LazyFrame:
    one = bars.lazy().filter(pl.col("symbol") == symbol)
    return ind.with_position(one.select("symbol", "date", "close"))


def _volatility_index(bars: pl.DataFrame, symbol: str) -> pl.LazyFrame:
    c = pl.col("close")
    return _series(bars, symbol).select(
        "date",
        c.alias("vix_level"),
        ind.ratio(c, ind.lag(c)).log().alias("vix_change_1"),
        ind.ratio(c, ind.lag(c, 5)).log().alias("vix_change_5"),
        (c / ind.sma(c, 20) - 1.0).alias("vix_sma_dist_20"),
    )


def _benchmark_trend(bars: pl.DataFrame, symbol: str) -> pl.LazyFrame:
    c = pl.col("close")
    return _series(bars, symbol).select(
        "date",
        (c / ind.sma(c, 50) - 1.0).alias("spx_sma_dist_50"),
        (c / ind.sma(c, 200) - 1.0).alias("spx_sma_dist_200"),
        (c > ind.sma(c, 50)).cast(pl.Float64).alias("spx_above_sma_50"),
        (c > ind.sma(c, 200)).cast(pl.Float64).alias("spx_above_sma_200"),
        ind.ratio(c, ind.lag(c, 20)).log().alias("spx_ret_20"),
    )


def _breadth(bars: pl.DataFrame, equities: Collection[str]) -> pl.LazyFrame:
    """Share of equities above their moving averages, per date, over those with a defined average
    on that date; null until at least one equity has one."""
    c = pl.col("close")
    panel = ind.with_position(
        bars.lazy()
        .filter(pl.col("symbol").is_in(pl.Series(list(equities), dtype=pl.String).implode()))
        .select("symbol", "date", "close")
    ).with_columns((c > ind.sma(c, n)).cast(pl.Float64).alias(f"above_{n}") for n in (50, 200))
    return panel.group_by("date").agg(
        pl.col("above_50").mean().alias("breadth_50"),
        pl.col("above_200").mean().alias("breadth_200"),
    )


def _relative_to_benchmark(bars: pl.DataFrame, spec: ContextSpec) -> pl.LazyFrame:
    """Beta, correlation and relative strength of every symbol against the benchmark.

    The benchmark's log close is taken as of each symbol date, so a symbol date on which the
    benchmark did not trade pairs with a multi-day benchmark move, never a repeated one.
    """
    benchmark = (
        bars.lazy()
        .filter(pl.col("symbol") == spec.benchmark)
        .select("date", LOG_CLOSE.alias("bench_log_close"))
        .sort("date")
    )
    frame = _as_of(
        bars.lazy().select("symbol", "date", "close"), benchmark, _closes_before_benchmark(spec)
    )
    frame = ind.with_position(frame)
    symbol_return = LOG_CLOSE - ind.lag(LOG_CLOSE)
    bench_return = pl.col("bench_log_close") - ind.lag(pl.col("bench_log_close"))
    frame = frame.with_columns(symbol_return.alias("_r"), bench_return.alias("_b"))
    r, b = pl.col("_r"), pl.col("_b")
    covariance = pl.rolling_cov(r, b, window_size=60).over(ind.GROUP)
    return frame.select(
        "symbol",
        "date",
        ind.ratio(covariance, ind.rolling_var(b, 60)).alias("beta_60"),
        ind.rolling_corr(r, b, 60).alias("corr_60"),
        *[
            (
                (LOG_CLOSE - ind.lag(LOG_CLOSE, n))
                - (pl.col("bench_log_close") - ind.lag(pl.col("bench_log_close"), n))
            ).alias(f"rel_strength_{n}")
            for n in (20, 60)
        ],
    )


def _as_of(frame: pl.LazyFrame, by_date: pl.LazyFrame, lagged: pl.Expr) -> pl.LazyFrame:
    """Join date-level values onto (symbol, date) rows: the last value dated on or before the
    row's date, or strictly before it for the rows where ``lagged`` (a boolean expression over
    the row's columns) is true."""
    frame = frame.sort("date")
    same_day = frame.filter(~lagged).join_asof(
        by_date, on="date", strategy="backward", allow_exact_matches=True
    )
    earlier = frame.filter(lagged).join_asof(
        by_date, on="date", strategy="backward", allow_exact_matches=False
    )
    return pl.concat([same_day, earlier], how="vertical").sort("symbol", "date")


def _closes_before_benchmark(spec: ContextSpec) -> pl.Expr:
    """Rows of the markets that close before the benchmark's: they see the previous session's
    benchmark values."""
    lagged = pl.Series(sorted(spec.closes_before_benchmark), dtype=pl.String).implode()
    return pl.col("symbol").is_in(lagged)


def _closes_before_volatility_index(spec: ContextSpec) -> pl.Expr:
    """Rows of every symbol but the volatility index itself: its close (4:15 pm ET) comes after
    theirs (4:00 pm ET or earlier), so they see its previous session's values."""
    return pl.col("symbol") != spec.volatility_index


def compute_market_context(bars: pl.DataFrame, spec: ContextSpec) -> pl.DataFrame:
    """Context columns for every (symbol, date) in ``bars`` (adjusted closes of the universe)."""
    present = set(bars["symbol"].unique())
    for role, symbol in (
        ("volatility index", spec.volatility_index),
        ("benchmark", spec.benchmark),
    ):
        if symbol not in present:
            raise ValueError(
                f"market context needs the {role} {symbol!r}, which is not in the bars"
            )
    # the volatility index's values are dated by its own sessions and joined on their own rule
    # (strictly earlier for every other symbol); the as-of join takes the last known value
    volatility = _volatility_index(bars, spec.volatility_index).sort("date")
    market = (
        _benchmark_trend(bars, spec.benchmark)
        .join(_breadth(bars, spec.equities), on="date", how="full", coalesce=True)
        .sort("date")
    )
    # a date-level value must not be back-filled from a later date; the full join leaves nulls
    # where one series did not trade, which take the previous known value (forward only)
    market = market.with_columns(pl.exclude("date").forward_fill())
    keys = bars.lazy().select("symbol", "date")
    context = (
        _as_of(keys, volatility, _closes_before_volatility_index(spec))
        .join(_as_of(keys, market, _closes_before_benchmark(spec)), on=["symbol", "date"])
        .join(_relative_to_benchmark(bars, spec), on=["symbol", "date"], how="left")
    )
    return (
        context.select("symbol", "date", *CONTEXT_COLUMNS)
        .sort("symbol", "date")
        .collect(engine="in-memory")
    )
