"""pattern_insights on a real Dagster instance: a few symbols of the real sample written as
validated ``ohlcv`` partitions, the table written to the lake with its schema and metadata."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from assets.patterns import pattern_insights
from assets.validation import ohlcv
from quant.patterns.study import INSIGHT_SCHEMA
from quant.validation.adjust import adjust_prices
from tests.conftest import make_resources

pytestmark = pytest.mark.slow
SYMBOLS = ["^GSPC", "^VIX", "AAPL", "MSFT", "JPM"]


def test_pattern_insights_materializes_from_the_validated_bars(data_dir, instance, sample_panel):
    resources = make_resources(data_dir)
    raw = sample_panel.filter(
        pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= date(2018, 1, 1))
    )
    for (symbol,), bars in adjust_prices(raw).partition_by("symbol", as_dict=True).items():
        resources["lake"].write("ohlcv", bars, symbol)  # the other symbols: never validated
    result = dg.materialize(
        [ohlcv, pattern_insights],
        selection=["pattern_insights"],
        instance=instance,
        resources=resources,
        run_config={"ops": {"pattern_insights": {"config": {"resamples": 100}}}},
    )
    assert result.success
    stored = resources["lake"].read("pattern_insights")
    assert stored.schema == pl.Schema(INSIGHT_SCHEMA)
    assert set(stored["symbol"]) == {*SYMBOLS, "EQUITIES"}
    assert set(stored["horizon"]) == {1, 5, 20}
    assert stored.filter(pl.col("symbol") == "^VIX", pl.col("event") == "vix_spike").is_empty()
    assert stored.filter(pl.col("symbol") == "^GSPC", pl.col("event") == "volume_spike").is_empty()
    (event,) = result.asset_materializations_for_node("pattern_insights")
    meta = event.metadata
    tested = meta["cells_tested"].value
    assert meta["dagster/row_count"].value == stored.height
    assert tested == stored["p_value"].is_not_null().sum() > 500
    assert meta["insights"].value == stored["insight"].sum()
    assert meta["verdict"].value.endswith(
        f"out of {tested:,} cells after BH at 5 % and a holdout check"
    )
    assert "| scope | symbol | event |" in meta["top_insights"].value
    schema = pattern_insights.metadata_by_key[dg.AssetKey("pattern_insights")]
    assert [c.name for c in schema["dagster/column_schema"].columns] == list(INSIGHT_SCHEMA)
