"""Optuna sweeps through Dagster on a small real slice: persistent study, MLflow trials, the
second sweep continuing the first, and the training asset picking up the best parameters."""

from datetime import date

import dagster as dg
import optuna
import pytest

from assets import (
    evaluation,
    features,
    ingestion,
    labels,
    training,
    tuning,
    validation,
    walk_forward,
)
from quant.splits import SplitConfig
from resources.mlflow_tracking import CHAMPION
from resources.modeling import ModelingConfig
from tests.conftest import make_resources
from tests.support.training import small_training_set

pytestmark = pytest.mark.slow
SPLITS = SplitConfig(n_folds=2)
ASSETS = dg.load_assets_from_modules(
    [ingestion, validation, features, labels, training, tuning, evaluation, walk_forward]
)


@pytest.fixture
def setup(tmp_path, sample_panel, instance):
    data_dir = tmp_path / "data"
    resources = {
        **make_resources(data_dir),
        "modeling": ModelingConfig(
            walk_forward_folds=2, xgb_rounds=40, lstm_max_epochs=1, lstm_hidden=8
        ),
    }
    frame = small_training_set(sample_panel, SPLITS, start=date(2020, 1, 1)).frame
    resources["lake"].write("training_set", frame)
    return resources, instance


def sweep(setup, asset: str, config: dict) -> dg.ExecuteInProcessResult:
    resources, instance = setup
    return dg.materialize(
        ASSETS,
        selection=[asset],
        instance=instance,
        resources=resources,
        run_config={"ops": {asset: {"config": config}}},
    )


def test_xgboost_sweep_continues_its_study_and_feeds_the_training_asset(setup):
    resources, instance = setup
    config = {"n_trials": 3, "max_boost_rounds": 100}
    first = sweep(setup, "direction_xgboost_sweep", config)
    assert first.success
    (event,) = first.asset_materializations_for_node("direction_xgboost_sweep")
    meta = event.metadata
    assert meta["trials_total"].value == 3 and meta["trials_this_run"].value == 3
    assert meta["trials_complete"].value + meta["trials_pruned"].value == 3
    assert 0.5 < meta["best_value"].value < 1.5
    assert "data:image/png;base64," in meta["optimization_history"].value
    second = sweep(setup, "direction_xgboost_sweep", config)
    (event,) = second.asset_materializations_for_node("direction_xgboost_sweep")
    assert event.metadata["trials_total"].value == 6  # the same study, continued
    storage = resources["optuna_storage"]
    study = optuna.load_study(study_name="direction_xgboost", storage=storage.storage())
    assert len(study.trials) == 6
    # every trial is a nested MLflow run under its sweep's parent run
    tracking = resources["mlflow_tracking"]
    runs = tracking.client().search_runs(
        [tracking.experiment_id("direction")], "tags.optuna_trial != ''"
    )
    assert len(runs) == 6
    assert all("mlflow.parentRunId" in r.data.tags for r in runs)

    trained = dg.materialize(
        ASSETS, selection=["direction_xgboost"], instance=instance, resources=resources
    )
    assert trained.success
    version = tracking.client().get_registered_model("direction_xgboost").latest_versions
    run = tracking.client().get_run(version[0].run_id)
    assert run.data.params["params_source"] == "optuna study direction_xgboost"
    assert run.data.params["max_depth"] == str(study.best_params["max_depth"])
    # the first version serves at once; later ones wait for shadow promotion
    first_version = tracking.version_by_alias("direction_xgboost", CHAMPION)
    assert first_version is not None and str(first_version.version) == "1"


def test_lstm_sweep_reports_per_epoch_and_prunes_into_the_same_storage(setup):
    result = sweep(setup, "direction_lstm_sweep", {"n_trials": 2, "epochs": 1})
    assert result.success
    (event,) = result.asset_materializations_for_node("direction_lstm_sweep")
    assert event.metadata["trials_total"].value == 2
    assert "hidden_size" in event.metadata["best_params"].value
