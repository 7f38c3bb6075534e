"""Labels, training set, the six models, the report and promotion in shadow through Dagster on a
real instance, with a temporary MLflow store: retrains a quarter apart train on newer windows,
the first versions serve at once, the later ones are judged on sessions they never saw."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from assets import (
    backtest,
    evaluation,
    features,
    ingestion,
    labels,
    promotion,
    training,
    tuning,
    validation,
    walk_forward,
)
from assets.partitions import UNIVERSE
from quant.models import MODEL_FAMILIES
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking, load_champions
from tests.conftest import make_resources
from tests.support.runs import range_tags

pytestmark = pytest.mark.slow
FIRST, LAST = UNIVERSE.symbols[0], UNIVERSE.symbols[-1]
ALL = dg.load_assets_from_modules(
    [
        ingestion,
        validation,
        features,
        labels,
        training,
        tuning,
        evaluation,
        backtest,
        promotion,
        walk_forward,
    ]
)
RETRAIN = ["training_set", *MODEL_FAMILIES, "model_report"]
CAUSAL = ("ohlcv", "features")  # per symbol; market_context is one frame


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every symbol ingested, validated, with features, context and labels, on one instance;
    plus the full frames, to replay the lake as it was on earlier dates."""
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
        result = dg.materialize(
            ALL, selection=["market_context"], instance=instance, resources=resources
        )
        assert result.success
        lake = resources["lake"]
        full = {asset: {s: lake.read(asset, s) for s in UNIVERSE.symbols} for asset in CAUSAL}
        full["market_context"] = lake.read("market_context")
        yield resources, instance, full


def as_of(pipeline, day: date | None) -> None:
    """The lake as a nightly run on ``day`` would have left it (None: all data): bars,
    features and context cut at ``day`` (they are causal: the look-ahead check proves a cut
    leaves every earlier value unchanged), labels recomputed from them."""
    resources, instance, full = pipeline
    lake = resources["lake"]
    keep = (lambda f: f) if day is None else (lambda f: f.filter(pl.col("date") <= day))
    for asset in CAUSAL:
        for symbol, frame in full[asset].items():
            lake.write(asset, keep(frame), symbol)
    lake.write("market_context", keep(full["market_context"]))
    result = dg.materialize(
        ALL,
        selection=["labels"],
        instance=instance,
        resources=resources,
        tags=range_tags(FIRST, LAST),
    )
    assert result.success


# yearly refits from a later start than the walk-forward test's, so their blocks never share
# a cache entry (that test asserts its first build computes every block)
SMALL_RECORD = {
    "ops": {
        "walk_forward": {
            "config": {"step": 252, "min_train_years": 3.5, "forest_trees": 5, "xgb_rounds": 20}
        }
    }
}


def run(pipeline, selection: list[str]) -> dg.ExecuteInProcessResult:
    resources, instance, _ = pipeline
    result = dg.materialize(
        ALL,
        selection=selection,
        instance=instance,
        resources=resources,
        run_config=SMALL_RECORD if "walk_forward" in selection else None,
    )
    assert result.success, selection
    return result


def version_tags(tracking: MlflowTracking, name: str, version: str) -> dict[str, str]:
    return tracking.client().get_model_version(name, version).tags


