"""Ingestion: ``raw_ohlcv``, the bars exactly as each source delivered them, per symbol.

All requested symbols are fetched in ONE step of ONE run (single-run backfill policy): the
sample source reads its Parquet file once for the whole panel, and no per-symbol process is
started (each Dagster step costs seconds of interpreter start-up on its own).

Each symbol stands alone: one that cannot be fetched, or whose delivery would replace stored
history by less (a snapshot missing stored dates, e.g. a truncated file or an earlier as-of),
keeps its stored partition and fails its own ``raw_ohlcv_delivery`` check, while the others
are written. Every delivery is landed in the raw landing first, accepted or not. Replacing
history on purpose takes ``replace_history: true`` in the run config.
"""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets.metadata import BAR_SCHEMA, column_schema
from assets.partition_checks import check_output_name, partition_evaluation
from assets.partitions import symbol_partitions
from quant.bars import content_hash, count_new_dates, lost_history, merge_deliveries
from quant.universe import InvalidSymbolError
from resources.lake import LakeReadError, ParquetLake
from resources.landing import LandedDelivery, RawLanding
from resources.market_data import MarketData
from resources.sources import BarSource, Delivery, DeliveryMode, SourceError

ASSET = "raw_ohlcv"
DELIVERY_CHECK = "delivery"
DELIVERY_SPEC = dg.AssetCheckSpec(
    DELIVERY_CHECK,
    asset=ASSET,
    blocking=False,
    partitions_def=symbol_partitions,
    description="The symbol was fetched and its delivery accepted: it reached the source, and "
    "it does not replace stored history by less (a snapshot that drops stored dates is refused "
    "unless the run sets replace_history).",
)


class HistoryShrinkError(ValueError):
    """A delivery would replace stored bars by fewer: refused, the stored partition is kept."""


class IngestConfig(dg.Config):
    """``replace_history``: accept a snapshot that drops stored dates (on purpose: a vendor's
    corrected history). Replays of an earlier as-of belong in their own data folder."""

    replace_history: bool = False


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
    source: BarSource,
    landing: RawLanding,
    symbol: str,
    stored: pl.DataFrame | None,
    replace_history: bool = False,
) -> IngestedSymbol:
    """Fetch one symbol, land the delivery, and compute the partition's new content; refuse
    (``HistoryShrinkError``) content that would lose stored dates unless ``replace_history``."""
    last_stored = stored.get_column("date").max() if stored is not None and stored.height else None
    delivery = source.fetch(symbol, last_stored=last_stored)
    if delivery.bars.is_empty():
        raise SourceError(symbol, f"{delivery.source} delivered no bars")
    landed = landing.land(delivery)
    if delivery.mode is DeliveryMode.INCREMENTAL:
        bars = merge_deliveries(stored, delivery.bars)
    else:
        bars = delivery.bars
    lost = lost_history(stored, bars)
    if lost.height and not replace_history:
        raise HistoryShrinkError(
            f"{symbol}: the {delivery.source} delivery ({delivery.bars.height} rows, "
            f"{_span(delivery.bars)}; landed as {landed.bars_file}) would replace "
            f"{stored.height} stored rows ({_span(stored)}) and lose {lost.height} stored "
            f"date(s), first {lost['date'].min()}, last {lost['date'].max()}. Refused: the "
            "stored partition is kept. If the source corrected its history on purpose, rerun "
            "with replace_history (`market materialize --symbols "
            f"{symbol} --replace-history`); to replay an earlier as-of use its own data folder "
            "(`make replay`)"
        )
    return IngestedSymbol(
        symbol=symbol,
        bars=bars,
        delivery=delivery,
        landed=landed,
        new_rows=count_new_dates(stored, bars),
        previous_rows=0 if stored is None else stored.height,
    )


def _span(bars: pl.DataFrame) -> str:
    dates = bars.get_column("date")
    return f"{dates.min()} .. {dates.max()}" if bars.height else "empty"


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
    code_version="2",
    check_specs=[DELIVERY_SPEC],
    metadata={
        "dagster/column_schema": column_schema(
            {**BAR_SCHEMA, "adj_close": ("float64", "close adjusted for splits and dividends")}
        )
    },
)
def raw_ohlcv(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    market_data: MarketData,
    lake: ParquetLake,
    landing: RawLanding,
):
    """Daily bars per symbol as delivered by the configured source (sample, csv or yahoo).

    Every delivery is also kept in the append-only raw landing area. A symbol that fails to
    fetch, or whose delivery would lose stored history, keeps its stored partition and fails
    its own delivery check; the step fails only when no symbol was accepted.
    """
    source = market_data.build()
    results: list[IngestedSymbol] = []
    failures: dict[str, str] = {}
    for symbol in context.partition_keys:
        try:
            stored = lake.read_if_exists(ASSET, symbol)
            result = ingest_symbol(source, landing, symbol, stored, config.replace_history)
        except (SourceError, InvalidSymbolError, HistoryShrinkError, LakeReadError) as exc:
            failures[symbol] = str(exc)
            context.log.error(f"{symbol} not ingested: {exc}")
            continue
        results.append(result)
        context.add_asset_metadata(
            {**result.metadata(), "status": "ingested"}, partition_key=symbol
        )
    check_selected = (
        dg.AssetCheckKey(dg.AssetKey(ASSET), DELIVERY_CHECK) in context.selected_asset_check_keys
    )
    for symbol, message in failures.items():
        context.add_asset_metadata(
            {"status": f"NOT INGESTED: the stored partition is kept ({message})"},
            partition_key=symbol,
        )
        if check_selected:
            yield partition_evaluation(
                ASSET,
                DELIVERY_CHECK,
                symbol,
                False,
                dg.AssetCheckSeverity.ERROR,
                message,
                {"symbol": symbol, "kept": "the stored partition, unchanged"},
            )
    if not results:
        raise dg.Failure(
            description=(
                f"none of the {len(context.partition_keys)} symbol(s) could be ingested "
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
            "run_failed_symbols": sorted(failures),
            "run_summary": _summary_table(results),
        }
    )
    yield dg.Output({r.symbol: r.bars for r in results})
    if check_selected:
        for result in results:
            yield partition_evaluation(
                ASSET,
                DELIVERY_CHECK,
                result.symbol,
                True,
                dg.AssetCheckSeverity.ERROR,
                f"{result.symbol}: {result.bars.height} rows accepted ({result.new_rows} new)",
                {"symbol": result.symbol, "rows": result.bars.height, "new_rows": result.new_rows},
            )
        yield dg.Output(None, output_name=check_output_name(ASSET, DELIVERY_CHECK))
