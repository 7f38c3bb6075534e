"""Tuning: one Optuna study per tunable model, in persistent storage, each trial an MLflow run.

The objective is the mean purged walk-forward log loss on train + validation (``quant.tuning``);
the test split is never touched. Re-running a sweep continues the same study. The training
assets read the study's best parameters when it has any, their defaults otherwise.
"""

import os
from collections.abc import Callable

import dagster as dg
import numpy as np
import optuna
import polars as pl

from assets.metadata import frame_version, md
from assets.training import run_tags, training_from_lake
from quant.evaluation import plots
from quant.tuning import lstm_objective, walk_forward_views, xgboost_objective
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig
from resources.optuna_storage import OptunaStorage

FAMILY = "direction"


# MARKET_MODEL_PROFILE=quick (smoke tests) shrinks the default budgets as it shrinks the models
QUICK = os.environ.get("MARKET_MODEL_PROFILE") == "quick"


class SweepConfig(dg.Config):
    """Budget of one sweep run: trials added to the study, and a wall-clock cap."""

    n_trials: int = 2 if QUICK else 20
    timeout_s: int = 900


class XGBoostSweepConfig(SweepConfig):
    max_boost_rounds: int = 50 if QUICK else 600


class LstmSweepConfig(SweepConfig):
    n_trials: int = 1 if QUICK else 6
    epochs: int = 1 if QUICK else 6


def tracked(
    objective: Callable[[optuna.Trial], float], tracking: MlflowTracking
) -> Callable[[optuna.Trial], float]:
    """Each trial as a nested MLflow run: its parameters, CV score (or last report if pruned)."""

    def run_trial(trial: optuna.Trial) -> float:
        with tracking.nested_run(f"trial-{trial.number}"):
            tracking.set_tag("optuna_trial", str(trial.number))
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                tracking.log_params(trial.params)
                tracking.set_tag("state", "PRUNED")
                raise
            tracking.log_params(trial.params)
            tracking.log_metric("cv_log_loss", value)
            tracking.set_tag("state", "COMPLETE")
            return value

    return run_trial


def _history_plot(study: optuna.Study) -> bytes:
    complete = [
        t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE
    ]
    values = np.array([t.value for t in complete], dtype=float)
    numbers = np.array([t.number for t in complete], dtype=float)
    return plots.line_png(
        numbers,
        {"trial CV log loss": values, "best so far": np.minimum.accumulate(values)},
        f"{study.study_name}: optimization history",
        "mean walk-forward log loss",
    )


def run_sweep(
    context: dg.AssetExecutionContext,
    study_name: str,
    make_objective: Callable[[list], Callable[[optuna.Trial], float]],
    config: SweepConfig,
    modeling: ModelingConfig,
    storage: OptunaStorage,
    tracking: MlflowTracking,
    training: pl.DataFrame,
) -> pl.DataFrame:
    """Add ``config.n_trials`` trials to the study (objective built on the training set's purged
    walk-forward folds) and describe it; returns the trials table."""
    split = modeling.split_config()
    views = walk_forward_views(training_from_lake(training, modeling), split.n_folds, split.embargo)
    objective = make_objective(views)
    study = storage.study(study_name, seed=modeling.seed)
    before = len(study.trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tracking.start_run(
        FAMILY, f"{study_name}_sweep", run_tags(context, frame_version(training))
    ) as parent:
        study.optimize(
            tracked(objective, tracking), n_trials=config.n_trials, timeout=config.timeout_s
        )
        states = [t.state for t in study.trials]
        complete = states.count(optuna.trial.TrialState.COMPLETE)
        if complete:
            tracking.log_metric("best_cv_log_loss", study.best_value)
            tracking.log_params({f"best_{k}": v for k, v in study.best_params.items()})
    trials = study.trials_dataframe(attrs=("number", "value", "state", "params")).reset_index(
        drop=True
    )
    table = pl.from_pandas(trials).with_columns(pl.col("state").cast(pl.String))
    metadata: dict[str, object] = {
        "study": study_name,
        "storage": storage.url.split("@")[-1],
        "trials_total": len(study.trials),
        "trials_this_run": len(study.trials) - before,
        "trials_complete": complete,
        "trials_pruned": states.count(optuna.trial.TrialState.PRUNED),
        "mlflow_run": dg.MetadataValue.url(
            tracking.run_url(parent.info.experiment_id, parent.info.run_id)
        ),
        "dagster/row_count": table.height,
    }
    if complete:
        metadata["best_value"] = float(study.best_value)
        metadata["best_params"] = dg.MetadataValue.json(study.best_params)
        metadata["optimization_history"] = dg.MetadataValue.md(
            plots.markdown_image(_history_plot(study), "optimization history")
        )
        metadata["best_trials"] = md(
            table.filter(pl.col("state") == "COMPLETE").sort("value").head(5)
        )
    context.add_output_metadata(metadata)
    return table


SWEEP_ASSET = {
    "io_manager_key": "lake_io_manager",
    "group_name": "tuning",
    "owners": ["team:quant-research"],
    "tags": {"layer": "tuning"},
    "code_version": "1",
}


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"optuna", "xgboost", "mlflow"},
    description="Optuna study (TPE, median pruner on per-fold running means, seeded) of the "
    "XGBoost direction model's parameters and boosting rounds; objective: mean purged "
    "walk-forward log loss on train + validation. Each run adds trials to the same study.",
    **SWEEP_ASSET,
)
def direction_xgboost_sweep(
    context: dg.AssetExecutionContext,
    config: XGBoostSweepConfig,
    modeling: ModelingConfig,
    optuna_storage: OptunaStorage,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    def objective(views: list) -> Callable[[optuna.Trial], float]:
        return xgboost_objective(views, modeling.seed, config.max_boost_rounds)

    return run_sweep(
        context,
        "direction_xgboost",
        objective,
        config,
        modeling,
        optuna_storage,
        mlflow_tracking,
        training_set,
    )


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"optuna", "pytorch", "mlflow"},
    description="Optuna study of the direction LSTM (hidden size, dropout, learning rate, weight "
    "decay) with per-epoch reports to a median pruner; objective: mean purged walk-forward log "
    "loss after a fixed number of epochs on train + validation.",
    **SWEEP_ASSET,
)
def direction_lstm_sweep(
    context: dg.AssetExecutionContext,
    config: LstmSweepConfig,
    modeling: ModelingConfig,
    optuna_storage: OptunaStorage,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    base = modeling.lstm_config()
    base.max_epochs = config.epochs

    def objective(views: list) -> Callable[[optuna.Trial], float]:
        return lstm_objective(views, base)

    return run_sweep(
        context,
        "direction_lstm",
        objective,
        config,
        modeling,
        optuna_storage,
        mlflow_tracking,
        training_set,
    )
