"""features and market_context on a real Dagster instance: green checks on the real sample, and
the blocking look-ahead check stopping a deliberately leaky feature."""

import dagster as dg
import polars as pl
import pytest

import assets.features as feature_assets
import quant.features.engine as engine
from assets.features import features, features_no_lookahead, features_quality, market_context
from assets.ingestion import raw_ohlcv
from assets.partitions import UNIVERSE
from assets.validation import ohlcv
from quant.features import FEATURES, Family, Feature
from tests.conftest import make_resources
from tests.support.runs import materializations, range_tags

pytestmark = pytest.mark.slow
FIRST, LAST = UNIVERSE.symbols[0], UNIVERSE.symbols[-1]
FEATURE_SELECTION = dg.AssetSelection.assets("features") | dg.AssetSelection.checks_for_assets(
    "features"
)
ALL = [raw_ohlcv, ohlcv, features, features_no_lookahead, features_quality, market_context]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every symbol ingested and validated (one run each stage), on its own instance."""
    data_dir = tmp_path_factory.mktemp("features") / "data"
    data_dir.mkdir()
    resources = make_resources(data_dir)
    with dg.instance_for_test() as instance:
        tags = range_tags(FIRST, LAST)
        for selection in (["raw_ohlcv"], ["ohlcv", "ohlcv_quarantine"]):
            result = dg.materialize(
                ALL, selection=selection, instance=instance, resources=resources, tags=tags
            )
            assert result.success, selection
        yield resources, instance


def run_features(pipeline) -> dg.ExecuteInProcessResult:
    resources, instance = pipeline
    return dg.materialize(
        ALL,
        selection=FEATURE_SELECTION,
        instance=instance,
        resources=resources,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )


def verdicts(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_features_materialize_for_every_symbol_with_green_checks(pipeline):
    result = run_features(pipeline)
    assert result.success
    checks = verdicts(result)
    assert set(checks) == {
        "features_no_lookahead",
        "features_null_share",
        "features_no_infinities",
        "features_variance",
    }
    assert all(c.passed for c in checks.values())
    assert checks["features_no_lookahead"].metadata["rows_compared"].value > 20_000
    written = materializations(result, "features")
    assert set(written) == set(UNIVERSE.symbols)
    aapl = written["AAPL"].metadata
    assert aapl["features"].value == len(FEATURES) and aapl["dagster/row_count"].value > 2000
    resources, _ = pipeline
    stored = resources["lake"].read("features", "AAPL")
    assert stored.width == len(FEATURES) + 2


def test_market_context_materializes_from_all_symbols(pipeline):
    resources, instance = pipeline
    result = dg.materialize(
        ALL, selection=["market_context"], instance=instance, resources=resources
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("market_context")
    assert event.metadata["symbols"].value == len(UNIVERSE.symbols)
    assert event.metadata["lagged_one_us_session"].value == ["^NSEBANK", "^NSEI"]
    stored = resources["lake"].read("market_context")
    assert stored.filter(pl.col("symbol") == "AAPL")["beta_60"].drop_nulls().len() > 1500


def test_a_leaky_feature_fails_the_blocking_check(pipeline, monkeypatch):
    c = pl.col("close")
    leaky = Feature(
        "zscore_full_sample",
        Family.STATISTICAL,
        (c - c.mean().over("symbol")) / c.std().over("symbol"),
        warmup=0,
        description="LEAKY: standardized with the mean and deviation of the whole history",
    )
    monkeypatch.setattr(engine, "FEATURES", [*FEATURES, leaky])
    monkeypatch.setattr(feature_assets, "FEATURES", [*FEATURES, leaky])
    result = run_features(pipeline)
    assert not result.success
    check = verdicts(result)["features_no_lookahead"]
    assert not check.passed
    leaking = check.metadata["leaking_features"].value
    assert list(leaking) == ["zscore_full_sample"]
    assert leaking["zscore_full_sample"]["rows_changed"] > 0
