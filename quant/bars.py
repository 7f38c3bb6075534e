"""The canonical shape of daily OHLCV bars, shared by every source and stage.

One long ("panel") frame: a row per (symbol, date). Prices are as delivered (raw quotes plus
Yahoo's ``adj_close`` where the source has it); adjustment happens downstream in validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import polars as pl

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
BAR_SCHEMA: Mapping[str, pl.DataType] = {
    "symbol": pl.String(),
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Float64(),
}
BAR_COLUMNS: tuple[str, ...] = tuple(BAR_SCHEMA)


def empty_bars() -> pl.DataFrame:
    """A zero-row frame with the canonical bar schema."""
    return pl.DataFrame(schema=dict(BAR_SCHEMA))


def conform_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """Select the canonical columns in canonical order and types, sorted by (symbol, date).

    A missing ``adj_close`` becomes null (index levels have none); any other missing column is
    an error, because silently inventing prices would corrupt everything downstream.
    """
    missing = [c for c in BAR_COLUMNS if c not in frame.columns and c != "adj_close"]
    if missing:
        raise ValueError(f"bars lack required column(s) {missing}; got {frame.columns}")
    if "adj_close" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
    return frame.select(
        [pl.col(name).cast(dtype, strict=True) for name, dtype in BAR_SCHEMA.items()]
    ).sort("symbol", "date")


def content_hash(bars: pl.DataFrame) -> str:
    """A stable SHA-256 of the bars' values (order-independent in rows, schema-aware).

    Used as the data version of a partition: equal hashes mean equal data, across polars
    versions, because it hashes a canonical CSV rendering rather than an in-memory layout.
    """
    canonical = conform_bars(bars)
    digest = hashlib.sha256()
    digest.update(",".join(f"{k}:{v}" for k, v in canonical.schema.items()).encode())
    digest.update(canonical.write_csv(float_precision=None).encode())
    return digest.hexdigest()


def merge_deliveries(stored: pl.DataFrame | None, delivered: pl.DataFrame) -> pl.DataFrame:
    """Combine stored bars with an incremental delivery: delivered rows win on equal dates.

    Why: incremental sources re-request a few days of overlap to pick up revisions (a
    provisional last bar, a late correction); the newer delivery is the better value.
    """
    delivered = conform_bars(delivered)
    if stored is None or stored.is_empty():
        return delivered
    kept = conform_bars(stored).join(
        delivered.select("symbol", "date"), on=["symbol", "date"], how="anti"
    )
    return pl.concat([kept, delivered]).sort("symbol", "date")


def count_new_dates(previous: pl.DataFrame | None, current: pl.DataFrame) -> int:
    """How many (symbol, date) rows of ``current`` were not in ``previous``."""
    if previous is None or previous.is_empty():
        return current.height
    return current.join(previous.select("symbol", "date"), on=["symbol", "date"], how="anti").height


def lost_history(stored: pl.DataFrame | None, current: pl.DataFrame) -> pl.DataFrame:
    """The stored (symbol, date) rows that ``current`` no longer has: what replacing the
    stored partition with ``current`` would lose."""
    if stored is None or stored.is_empty():
        return stored.clear() if stored is not None else empty_bars()
    return stored.join(current.select("symbol", "date"), on=["symbol", "date"], how="anti")