def test_retrains_a_quarter_apart_then_promotion_in_shadow(pipeline):
    resources, _, _ = pipeline
    tracking: MlflowTracking = resources["mlflow_tracking"]

    as_of(pipeline, date(2026, 1, 15))
    first = run(pipeline, [*RETRAIN, "walk_forward", "backtest"])
    (report,) = first.asset_materializations_for_node("model_report")
    meta = report.metadata
    # the headline is the walk-forward record: years of refits, each beside its baseline
    table = resources["lake"].read("model_report")
    record = table.filter(pl.col("scope") == "walk_forward")
    years = record.filter(pl.col("period") != "all")["period"].unique()
    assert years.len() >= 4 and years.max() == "2025"  # labels end 20 sessions before the data
    for name in ("direction_xgboost", "volatility_garch", "regime_random_forest"):
        assert (
            "p=" in meta["walk_forward__verdict"].value
            and name in meta["walk_forward__verdict"].value
        )
        mine = record.filter((pl.col("model") == name) & (pl.col("period") == "all"))
        assert mine.filter(pl.col("source") != name).height == 1  # its baseline
        p_value = mine.filter(pl.col("metric") == "p_value_vs_baseline")["value"][0]
        assert 0.0 <= p_value <= 1.0
    assert "rank_ic_per_block" in meta["walk_forward__plots"].value
    assert "cumulative_gain" in meta["walk_forward__plots"].value
    # the honest scoreboard: per group of like instruments, beside per-symbol baselines,
    # every p-value beside its Holm and BH adjustments, calibration, the data's limits
    board = table.filter(pl.col("scope") == "scoreboard")
    assert set(board["group"]) == {"equities", "^VIX", "indices"}
    xgb = board.filter((pl.col("model") == "direction_xgboost") & (pl.col("group") == "equities"))
    baselines = {"symbol_prior", "pooled_prior", "symbol_majority", "previous_direction"}
    assert baselines <= set(xgb["source"])
    raw, holm = (
        xgb.filter(pl.col("metric") == f"log_loss:{kind}_vs_symbol_prior")["value"][0]
        for kind in ("p_raw", "p_holm")
    )
    assert 0.0 <= raw <= holm <= 1.0
    har = board.filter((pl.col("model") == "volatility_har") & (pl.col("group") == "equities"))
    assert {"naive_trailing_20d", "symbol_har", "symbol_har_range", "garch"} <= set(har["source"])
    headline = meta["scoreboard__headline"].value
    assert "Cross-sectional rank IC at 1 session over the equities: direction_xgboost" in headline
    assert "Rank ICIR" in meta["scoreboard__cross_sectional_ic"].value
    assert "fwd_return_20" in meta["scoreboard__cross_sectional_ic"].value
    assert "share_rejected" in meta["scoreboard__mincer_zarnowitz"].value
    assert "reliability_direction_xgboost" in meta["scoreboard__plots"].value
    assert "reliability_regime_random_forest" in meta["scoreboard__plots"].value
    assert "Survivorship" in meta["scoreboard__limits"].value
    (tested,) = first.asset_materializations_for_node("backtest")
    daily = resources["lake"].read("backtest")
    assert set(daily["window"]) == {"walk_forward", "validation"}
    judged = daily.filter(pl.col("window") == "walk_forward")
    assert judged["date"].min() < date(2022, 6, 1) < date(2025, 6, 1) < judged["date"].max()
    assert "S&P 500" in tested.metadata["verdict"].value
    assert set(judged["lag"]) == {0, 1}  # trading at the signal's close, and one session later
    assert "DSR" in tested.metadata["verdict"].value
    assert "2023" in tested.metadata["walk_forward_performance"].value
    assert meta["scored_split"].value == "validation"  # rolling: the selection models' window
    assert "majority_class" in meta["direction_xgboost__metrics"].value
    assert "naive_trailing_20d" in meta["volatility_garch__metrics"].value
    assert "persistence" in meta["regime_random_forest__metrics"].value
    assert "data:image/png;base64," in meta["direction_xgboost__plots"].value
    assert "feature_importance" in meta["regime_random_forest__plots"].value
    for name in MODEL_FAMILIES:
        champion = tracking.version_by_alias(name, CHAMPION)
        assert champion is not None and str(champion.version) == "1", name
        assert "first model serves" in champion.tags["promotion"]
        run_tags = tracking.client().get_run(champion.run_id).data.tags
        assert run_tags["dagster_run_id"] == first.run_id
        assert len(run_tags["data_version"]) == 16
        for tag in ("train_start", "train_end", "validation_start", "validation_end"):
            assert run_tags[tag] == champion.tags[tag]
        # the windows end with the data, not on a constant
        assert date.fromisoformat(champion.tags["data_as_of"]) <= date(2026, 1, 15)
        assert date.fromisoformat(champion.tags["data_as_of"]) >= date(2026, 1, 5)
    v1 = version_tags(tracking, "direction_xgboost", "1")

    as_of(pipeline, date(2026, 4, 15))
    second = run(pipeline, RETRAIN)
    v2 = version_tags(tracking, "direction_xgboost", "2")
    days = (date.fromisoformat(v2["train_end"]) - date.fromisoformat(v1["train_end"])).days
    assert 80 <= days <= 100  # the window moved a quarter with the data
    assert v2["validation_end"] > v1["validation_end"] and v2["data_as_of"] > v1["data_as_of"]
    first_run = tracking.client().get_run(
        tracking.version_by_alias("direction_xgboost", CHAMPION).run_id
    )
    second_run = tracking.client().get_run(
        tracking.client().get_model_version("direction_xgboost", "2").run_id
    )
    assert first_run.data.tags["data_version"] != second_run.data.tags["data_version"]
    assert second_run.data.tags["dagster_run_id"] == second.run_id
    for name in MODEL_FAMILIES:
        assert str(tracking.version_by_alias(name, CHAMPION).version) == "1", name
        challenger = tracking.version_by_alias(name, CHALLENGER)
        assert str(challenger.version) == "2", name
        assert challenger.tags["shadow_status"] == "pending"
    # nothing after the challenger's data yet: every model waits
    waiting = run(pipeline, ["shadow_promotion"])
    table = resources["lake"].read("shadow_promotion")
    assert set(table["status"]) == {"pending: 0/21 shadow sessions"}, table
    assert (
        "0 decided"
        in waiting.asset_materializations_for_node("shadow_promotion")[0].metadata["verdict"].value
    )

    # the rest of the data arrives: next-session labels for ~29 new sessions, 20-session labels
    # for only ~10 of them
    as_of(pipeline, None)
    run(pipeline, ["shadow_promotion"])
    table = resources["lake"].read("shadow_promotion")
    by_model = {row["model"]: row for row in table.iter_rows(named=True)}
    for name in ("direction_xgboost", "direction_lstm", "direction_ensemble"):
        row = by_model[name]
        assert row["status"] in ("promoted", "rejected"), row
        assert row["kind"] == "refresh"  # same configuration, newer data
        tags = version_tags(tracking, name, "2")
        assert tags["shadow_decision"] == row["status"]
        assert tags["shadow_start"] > tags["data_as_of"]  # judged only on sessions it never saw
        assert int(tags["shadow_sessions"]) >= 21
        assert float(tags["shadow_p_value"]) == pytest.approx(row["p_value"], rel=1e-3)
        champion = str(tracking.version_by_alias(name, CHAMPION).version)
        assert champion == ("2" if row["status"] == "promoted" else "1")
        assert tracking.version_by_alias(name, CHALLENGER) is None
    for name in ("volatility_garch", "volatility_lstm", "regime_random_forest"):
        assert by_model[name]["status"].startswith("pending:"), by_model[name]
        assert str(tracking.version_by_alias(name, CHAMPION).version) == "1"

    champions = load_champions(tracking)
    assert set(champions) == set(MODEL_FAMILIES)
    frame = resources["lake"].read("training_set").filter(pl.col("symbol") == "AAPL").tail(40)
    scored = champions["direction_ensemble"].model.predict_frame(frame)
    assert scored.drop_nulls().height == 40


