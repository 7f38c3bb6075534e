"""Training: the training set and the models, each logged to MLflow and registered.

Each model asset fits on the training split (early stopping on validation where the model has
it), logs its parameters and fitting record to a run in its family's experiment (tagged with the
Dagster run id, the asset's code version and the training set's data version), registers the
model, and stores its predictions for the validation and test rows in the lake. Scoring on the
test split and champion/challenger promotion happen in ``model_report``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import KEY_COLUMNS, column_schema, date_range, frame_version, md
from quant.dataset import (
    MODEL_FEATURES,
    TrainingSet,
    build_training_set,
    class_balance,
    rows_per_split_and_symbol,
    split_summary,
)
from quant.labels import DIRECTION_NAMES, LABEL_COLUMNS, REGIME_NAMES
from quant.models import MODEL_FAMILIES
from quant.models.direction import (
    SoftVotingEnsemble,
    train_direction_lstm,
    train_direction_xgboost,
)
from quant.models.frames import FitRecord
from quant.models.regime import train_regime_forest
from quant.models.volatility import train_volatility_garch, train_volatility_lstm
from quant.splits import TEST, TRAIN, VALIDATION, walk_forward_folds
from quant.tuning import lstm_config_from
from resources.mlflow_tracking import MlflowTracking, model_example, pip_requirements
from resources.modeling import ModelingConfig
from resources.optuna_storage import OptunaStorage

PREDICTION_SPLITS = (VALIDATION, TEST)
OWNERS = ["team:quant-research"]


def load_training_set(frame: pl.DataFrame) -> TrainingSet:
    """The stored training-set frame as a ``TrainingSet`` (sorted as it was written)."""
    return TrainingSet(frame.sort("symbol", "date"))


@dg.asset(
    ins={
        "features": dg.AssetIn("features"),
        "market_context": dg.AssetIn("market_context"),
        "labels": dg.AssetIn("labels"),
    },
    io_manager_key="lake_io_manager",
    group_name="training",
    kinds={"polars", "parquet"},
    owners=OWNERS,
    tags={"layer": "training"},
    code_version="1",
    metadata={
        "dagster/column_schema": column_schema(
            {
                **KEY_COLUMNS,
                "split": ("string", "train, validation, test or purged"),
                **{
                    f: ("float64", "model input (see the features / market_context pages)")
                    for f in MODEL_FEATURES
                },
                **{n: ("float64", d) for n, d in LABEL_COLUMNS.items()},
            }
        )
    },
    description="Features + market context + labels of every symbol, one row per (symbol, date), "
    "with a `split` column: train ≤ 2023-12-31, validation 2024-H1, test after (configurable), "
    "each boundary purged by the 20-session label horizon (purged rows are kept, marked "
    "`purged`, so sequence models see contiguous histories, and never fitted or scored). "
    "Warm-up and unlabeled rows are dropped.",
)
def training_set(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
    labels: pl.DataFrame,
) -> pl.DataFrame:
    config = modeling.split_config()
    training = build_training_set(features, market_context, labels, config)
    tuning = training.rows(TRAIN, VALIDATION)
    folds = walk_forward_folds(tuning["date"], tuning["label_end"], config.n_folds, config.embargo)
    context.add_output_metadata(
        {
            "dagster/row_count": training.frame.height,
            **date_range(training.frame),
            "data_version": frame_version(training.frame),
            "features": len(training.features),
            "symbols": training.frame["symbol"].n_unique(),
            "dropped_warm_up_rows": training.dropped["warm_up"],
            "dropped_unlabeled_rows": training.dropped["unlabeled"],
            "purged_rows": training.dropped["purged"],
            "splits": md(split_summary(training)),
            "direction_balance": md(class_balance(training, "direction", DIRECTION_NAMES), 3),
            "regime_balance": md(class_balance(training, "regime", REGIME_NAMES), 3),
            "rows_per_symbol": md(rows_per_split_and_symbol(training)),
            "walk_forward_folds": md(pl.DataFrame([f.describe() for f in folds])),
            "split_boundaries": dg.MetadataValue.json(
                {
                    "train_end": str(config.train_end),
                    "validation_end": str(config.validation_end),
                    "purge_sessions": config.horizon,
                    "embargo_sessions": config.embargo,
                }
            ),
        }
    )
    return training.frame


@dataclass(frozen=True)
class TrainedModel:
    """What a training function hands back: the fitted model, its fit record, the parameters
    worth logging and the pip packages loading it needs."""

    model: object
    record: FitRecord
    params: dict[str, object]
    requirements: tuple[str, ...]


def run_tags(context: dg.AssetExecutionContext, data_version: str) -> dict[str, str]:
    """Tags that tie an MLflow run to the Dagster run, code and data that produced it."""
    key = context.asset_key.to_user_string()
    return {
        "dagster_run_id": context.run_id,
        "dagster_asset": key,
        "code_version": context.assets_def.code_versions_by_key[context.asset_key] or "",
        "data_version": data_version,
    }


def _fit_metrics(record: FitRecord) -> dict[str, float]:
    metrics = {
        "fit_rows": float(record.fit_rows.size),
        "scaling_rows": float(record.scaling_rows.size),
        "early_stopping_rows": float(record.early_stopping_rows.size),
    }
    for key, value in record.details.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[key] = float(value)
    return metrics


def train_and_register(
    context: dg.AssetExecutionContext,
    tracking: MlflowTracking,
    frame: pl.DataFrame,
    fit: Callable[[TrainingSet], TrainedModel],
) -> pl.DataFrame:
    """Fit with ``fit``, log and register the model, and return its validation/test predictions
    (with the model version and MLflow run id on every row)."""
    import mlflow

    name = context.asset_key.to_user_string()
    family = MODEL_FAMILIES[name]
    training = load_training_set(frame)
    version = frame_version(training.frame)
    with tracking.start_run(family, name, run_tags(context, version)):
        trained = fit(training)
        mlflow.log_params({k: str(v) for k, v in trained.params.items()})
        mlflow.log_metrics(_fit_metrics(trained.record))
        example = model_example(training.rows(VALIDATION, TEST), training.features)
        logged = tracking.log_model(
            trained.model, name, example, pip_requirements(*trained.requirements)
        )
    predictions = trained.model.predict_frame(training.frame)
    splits = training.frame.select("symbol", "date", "split")
    out = (
        splits.join(predictions, on=["symbol", "date"], how="left")
        .filter(pl.col("split").is_in(list(PREDICTION_SPLITS)))
        .with_columns(
            pl.lit(logged.version).alias("model_version"),
            pl.lit(logged.run_id).alias("mlflow_run_id"),
        )
    )
    context.add_output_metadata(
        {
            "dagster/row_count": out.height,
            "model_version": logged.version,
            "mlflow_run": dg.MetadataValue.url(
                tracking.run_url(logged.experiment_id, logged.run_id)
            ),
            "mlflow_model": dg.MetadataValue.url(tracking.model_url(name, logged.version)),
            "data_version": version,
            "fit_rows": int(trained.record.fit_rows.size),
            "fit_record": dg.MetadataValue.json(_fit_metrics(trained.record)),
            "params": dg.MetadataValue.json({k: str(v) for k, v in trained.params.items()}),
            "test_rows_predicted": out.filter(pl.col("split") == TEST)
            .drop_nulls(predictions.columns[2])
            .height,
        }
    )
    return out


def assert_no_test_rows(training: TrainingSet, record: FitRecord) -> None:
    """Refuse a model whose fitting, scaling or early stopping touched a test row (a bug guard:
    the training functions only ever pass train/validation rows)."""
    split = training.frame["split"].to_numpy()
    for stage in ("fit_rows", "scaling_rows", "early_stopping_rows"):
        rows = getattr(record, stage)
        leaked = np.flatnonzero(np.isin(split[rows], [TEST]))
        if leaked.size:
            raise RuntimeError(f"{stage} include {leaked.size} test-split rows: leakage bug")


PREDICTION_SCHEMA = column_schema(
    {
        **KEY_COLUMNS,
        "split": ("string", "validation or test"),
        "p_down / p_neutral / p_up": ("float64", "direction models: class probabilities"),
        "vol_forecast": ("float64", "volatility models: annualized vol of the next 20 sessions"),
        "p_bear .. p_highvol": ("float64", "regime model: class probabilities"),
        "model_version": ("string", "registered model version in MLflow"),
        "mlflow_run_id": ("string", "the MLflow run that trained it"),
    }
)

MODEL_ASSET = {
    "io_manager_key": "lake_io_manager",
    "group_name": "training",
    "owners": OWNERS,
    "tags": {"layer": "training"},
    "code_version": "1",
    "metadata": {"dagster/column_schema": PREDICTION_SCHEMA},
}


def tuned_params(storage: OptunaStorage, study: str) -> tuple[dict[str, object], str]:
    """The study's best parameters and where they came from ("defaults" without a study)."""
    best = storage.best_params(study)
    return (best, f"optuna study {study}") if best else ({}, "defaults")


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    deps=["direction_xgboost_sweep"],
    kinds={"xgboost", "mlflow", "polars"},
    description="XGBoost (multi-class softprob, hist, early stopping on validation log loss) "
    "for the next-session direction; predictions P(Down/Neutral/Up) on validation and test. "
    "Parameters from the `direction_xgboost` Optuna study when it exists.",
    **MODEL_ASSET,
)
def direction_xgboost(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    optuna_storage: OptunaStorage,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    tuned, source = tuned_params(optuna_storage, "direction_xgboost")
    rounds = int(tuned.pop("num_boost_round", modeling.xgb_rounds))

    def fit(training: TrainingSet) -> TrainedModel:
        model, record = train_direction_xgboost(
            training, tuned, seed=modeling.seed, num_boost_round=rounds
        )
        assert_no_test_rows(training, record)
        params = {
            **model.classifier.params,
            "num_boost_round": rounds,
            "best_iteration": model.classifier.best_iteration,
            "params_source": source,
        }
        return TrainedModel(model, record, params, ("xgboost",))

    return train_and_register(context, mlflow_tracking, training_set, fit)


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    deps=["direction_lstm_sweep"],
    kinds={"pytorch", "mlflow", "polars"},
    description="LSTM (torch) over 20-session sequences of standardized features (scaler fitted "
    "on train only), class-weighted, early stopping on validation, seeded; CUDA when present. "
    "Parameters from the `direction_lstm` Optuna study when it exists.",
    **MODEL_ASSET,
)
def direction_lstm(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    optuna_storage: OptunaStorage,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    tuned, source = tuned_params(optuna_storage, "direction_lstm")
    config = lstm_config_from(tuned, modeling.lstm_config())

    def fit(training: TrainingSet) -> TrainedModel:
        model, record = train_direction_lstm(training, config)
        assert_no_test_rows(training, record)
        return TrainedModel(model, record, {**vars(config), "params_source": source}, ("torch",))

    return train_and_register(context, mlflow_tracking, training_set, fit)


@dg.asset(
    ins={
        "training_set": dg.AssetIn("training_set"),
        "direction_xgboost": dg.AssetIn("direction_xgboost"),
        "direction_lstm": dg.AssetIn("direction_lstm"),
    },
    kinds={"mlflow", "polars"},
    description="Soft-voting ensemble of the two direction models (equal weights; the LSTM's "
    "first rows without a full window fall back to XGBoost alone).",
    **MODEL_ASSET,
)
def direction_ensemble(
    context: dg.AssetExecutionContext,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
    direction_xgboost: pl.DataFrame,
    direction_lstm: pl.DataFrame,
) -> pl.DataFrame:
    versions = {
        "direction_xgboost": direction_xgboost["model_version"][0],
        "direction_lstm": direction_lstm["model_version"][0],
    }

    def fit(training: TrainingSet) -> TrainedModel:
        members = {name: mlflow_tracking.load(name, v) for name, v in versions.items()}
        empty = np.array([], dtype=int)
        record = FitRecord(empty, empty, empty, details={})
        params = {f"{name}_version": v for name, v in versions.items()}
        return TrainedModel(SoftVotingEnsemble(members), record, params, ("xgboost", "torch"))

    return train_and_register(context, mlflow_tracking, training_set, fit)


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"mlflow", "polars"},
    description="GARCH(1,1) (arch) per symbol on daily returns x100, fitted on the training "
    "split, then filtered forward with fixed parameters (no refit on later data) to forecast "
    "the next 20 sessions' realized volatility.",
    **MODEL_ASSET,
)
def volatility_garch(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    split = modeling.split_config()

    def fit(training: TrainingSet) -> TrainedModel:
        model, record = train_volatility_garch(training, split.train_end, split.horizon)
        assert_no_test_rows(training, record)
        table = model.garch.params_table()
        context.add_output_metadata({"garch_params": md(table)})
        params = {
            "horizon": split.horizon,
            "train_end": split.train_end,
            "symbols_fitted": table.height,
            "symbols_skipped": len(model.garch.skipped),
            "median_persistence": float(table["persistence"].median()),
        }
        return TrainedModel(model, record, params, ("arch", "scipy"))

    return train_and_register(context, mlflow_tracking, training_set, fit)


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"pytorch", "mlflow", "polars"},
    description="LSTM (torch) regressing the log of the next 20 sessions' realized volatility "
    "on 20-session feature sequences; scaler on train only, early stopping on validation.",
    **MODEL_ASSET,
)
def volatility_lstm(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    config = modeling.lstm_config()

    def fit(training: TrainingSet) -> TrainedModel:
        model, record = train_volatility_lstm(training, config)
        assert_no_test_rows(training, record)
        return TrainedModel(model, record, vars(config).copy(), ("torch",))

    return train_and_register(context, mlflow_tracking, training_set, fit)


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"scikitlearn", "mlflow", "polars"},
    description="Random forest (100 trees, class-balanced) for the regime of the next 20 "
    "sessions (Bear / Sideways / Bull / HighVol), fitted on the training split.",
    **MODEL_ASSET,
)
def regime_random_forest(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    def fit(training: TrainingSet) -> TrainedModel:
        model, record = train_regime_forest(
            training, n_estimators=modeling.forest_trees, seed=modeling.seed
        )
        assert_no_test_rows(training, record)
        params = {
            "n_estimators": modeling.forest_trees,
            "min_samples_leaf": model.forest.min_samples_leaf,
            "class_weight": "balanced",
        }
        return TrainedModel(model, record, params, ())

    return train_and_register(context, mlflow_tracking, training_set, fit)
