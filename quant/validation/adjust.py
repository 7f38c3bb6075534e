"""Split/dividend adjustment: the prices features and models see."""

from __future__ import annotations

import polars as pl

from quant.bars import PRICE_COLUMNS

FACTOR_REPORTED = "reported"
FACTOR_CARRIED = "carried_forward"
FACTOR_BACKFILLED = "backfilled"
FACTOR_NONE = "none"


def adjust_prices(bars: pl.DataFrame) -> pl.DataFrame:
    """Adjusted OHLCV plus the raw values, for one or many symbols.

    factor = adj_close / close, applied to open/high/low/close and inversely to volume. Where the
    source has no adj_close (the sample's equities after 2025-10-08) the last known factor is
    carried forward; before the first known factor the first one is used; series that never
    report one (price indices) get factor 1. ``factor_source`` records which case each row is.
    """
    reported = pl.col("adj_close") / pl.col("close")
    reported = pl.when(reported.is_finite() & (reported > 0)).then(reported)
    factor = reported.forward_fill().over("symbol")
    factor = factor.fill_null(reported.backward_fill().over("symbol")).fill_null(1.0)
    has_any = reported.is_not_null().any().over("symbol")
    source = (
        pl.when(reported.is_not_null())
        .then(pl.lit(FACTOR_REPORTED))
        .when(~has_any)
        .then(pl.lit(FACTOR_NONE))
        .when(reported.forward_fill().over("symbol").is_not_null())
        .then(pl.lit(FACTOR_CARRIED))
        .otherwise(pl.lit(FACTOR_BACKFILLED))
    )
    return (
        bars.sort("symbol", "date")
        .with_columns(factor.alias("adj_factor"), source.alias("factor_source"))
        .select(
            "symbol",
            "date",
            *[(pl.col(c) * pl.col("adj_factor")).alias(c) for c in PRICE_COLUMNS],
            (pl.col("volume") / pl.col("adj_factor")).alias("volume"),
            *[pl.col(c).alias(f"raw_{c}") for c in (*PRICE_COLUMNS, "volume")],
            pl.col("adj_close").alias("reported_adj_close"),
            "adj_factor",
            "factor_source",
        )
    )
