"""Market context: as-of joins that never look ahead, across calendars that do not line up."""

from datetime import date

import polars as pl
import pytest

from quant.features.context import CONTEXT_COLUMNS, ContextSpec, compute_market_context
from quant.universe import AssetClass, load_universe
from quant.validation.calendars import closes_before

BARS = ["symbol", "date", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def spec() -> ContextSpec:
    universe = load_universe()
    return ContextSpec(
        volatility_index="^VIX",
        benchmark="^GSPC",
        equities=tuple(
            i.symbol for i in universe.instruments if i.asset_class is AssetClass.EQUITY
        ),
        closes_before_benchmark=frozenset(
            i.symbol for i in universe.instruments if closes_before(i.calendar, "NYSE")
        ),
    )


@pytest.fixture(scope="module")
def bars(sample_panel) -> pl.DataFrame:
    return sample_panel.filter(pl.col("date") >= date(2018, 1, 1)).select(BARS)


@pytest.fixture(scope="module")
def context(bars, spec) -> pl.DataFrame:
    return compute_market_context(bars, spec)


def test_indian_indices_are_the_markets_that_close_before_new_york(spec):
    assert spec.closes_before_benchmark == {"^NSEI", "^NSEBANK"}


def test_one_row_per_symbol_date(bars, context):
    assert context.columns == ["symbol", "date", *CONTEXT_COLUMNS]
    assert context.select("symbol", "date").equals(
        bars.select("symbol", "date").sort("symbol", "date")
    )


def _vix(bars):
    return bars.filter(pl.col("symbol") == "^VIX").select("date", pl.col("close").alias("vix"))


def test_us_symbols_see_the_same_session_and_nse_only_the_previous_us_session(bars, context):
    vix = _vix(bars).sort("date")
    aapl = context.filter(pl.col("symbol") == "AAPL").join(vix, on="date", how="inner")
    assert (aapl["vix_level"] == aapl["vix"]).all()

    nsei = context.filter(pl.col("symbol") == "^NSEI").drop_nulls("vix_level").sort("date")
    expected = nsei.select("date").join_asof(
        vix.rename({"date": "vix_date"}),
        left_on="date",
        right_on="vix_date",
        allow_exact_matches=False,
    )
    assert (expected["vix_date"] < nsei["date"]).all()
    assert (nsei["vix_level"] == expected["vix"]).all()


def test_context_never_changes_its_past_when_the_future_is_removed(bars, spec, context):
    for cut in (date(2019, 6, 28), date(2022, 3, 15), date(2024, 11, 29)):
        truncated = compute_market_context(bars.filter(pl.col("date") <= cut), spec)
        assert truncated.equals(context.filter(pl.col("date") <= cut)), cut


def test_values_are_in_range(context):
    for column in ("breadth_50", "breadth_200", "spx_above_sma_50"):
        values = context[column].drop_nulls()
        assert values.min() >= 0 and values.max() <= 1
    gspc = context.filter(pl.col("symbol") == "^GSPC").drop_nulls("beta_60")
    assert gspc["beta_60"].to_numpy() == pytest.approx(1.0)
    assert gspc["corr_60"].to_numpy() == pytest.approx(1.0)
    vix = context.filter(pl.col("symbol") == "^VIX")["corr_60"].drop_nulls()
    assert vix.mean() < -0.5  # the volatility index moves against the market
    nulls = context.filter(pl.col("date") >= date(2019, 1, 1)).null_count()
    assert nulls.select(pl.sum_horizontal(pl.all())).item() == 0


def test_a_missing_benchmark_is_named(bars, spec):
    with pytest.raises(ValueError, match="benchmark '\\^GSPC'"):
        compute_market_context(bars.filter(pl.col("symbol") != "^GSPC"), spec)
