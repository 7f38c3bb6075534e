"""Freshness: ``ohlcv_freshness``, a symbol's last validated bar against its exchange calendar.

A WARN (never blocking) check on ``ohlcv``, one result per symbol partition: the symbol's last
bar is more than ``max_sessions_behind`` sessions of its own calendar behind the run date (the
source's as-of: ``MarketData.run_date``). Definitions in quant/freshness.py. Dagster's built-in
freshness checks measure when an asset was materialized, not how old its newest bar is: a
nightly run that re-writes a symbol whose vendor stopped a year ago is "fresh" to them.

A run may validate several symbols in one step, so the verdicts are recorded per symbol
partition (assets/partition_checks.py).
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

from assets.partition_checks import check_outputs, partition_evaluation
from assets.partitions import UNIVERSE, symbol_partitions
from quant.freshness import freshness, stale_note
from resources.lake import ParquetLake
from resources.market_data import MarketData

CHECK_NAME = "ohlcv_freshness"
CHECKED_ASSET = dg.AssetKey("ohlcv")
FRESHNESS_SPEC = dg.AssetCheckSpec(
    CHECK_NAME,
    asset=CHECKED_ASSET,
    blocking=False,
    partitions_def=symbol_partitions,
    description="WARN when the symbol's last validated bar is more than N sessions of its own "
    "exchange calendar behind the run date (MARKET_STALE_AFTER_SESSIONS, default 2); its "
    "signal is then served HOLD.",
)
ADVICE_STALE = (
    "the signal for this symbol is held (HOLD, position 0). Check the source (MARKET_SOURCE) "
    "still delivers the symbol, re-run ingestion, or remove the symbol from the universe."
)


def last_dates(lake: ParquetLake, symbols: list[str]) -> pl.DataFrame:
    """Each symbol's last validated bar date (null where ``ohlcv`` holds no bars for it)."""
    rows = []
    for symbol in symbols:
        bars = lake.read_if_readable("ohlcv", symbol)  # unreadable: reported by validation
        rows.append((symbol, None if bars is None or bars.is_empty() else bars["date"].max()))
    return pl.DataFrame(rows, schema={"symbol": pl.String, "data_date": pl.Date}, orient="row")


def evaluation(row: dict, run_date: date, threshold: int) -> AssetCheckEvaluation:
    """The check's verdict for one symbol partition, with metadata a person can act on."""
    stale = bool(row["stale"])
    description = (
        stale_note(row, run_date)
        if stale
        else f"{row['symbol']}: last bar {row['data_date']}, {row['sessions_behind']} "
        f"{row['calendar']} sessions behind the run date {run_date} (threshold {threshold})"
    )
    metadata = {
        "symbol": row["symbol"],
        "data_date": str(row["data_date"]),
        "run_date": str(run_date),
        "expected_date": str(row["expected_date"]),
        "sessions_behind": (
            "n/a: no validated bars" if row["sessions_behind"] is None else row["sessions_behind"]
        ),
        "max_sessions_behind": threshold,
        "calendar": row["calendar"],
        "what_to_do": ADVICE_STALE if stale else "nothing: the data are current",
    }
    return partition_evaluation(
        "ohlcv",
        CHECK_NAME,
        row["symbol"],
        not stale,
        dg.AssetCheckSeverity.WARN,
        description,
        metadata,
    )


@dg.multi_asset_check(
    specs=[FRESHNESS_SPEC],
    name=CHECK_NAME,
    description="Is each symbol's last validated bar current on its exchange calendar?",
)
def ohlcv_freshness(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake, market_data: MarketData
) -> Iterator[AssetCheckEvaluation | dg.Output]:
    symbols = list(context.partition_keys)
    run_date = market_data.run_date(UNIVERSE)
    threshold = market_data.max_sessions_behind
    calendars = {i.symbol: i.calendar for i in UNIVERSE.instruments}
    verdicts = freshness(last_dates(lake, symbols), calendars, run_date, threshold)
    for row in verdicts.iter_rows(named=True):  # one event per partition, not per bar
        if row["stale"]:
            context.log.warning(stale_note(row, run_date))
        yield evaluation(row, run_date, threshold)
    yield from check_outputs("ohlcv", [CHECK_NAME])
