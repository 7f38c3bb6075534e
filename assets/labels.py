"""Labels: the forward-looking targets per (symbol, date), from the adjusted bars and the VIX
as each symbol's market context sees it. The work is in ``quant.labels``."""

import dagster as dg
import polars as pl

from assets.metadata import date_range, md
from assets.partitions import UNIVERSE, symbol_partitions
from quant.labels import DIRECTION_NAMES, LABEL_COLUMNS, REGIME_NAMES, compute_labels
from resources.modeling import ModelingConfig, anchor_symbols


def _shares(frame: pl.DataFrame, column: str, names: list[str]) -> dict[str, float]:
    values = frame[column].drop_nulls()
    total = max(values.len(), 1)
    return {name: round(float((values == i).sum()) / total, 4) for i, name in enumerate(names)}


@dg.asset(
    ins={"ohlcv": dg.AssetIn("ohlcv"), "market_context": dg.AssetIn("market_context")},
    partitions_def=symbol_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="lake_io_manager",
    group_name="labels",
    kinds={"polars", "parquet"},
    owners=["team:quant-research"],
    tags={"layer": "labels"},
    code_version="2",
    description="Forward-looking targets per (symbol, date): next-session direction class and "
    "return, realized volatility of the next 20 sessions, and the regime of the next 20 sessions "
    "(thresholds estimated on the training window only: the rolling window's, which moves with "
    "the data), with the trailing twins the baselines "
    "use. The last sessions of each symbol have null forward labels: their future is unknown.",
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn("symbol", "string"),
                dg.TableColumn("date", "date"),
                *[dg.TableColumn(n, "float64", description=d) for n, d in LABEL_COLUMNS.items()],
            ]
        ),
    },
)
def labels(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    ohlcv: pl.DataFrame,
    market_context: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """Labels for the run's symbols in one vectorized pass."""
    config = modeling.label_config(anchor_symbols(UNIVERSE))
    bars = ohlcv.select("symbol", "date", "close")
    computed, thresholds = compute_labels(bars, market_context, config)
    by_symbol = computed.partition_by("symbol", as_dict=True)
    out = {}
    for symbol in context.partition_keys:
        if (symbol,) not in by_symbol:  # no validated bars: blocked before its first validation
            context.add_asset_metadata(
                {"status": "no validated bars (blocked): nothing written"}, partition_key=symbol
            )
            continue
        frame = by_symbol[(symbol,)]
        threshold = thresholds.table.filter(pl.col("symbol") == symbol)
        context.add_asset_metadata(
            {
                "dagster/row_count": frame.height,
                **date_range(frame),
                "labeled_rows": frame.drop_nulls(["direction", "fwd_vol_20", "regime"]).height,
                "direction_share": dg.MetadataValue.json(
                    _shares(frame, "direction", DIRECTION_NAMES)
                ),
                "regime_share": dg.MetadataValue.json(_shares(frame, "regime", REGIME_NAMES)),
                "regime_thresholds": md(threshold.drop("symbol")),
                "thresholds_fitted_through": str(thresholds.fitted_through),
            },
            partition_key=symbol,
        )
        out[symbol] = frame
    return out
