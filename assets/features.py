"""Features: ``features`` (per symbol) and ``market_context`` (cross-sectional), with the checks
that keep them honest: a blocking look-ahead proof and blocking sanity checks.

Both read the validated, adjusted ``ohlcv``. The work is in ``quant.features``; these functions
move frames between the lake and it and describe the result.
"""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from assets.metadata import markdown_table
from assets.partitions import UNIVERSE, symbol_partitions
from quant.features import FEATURES, compute_features
from quant.features.context import CONTEXT_COLUMNS, ContextSpec, compute_market_context
from quant.features.docs import catalog_table
from quant.features.lookahead import find_lookahead
from quant.features.quality import MAX_NULL_SHARE, MIN_VARIANCE, assess_features
from quant.universe import AssetClass
from quant.validation.calendars import closes_before
from resources.lake import ParquetLake

BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]


def _column_schema(columns: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn("symbol", "string", description="Yahoo ticker"),
            dg.TableColumn("date", "date", description="session date"),
            *[dg.TableColumn(name, "float64", description=text) for name, text in columns.items()],
        ]
    )


def _ohlcv_lineage() -> dg.TableColumnLineage:
    """Each feature reads (a subset of) the adjusted bar columns of ``ohlcv``."""
    price = [
        dg.TableColumnDep(asset_key=dg.AssetKey("ohlcv"), column_name=c) for c in BAR_COLUMNS[2:]
    ]
    return dg.TableColumnLineage(deps_by_column={f.name: price for f in FEATURES})


def _bars(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(BAR_COLUMNS)


@dg.asset(
    ins={"ohlcv": dg.AssetIn("ohlcv")},
    partitions_def=symbol_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="lake_io_manager",
    group_name="features",
    kinds={"polars", "parquet"},
    owners=["team:quant-research"],
    tags={"layer": "features"},
    code_version="1",
    description=f"{len(FEATURES)} technical features per (symbol, date) in six families, from the "
    "adjusted bars; price-level indicators expressed relative to price so one model can pool all "
    "symbols. Null during each feature's warm-up.",
    metadata={
        "feature_count": len(FEATURES),
        "features_with_talib_reference": sum(1 for f in FEATURES if f.reference),
        "catalog": dg.MetadataValue.md(catalog_table()),
        "dagster/column_schema": _column_schema({f.name: f.description for f in FEATURES}),
        "dagster/column_lineage": _ohlcv_lineage(),
    },
)
def features(context: dg.AssetExecutionContext, ohlcv: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """All features for the run's symbols in one vectorized pass."""
    computed = compute_features(_bars(ohlcv)).partition_by("symbol", as_dict=True)
    out = {}
    for symbol in context.partition_keys:
        if (symbol,) not in computed:  # no validated bars: blocked before its first validation
            context.add_asset_metadata(
                {"status": "no validated bars (blocked): nothing written"}, partition_key=symbol
            )
            continue
        frame = computed[(symbol,)]
        dates = frame["date"]
        context.add_asset_metadata(
            {
                "dagster/row_count": frame.height,
                "first_date": str(dates.min()),
                "last_date": str(dates.max()),
                "features": len(FEATURES),
                "complete_rows": frame.drop_nulls().height,
            },
            partition_key=symbol,
        )
        out[symbol] = frame
    return out


def _symbols_without_volume() -> list[str]:
    return [i.symbol for i in UNIVERSE.instruments if i.asset_class is not AssetClass.EQUITY]


@dg.asset_check(
    asset="features",
    blocking=True,
    partitions_def=symbol_partitions,
    description="No look-ahead: features recomputed on the bars truncated at four cut dates must "
    "equal the stored values at or before each cut, bit for bit.",
)
def features_no_lookahead(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake
) -> dg.AssetCheckResult:
    stored, _ = lake.read_available("features", context.partition_keys)
    symbols = stored["symbol"].unique().sort().to_list()
    bars = _bars(lake.read_partitions("ohlcv", symbols))
    report = find_lookahead(bars, compute_features, full=stored)
    metadata: dict[str, object] = {
        "cut_dates": [str(c) for c in report.cuts],
        "rows_compared": report.rows_compared,
        "features_compared": len(stored.columns) - 2,
        "symbols": len(symbols),
    }
    if report.leaking:
        metadata["leaking_features"] = dg.MetadataValue.json(report.leaking)
    return dg.AssetCheckResult(
        passed=report.passed,
        metadata=metadata,
        description="no feature changed its past when the future was removed"
        if report.passed
        else f"look-ahead in {sorted(report.leaking)}",
    )


QUALITY_RULES = {
    "null_share": f"share of nulls after each feature's warm-up < {MAX_NULL_SHARE:.0%} (volume "
    "features judged on instruments that report volume)",
    "no_infinities": "no feature takes an infinite value",
    "variance": f"every feature varies (variance > {MIN_VARIANCE:g}): a constant feature is a bug",
}


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            f"features_{rule}",
            asset="features",
            blocking=True,
            partitions_def=symbol_partitions,
            description=text,
        )
        for rule, text in QUALITY_RULES.items()
    ],
    name="features_quality",
    description="Sanity of every feature column: nulls after warm-up, infinities, variance.",
)
def features_quality(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake
) -> Iterator[dg.AssetCheckResult]:
    stored, _ = lake.read_available("features", context.partition_keys)
    quality = assess_features(stored, FEATURES, _symbols_without_volume())
    for rule in QUALITY_RULES:
        failing = quality.failing(rule)
        metadata: dict[str, object] = {
            "features_checked": quality.table.height,
            "features_failing": failing.height,
        }
        if rule == "null_share":
            metadata["worst_null_share"] = float(quality.table["null_share"].max() or 0.0)
        if failing.height:
            metadata["failing"] = dg.MetadataValue.md(markdown_table(failing))
        yield dg.AssetCheckResult(
            check_name=f"features_{rule}",
            passed=failing.height == 0,
            metadata=metadata,
            description="all features pass"
            if failing.height == 0
            else f"{failing.height} feature(s) fail: {failing['name'].to_list()}",
        )


