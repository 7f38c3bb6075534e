"""Labels, training set, the six models and the report through Dagster on a real instance, with
a temporary MLflow store: every model registered, the first as champion, a retrain judged as
challenger on the same test window."""

import dagster as dg
import polars as pl
import pytest

from assets import evaluation, features, ingestion, labels, training, tuning, validation
from assets.partitions import UNIVERSE
from quant.models import MODEL_FAMILIES
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking, load_champions
from tests.conftest import make_resources
from tests.support.runs import range_tags

pytestmark = pytest.mark.slow
FIRST, LAST = UNIVERSE.symbols[0], UNIVERSE.symbols[-1]
ALL = dg.load_assets_from_modules(
    [ingestion, validation, features, labels, training, tuning, evaluation]
)
RETRAIN = ["training_set", *MODEL_FAMILIES, "model_report"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every symbol ingested, validated, with features, context and labels, on one instance."""
    root = tmp_path_factory.mktemp("models")
    data_dir = root / "data"
    data_dir.mkdir()
    resources = make_resources(data_dir)
    with dg.instance_for_test() as instance:
        tags = range_tags(FIRST, LAST)
        for selection in (["raw_ohlcv"], ["ohlcv", "ohlcv_quarantine"], ["features"]):
            result = dg.materialize(
                ALL, selection=selection, instance=instance, resources=resources, tags=tags
            )
            assert result.success, selection
        for selection, run_tags in ((["market_context"], {}), (["labels"], tags)):
            result = dg.materialize(
                ALL, selection=selection, instance=instance, resources=resources, tags=run_tags
            )
            assert result.success, selection
        yield resources, instance


def retrain(pipeline) -> dg.ExecuteInProcessResult:
    resources, instance = pipeline
    return dg.materialize(ALL, selection=RETRAIN, instance=instance, resources=resources)


def test_labels_carry_thresholds_and_shares(pipeline):
    resources, instance = pipeline
    stored = resources["lake"].read("labels", "AAPL")
    assert {"direction", "fwd_vol_20", "regime", "regime_now", "label_end"} <= set(stored.columns)
    event = instance.get_latest_materialization_event(dg.AssetKey("labels"))
    assert event is not None


def test_retrain_registers_every_model_as_champion_then_judges_a_challenger(pipeline):
    resources, _ = pipeline
    tracking: MlflowTracking = resources["mlflow_tracking"]
    first = retrain(pipeline)
    assert first.success
    (report,) = first.asset_materializations_for_node("model_report")
    meta = report.metadata
    assert "headline" in meta and "promotion" in meta
    assert "majority_class" in meta["direction_xgboost__metrics"].value
    assert "naive_trailing_20d" in meta["volatility_garch__metrics"].value
    assert "persistence" in meta["regime_random_forest__metrics"].value
    assert "data:image/png;base64," in meta["direction_xgboost__plots"].value
    assert "feature_importance" in meta["regime_random_forest__plots"].value
    for name in MODEL_FAMILIES:
        champion = tracking.version_by_alias(name, CHAMPION)
        assert champion is not None and str(champion.version) == "1", name
        run = tracking.client().get_run(champion.run_id)
        assert run.data.tags["dagster_run_id"] == first.run_id
        assert len(run.data.tags["data_version"]) == 16
        assert (
            "test_log_loss" in run.data.metrics
            or "test_qlike" in run.data.metrics
            or ("test_balanced_accuracy" in run.data.metrics)
        )
    xgb_run = tracking.client().get_run(
        tracking.version_by_alias("direction_xgboost", CHAMPION).run_id
    )
    assert "baseline_majority_class_log_loss" in xgb_run.data.metrics
    stored = resources["lake"].read("model_report")
    assert set(stored["model"].unique()) == set(MODEL_FAMILIES)

    # the same data and seeds give an equally good model: it may not replace the champion
    second = retrain(pipeline)
    assert second.success
    for name in MODEL_FAMILIES:
        assert str(tracking.version_by_alias(name, CHAMPION).version) == "1", name
        challenger = tracking.version_by_alias(name, CHALLENGER)
        assert challenger is not None and str(challenger.version) == "2", name
        assert "does not beat" in challenger.tags["promotion"]

    champions = load_champions(tracking)
    assert set(champions) == set(MODEL_FAMILIES)
    frame = resources["lake"].read("training_set").filter(pl.col("symbol") == "AAPL").tail(40)
    scored = champions["direction_ensemble"].model.predict_frame(frame)
    assert scored.drop_nulls().height == 40
