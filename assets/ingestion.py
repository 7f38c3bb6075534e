"""Ingestion: ``raw_ohlcv``, the bars exactly as each source delivered them, per symbol.

All requested symbols are fetched in ONE step of ONE run (single-run backfill policy): the
sample source reads its Parquet file once for the whole panel, and no per-symbol process is
started (each Dagster step costs seconds of interpreter start-up on its own).
"""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets.metadata import BAR_SCHEMA, column_schema
from assets.partitions import symbol_partitions
from quant.bars import content_hash, count_new_dates, merge_deliveries
from quant.universe import InvalidSymbolError
from resources.lake import ParquetLake
from resources.landing import LandedDelivery, RawLanding
from resources.market_data import MarketData
from resources.sources import BarSource, Delivery, DeliveryMode, SourceError

ASSET = "raw_ohlcv"


@dataclass(frozen=True)
class IngestedSymbol:
    """The new content of one partition and how it came about."""

    symbol: str
    bars: pl.DataFrame
    delivery: Delivery
    landed: LandedDelivery
    new_rows: int
    previous_rows: int

    @property
    def content_hash(self) -> str:
        return content_hash(self.bars)

    def metadata(self) -> dict[str, object]:
        dates = self.bars.get_column("date")
        return {
            "dagster/row_count": self.bars.height,
            "symbol": self.symbol,
            "first_date": str(dates.min()),
            "last_date": str(dates.max()),
            "source": self.delivery.source,
            "delivery_mode": self.delivery.mode.value,
            "content_hash": self.content_hash,
            "new_rows": self.new_rows,
            "previous_rows": self.previous_rows,
            "delivered_rows": self.delivery.bars.height,
            "landing_receipt": dg.MetadataValue.path(str(self.landed.receipt)),
        }


def ingest_symbol(
    source: BarSource, landing: RawLanding, symbol: str, stored: pl.DataFrame | None
) -> IngestedSymbol:
    """Fetch one symbol, land the delivery, and compute the partition's new content."""
    last_stored = stored.get_column("date").max() if stored is not None and stored.height else None
    delivery = source.fetch(symbol, last_stored=last_stored)
    if delivery.bars.is_empty():
        raise SourceError(symbol, f"{delivery.source} delivered no bars")
    landed = landing.land(delivery)
    if delivery.mode is DeliveryMode.INCREMENTAL:
        bars = merge_deliveries(stored, delivery.bars)
    else:
        bars = delivery.bars
    return IngestedSymbol(
        symbol=symbol,
        bars=bars,
        delivery=delivery,
        landed=landed,
        new_rows=count_new_dates(stored, bars),
        previous_rows=0 if stored is None else stored.height,
    )


def _summary_table(results: list[IngestedSymbol]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "symbol": r.symbol,
                    "rows": r.bars.height,
                    "first_date": str(r.bars["date"].min()),
                    "last_date": str(r.bars["date"].max()),
                    "new_rows": r.new_rows,
                    "content_hash": r.content_hash[:12],
                }
            )
            for r in results
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("symbol", "string"),
                dg.TableColumn("rows", "int"),
                dg.TableColumn("first_date", "string"),
                dg.TableColumn("last_date", "string"),
                dg.TableColumn("new_rows", "int"),
                dg.TableColumn("content_hash", "string"),
            ]
        ),
    )


@dg.asset(
    partitions_def=symbol_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingestion",
    io_manager_key="lake_io_manager",
    kinds={"polars", "parquet"},
    owners=["team:data-engineering"],
    tags={"layer": "ingestion"},
    code_version="1",
    metadata={
        "dagster/column_schema": column_schema(
            {**BAR_SCHEMA, "adj_close": ("float64", "close adjusted for splits and dividends")}
        )
    },
)
def raw_ohlcv(
    context: dg.AssetExecutionContext,
    market_data: MarketData,
    lake: ParquetLake,
    landing: RawLanding,
) -> dict[str, pl.DataFrame]:
    """Daily bars per symbol as delivered by the configured source (sample, csv or yahoo).

    Every delivery is also kept in the append-only raw landing area. If any symbol fails to
    fetch, the step fails naming each one and no partition is overwritten.
    """
    source = market_data.build()
    results: list[IngestedSymbol] = []
    failures: dict[str, str] = {}
    for symbol in context.partition_keys:
        try:
            result = ingest_symbol(source, landing, symbol, lake.read_if_exists(ASSET, symbol))
        except (SourceError, InvalidSymbolError) as exc:
            failures[symbol] = str(exc)
            context.log.error(f"fetch failed: {exc}")
            continue
        results.append(result)
        context.add_asset_metadata(result.metadata(), partition_key=symbol)
    if failures:
        raise dg.Failure(
            description=(
                f"{len(failures)} of {len(context.partition_keys)} symbol(s) could not be fetched "
                f"from {source.name}; nothing was written:\n"
                + "\n".join(f"- {message}" for message in failures.values())
            ),
            metadata={"failed_symbols": sorted(failures), "source": source.name},
        )
    context.add_asset_metadata(
        {
            "run_symbols": len(results),
            "run_rows": sum(r.bars.height for r in results),
            "run_new_rows": sum(r.new_rows for r in results),
            "run_summary": _summary_table(results),
        }
    )
    return {r.symbol: r.bars for r in results}