def context_spec() -> ContextSpec:
    """Roles from the universe: the volatility index, the benchmark, the equities, and which
    markets close before the benchmark's (their context is lagged one US session)."""
    instruments = UNIVERSE.instruments
    volatility = [i.symbol for i in instruments if i.sector == "volatility"]
    benchmark = "^GSPC" if any(i.symbol == "^GSPC" for i in instruments) else None
    if not volatility or benchmark is None:
        raise ValueError("market_context needs a volatility index (sector: volatility) and ^GSPC")
    reference = UNIVERSE.get(benchmark).calendar
    return ContextSpec(
        volatility_index=volatility[0],
        benchmark=benchmark,
        equities=tuple(i.symbol for i in instruments if i.asset_class is AssetClass.EQUITY),
        closes_before_benchmark=frozenset(
            i.symbol for i in instruments if closes_before(i.calendar, reference)
        ),
    )


@dg.asset(
    ins={"ohlcv": dg.AssetIn("ohlcv")},
    io_manager_key="lake_io_manager",
    group_name="features",
    kinds={"polars", "parquet"},
    owners=["team:quant-research"],
    tags={"layer": "features"},
    code_version="2",
    description="Market-wide context joined onto every (symbol, date): volatility index, S&P 500 "
    "trend, breadth of the equities, and each symbol's beta, correlation and relative strength "
    "to the S&P 500. Joined as of the symbol's close, never with a later value (markets closing "
    "before New York see the previous US session; every symbol but the volatility index sees "
    "the volatility index's previous session, as its close prints at 4:15 pm ET).",
    metadata={"dagster/column_schema": _column_schema(CONTEXT_COLUMNS)},
)
def market_context(context: dg.AssetExecutionContext, ohlcv: pl.DataFrame) -> pl.DataFrame:
    spec = context_spec()
    frame = compute_market_context(_bars(ohlcv), spec)
    context.add_output_metadata(
        {
            "dagster/row_count": frame.height,
            "symbols": frame["symbol"].n_unique(),
            "first_date": str(frame["date"].min()),
            "last_date": str(frame["date"].max()),
            "volatility_index": spec.volatility_index,
            "benchmark": spec.benchmark,
            "lagged_one_us_session": sorted(spec.closes_before_benchmark),
            "latest_benchmark_row": dg.MetadataValue.md(
                markdown_table(
                    frame.filter(pl.col("symbol") == spec.benchmark)
                    .tail(1)
                    .drop("symbol", "date")
                    .transpose(include_header=True, header_name="context", column_names=["value"])
                )
            ),
        }
    )
    return frame