def test_the_walk_forward_record_spans_years_and_a_rebuild_reuses_its_blocks(pipeline):
    resources, instance, _ = pipeline
    as_of(pipeline, None)
    config = {"step": 252, "forest_trees": 5, "xgb_rounds": 30}
    run_config = {"ops": {"walk_forward": {"config": config}}}

    def build() -> dict:
        result = dg.materialize(
            ALL,
            selection=["walk_forward"],
            instance=instance,
            resources=resources,
            run_config=run_config,
        )
        assert result.success
        return result.asset_materializations_for_node("walk_forward")[0].metadata

    first = build()
    record = resources["lake"].read("walk_forward")
    assert set(record["model"]) == {
        "direction_xgboost",
        "volatility_garch",
        "volatility_har",
        "regime_random_forest",
    }
    assert record.filter(pl.col("refit_date") >= pl.col("date")).is_empty()
    assert first["years_covered"].value >= 4
    assert first["refits_computed"].value == first["refits"].value > 0
    assert "symbol_prior" in first["yearly_scores"].value and "2023" in first["yearly_scores"].value
    tracking: MlflowTracking = resources["mlflow_tracking"]
    # one MLflow run per build (the retrain test's build came first): the newest is this one
    run, *_ = tracking.client().search_runs(
        [tracking.experiment_id("walk_forward")], order_by=["attributes.start_time DESC"]
    )
    assert run.data.tags["dagster_run_id"]
    assert "direction_xgboost_log_loss_model_value" in run.data.metrics
    history = tracking.client().get_metric_history(run.info.run_id, "volatility_garch_block_metric")
    assert len(history) == first["refits"].value // 4  # one point per refit block
    again = build()
    assert again["refits_from_cache"].value == first["refits"].value
    assert again["refits_computed"].value == 0
    assert resources["lake"].read("walk_forward").equals(record)
