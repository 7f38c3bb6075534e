"""compute_features: warm-ups as declared, symbols independent, no look-ahead, sane columns."""

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant.features import FEATURES, Family, Feature, compute_features, feature_names
from quant.features.lookahead import default_cut_dates, find_lookahead
from quant.features.quality import assess_features

BARS = ["symbol", "date", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def bars(sample_panel) -> pl.DataFrame:
    """The real sample from 2018 (what the pipeline uses), raw prices are fine here."""
    return sample_panel.filter(pl.col("date") >= date(2018, 1, 1)).select(BARS)


@pytest.fixture(scope="module")
def computed(bars) -> pl.DataFrame:
    return compute_features(bars)


def test_output_shape(bars, computed):
    assert computed.columns == ["symbol", "date", *feature_names()]
    assert computed.height == bars.height
    assert computed.select(pl.exclude("symbol", "date")).dtypes == [pl.Float64] * len(FEATURES)
    assert computed.select("symbol", "date").equals(
        bars.select("symbol", "date").sort("symbol", "date")
    )


def test_first_value_appears_exactly_after_the_declared_warmup(computed):
    aapl = computed.filter(pl.col("symbol") == "AAPL")  # no gaps, volume every day
    for feature in FEATURES:
        values = aapl[feature.name]
        first = int(values.is_not_null().arg_true()[0])
        assert first == feature.warmup, f"{feature.name}: first value at {first}"
        assert values[feature.warmup :].null_count() == 0, feature.name


def test_a_lazy_frame_in_any_order_gives_the_same_result(bars, computed):
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=7).lazy()
    assert compute_features(shuffled).equals(computed)


def test_symbols_do_not_influence_each_other(bars, computed):
    """The panel result for a symbol equals the result computed on that symbol alone, bit for bit
    (window operations over the whole column must never reach into the previous symbol)."""
    for symbol in ["AAPL", "^NSEBANK", "^VIX"]:
        alone = compute_features(bars.filter(pl.col("symbol") == symbol))
        assert alone.equals(computed.filter(pl.col("symbol") == symbol)), symbol


def test_batches_give_the_same_result(bars, computed):
    assert compute_features(bars, symbols_per_batch=5).equals(computed)


def test_missing_columns_are_named(bars):
    with pytest.raises(ValueError, match="missing \\['volume'\\]"):
        compute_features(bars.drop("volume"))


def test_no_feature_changes_its_past_when_the_future_is_removed(bars, computed):
    report = find_lookahead(bars, compute_features, full=computed)
    assert len(report.cuts) == 4 and report.rows_compared > 50_000
    assert report.passed, report.leaking


def leaky_features() -> list[Feature]:
    """Two classic leaks: a full-sample z-score and a centred moving average."""
    c = pl.col("close")
    return [
        *FEATURES[:3],
        Feature(
            "zscore_full_sample",
            Family.STATISTICAL,
            ((c - c.mean().over("symbol")) / c.std().over("symbol")),
            warmup=0,
            description="LEAKY: standardized with the whole history's mean and deviation",
        ),
        Feature(
            "centred_sma_5",
            Family.TREND,
            c / c.rolling_mean(5, center=True).over("symbol") - 1,
            warmup=2,
            description="LEAKY: a centred window reads two sessions ahead",
        ),
    ]


def test_leaky_features_are_caught(bars):
    features = leaky_features()
    report = find_lookahead(bars, lambda b: compute_features(b, features))
    assert set(report.leaking) == {"zscore_full_sample", "centred_sma_5"}
    first = report.leaking["centred_sma_5"]
    assert first["rows_changed"] >= 1 and first["first_symbol"]


def test_cut_dates_are_inside_the_sample():
    dates = pl.Series([date(2020, 1, d) for d in range(1, 31)])
    cuts = default_cut_dates(dates)
    assert len(cuts) == 4 and max(cuts) < date(2020, 1, 30) and min(cuts) > date(2020, 1, 1)


def test_quality_passes_on_the_real_sample(computed):
    indices = ["^GSPC", "^IXIC", "^DJI", "^NSEI", "^NSEBANK", "^VIX"]
    quality = assess_features(computed, FEATURES, indices)
    for rule in ("null_share", "no_infinities", "variance"):
        assert quality.failing(rule).is_empty(), (rule, quality.failing(rule))


def test_quality_flags_constant_infinite_and_empty_features(computed):
    broken = computed.with_columns(
        pl.lit(1.0).alias("rsi_14"),
        pl.when(pl.col("date") == date(2020, 3, 16))
        .then(np.inf)
        .otherwise(pl.col("cci_20"))
        .alias("cci_20"),
        pl.when(pl.col("date").dt.year() >= 2020)
        .then(None)
        .otherwise(pl.col("adx_14"))
        .alias("adx_14"),
    )
    quality = assess_features(broken, FEATURES)
    assert quality.failing("variance")["name"].to_list() == ["rsi_14"]
    assert quality.failing("no_infinities")["name"].to_list() == ["cci_20"]
    assert "adx_14" in quality.failing("null_share")["name"].to_list()
