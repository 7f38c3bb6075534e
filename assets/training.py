"""Training: the training set and the models, each logged to MLflow and registered.

Each model asset fits in two stages: a *selection* fit on the training window (early stopping
on validation where the model has it), whose validation predictions are honest out-of-sample
scores, then a *refit* on train + validation with the selected settings (rounds, epochs), which
is the model registered and served: it has seen the newest labeled data. The run and the model
version are tagged with the Dagster run id, the code version, the training set's data version,
the windows (train/validation start and end, ``data_as_of``) and a hash of the configuration.
The first version of a model becomes champion at once; every later one is a ``challenger``
judged in shadow (``shadow_promotion``) on sessions after its ``data_as_of``.
"""

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import (
    KEY_COLUMNS,
    column_schema,
    date_range,
    frame_version,
    labeled_panel_ins,
    md,
)
from assets.partitions import UNIVERSE
from quant.dataset import (
    MODEL_FEATURES,
    TrainingSet,
    build_training_set,
    class_balance,
    load_training_set,
    rows_per_split_and_symbol,
    split_summary,
)
from quant.labels import DIRECTION_NAMES, LABEL_COLUMNS, REGIME_NAMES
from quant.models import MODEL_FAMILIES
from quant.models.direction import (
    PROBA_COLUMNS,
    SoftVotingEnsemble,
    train_direction_lstm,
    train_direction_xgboost,
    vote_frames,
)
from quant.models.frames import FitRecord
from quant.models.regime import train_regime_forest
from quant.models.volatility import train_volatility_garch, train_volatility_lstm
from quant.monitoring.served_health import reference_level
from quant.splits import OUTSIDE, TEST, TRAIN, VALIDATION, refit_mask, walk_forward_folds
from quant.tuning import lstm_config_from
from resources.mlflow_tracking import (
    CHALLENGER,
    CHAMPION,
    MlflowTracking,
    model_example,
    pip_requirements,
)
from resources.modeling import ModelingConfig, anchor_symbols
from resources.optuna_storage import OptunaStorage

PREDICTION_SPLITS = (VALIDATION, TEST)
OWNERS = ["team:quant-research"]
ANCHORS = anchor_symbols(UNIVERSE)
PENDING = "pending"


def training_from_lake(frame: pl.DataFrame, modeling: ModelingConfig) -> TrainingSet:
    """The stored training-set frame as a ``TrainingSet`` with its windows (same rule, same
    rows, same windows as when it was built)."""
    return load_training_set(frame, modeling.split_config(), ANCHORS)


@dg.asset(
    ins=labeled_panel_ins(),
    io_manager_key="lake_io_manager",
    group_name="training",
    kinds={"polars", "parquet"},
    owners=OWNERS,
    tags={"layer": "training"},
    code_version="2",
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
    "with a `split` column. Default (rolling): validation = the equities' last 126 labeled "
    "sessions, train = everything before, anchored to the data (no fixed date); `fixed` mode "
    "takes research dates and adds a test split. Each boundary is purged by the 20-session label "
    "horizon (purged rows are kept, marked `purged`, so sequence models see contiguous "
    "histories, and never fitted or scored). Warm-up and unlabeled rows are dropped.",
)
def training_set(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
    labels: pl.DataFrame,
) -> pl.DataFrame:
    config = modeling.split_config()
    training = build_training_set(features, market_context, labels, config, ANCHORS)
    windows = training.windows
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
            **windows.tags(),
            "refit_rows": int(refit_mask(training.frame, windows).sum()),
            "split_boundaries": dg.MetadataValue.json(
                {
                    **windows.tags(),
                    "validation_sessions": config.validation_sessions,
                    "train_years": config.train_years,
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


def _fit_metrics(record: FitRecord, prefix: str = "") -> dict[str, float]:
    metrics = {
        f"{prefix}fit_rows": float(record.fit_rows.size),
        f"{prefix}scaling_rows": float(record.scaling_rows.size),
        f"{prefix}early_stopping_rows": float(record.early_stopping_rows.size),
    }
    for key, value in record.details.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[f"{prefix}{key}"] = float(value)
    return metrics


def configuration_hash(configuration: dict[str, object]) -> str:
    """A short hash of what defines a model apart from its data (hyper-parameters, inputs):
    two versions with the same hash are a refresh of one another, otherwise a new
    configuration (promotion in shadow treats the two differently)."""
    text = json.dumps(configuration, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def refit_view(training: TrainingSet) -> TrainingSet:
    """The training set for the final fit: every row of ``refit_mask`` is ``train``, nothing is
    left for validation, test rows stay ``test`` (so the guard still sees them), the rest is
    ``outside``."""
    mask = pl.Series(refit_mask(training.frame, training.windows))
    split = (
        pl.when(mask)
        .then(pl.lit(TRAIN))
        .when(pl.col("split") == TEST)
        .then(pl.lit(TEST))
        .otherwise(pl.lit(OUTSIDE))
    )
    frame = training.frame.with_columns(split.alias("split"))
    return replace(training, frame=frame)


@dataclass(frozen=True)
class ModelSpec:
    """How to fit one model: the selection fit, the refit from what the selection chose, and
    the configuration that identifies it."""

    fit: Callable[[TrainingSet], TrainedModel]
    refit: Callable[[TrainingSet, TrainedModel], TrainedModel]
    configuration: dict[str, object]


def _assign_role(
    tracking: MlflowTracking, name: str, version: str, reference: float
) -> tuple[str, str]:
    """First version of a model: champion at once (nothing to compare it with). Later ones:
    challenger, pending a decision in shadow."""
    client = tracking.client()
    if tracking.version_by_alias(name, CHAMPION) is None:
        tracking.set_alias(name, CHAMPION, version)
        reason = "no champion yet: first model serves at once"
        client.set_model_version_tag(name, version, "shadow_status", "promoted")
        client.set_model_version_tag(name, version, "promotion", reason)
        if math.isfinite(reference):
            client.set_model_version_tag(name, version, "health_reference", f"{reference:.6g}")
        return CHAMPION, reason
    tracking.set_alias(name, CHALLENGER, version)
    client.set_model_version_tag(name, version, "shadow_status", PENDING)
    return CHALLENGER, "challenger: judged in shadow on the sessions after its data_as_of"


def _stage_predictions(
    training: TrainingSet, selection: TrainedModel, final: TrainedModel
) -> pl.DataFrame:
    """Validation rows scored by the selection model (out of sample), test rows by the refit
    model; a ``stage`` column says which."""
    keys = training.frame.select("symbol", "date", "split")
    chosen = keys.filter(pl.col("split").is_in(list(PREDICTION_SPLITS)))
    parts = []
    for split, trained, stage in ((VALIDATION, selection, "selection"), (TEST, final, "refit")):
        rows = chosen.filter(pl.col("split") == split)
        if rows.is_empty():
            continue
        outputs = trained.model.predict_frame(training.frame)
        parts.append(
            rows.join(outputs, on=["symbol", "date"], how="left").with_columns(
                pl.lit(stage).alias("stage")
            )
        )
    return pl.concat(parts, how="diagonal_relaxed") if parts else chosen


def train_and_register(
    context: dg.AssetExecutionContext,
    tracking: MlflowTracking,
    modeling: ModelingConfig,
    frame: pl.DataFrame,
    spec: ModelSpec,
    selection_predictions: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Selection fit, refit, log and register the refit model (tagged with its windows and
    configuration), give it its role (champion if first, else challenger), and return the
    validation (selection model) and test (refit model) predictions with the version and run
    id on every row. ``selection_predictions`` replaces the selection model's own validation
    predictions (the ensemble votes its members' instead)."""

    name = context.asset_key.to_user_string()
    family = MODEL_FAMILIES[name]
    training = training_from_lake(frame, modeling)
    windows = training.windows
    version = frame_version(training.frame)
    config_hash = configuration_hash(spec.configuration)
    tags = {**run_tags(context, version), **windows.tags(), "config_hash": config_hash}
    with tracking.start_run(family, name, tags):
        selection = spec.fit(training)
        final_view = refit_view(training)
        final = spec.refit(final_view, selection)
        assert_no_test_rows(final_view, final.record)
        tracking.log_params({k: str(v) for k, v in final.params.items()})
        tracking.log_metrics(
            {**_fit_metrics(selection.record, "selection_"), **_fit_metrics(final.record)}
        )
        example = model_example(training.rows(VALIDATION, TEST), training.features)
        logged = tracking.log_model(
            final.model, name, example, pip_requirements(*final.requirements)
        )
    client = tracking.client()
    for key, value in {**windows.tags(), "config_hash": config_hash}.items():
        client.set_model_version_tag(name, logged.version, key, value)
    out = _stage_predictions(training, selection, final)
    if selection_predictions is not None:
        validation = out.filter(pl.col("split") == VALIDATION).select("symbol", "date", "split")
        voted = validation.join(selection_predictions, on=["symbol", "date"], how="left")
        out = pl.concat(
            [
                voted.with_columns(pl.lit("selection").alias("stage")),
                out.filter(pl.col("split") != VALIDATION),
            ],
            how="diagonal_relaxed",
        )
    out = out.with_columns(
        pl.lit(logged.version).alias("model_version"),
        pl.lit(logged.run_id).alias("mlflow_run_id"),
    )
    validation_rows = training.rows(VALIDATION).join(
        out.filter(pl.col("split") == VALIDATION).drop("split"), on=["symbol", "date"]
    )
    reference = reference_level(family, validation_rows, ANCHORS)
    role, reason = _assign_role(tracking, name, logged.version, reference)
    outputs = [c for c in out.columns if c.startswith("p_") or c == "vol_forecast"]
    context.add_output_metadata(
        {
            "dagster/row_count": out.height,
            "model_version": logged.version,
            "role": role,
            "role_reason": reason,
            "config_hash": config_hash,
            **windows.tags(),
            "mlflow_run": dg.MetadataValue.url(
                tracking.run_url(logged.experiment_id, logged.run_id)
            ),
            "mlflow_model": dg.MetadataValue.url(tracking.model_url(name, logged.version)),
            "data_version": version,
            "selection_fit_rows": int(selection.record.fit_rows.size),
            "fit_rows": int(final.record.fit_rows.size),
            "fit_record": dg.MetadataValue.json(_fit_metrics(final.record)),
            "params": dg.MetadataValue.json({k: str(v) for k, v in final.params.items()}),
            "validation_reference_loss": reference,
            "validation_rows_predicted": out.filter(pl.col("split") == VALIDATION)
            .drop_nulls(outputs[:1])
            .height,
            "test_rows_predicted": out.filter(pl.col("split") == TEST)
            .drop_nulls(outputs[:1])
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
        "stage": ("string", "selection (validation rows, fitted on train only) or refit (test)"),
        "p_down / p_neutral / p_up": ("float64", "direction models: class probabilities"),
        "vol_forecast": ("float64", "volatility models: annualized vol of the next 20 sessions"),
        "p_bear .. p_highvol": ("float64", "regime model: class probabilities"),
        "model_version": ("string", "registered model version in MLflow (the refit model)"),
        "mlflow_run_id": ("string", "the MLflow run that trained it"),
    }
)

MODEL_ASSET = {
    "io_manager_key": "lake_io_manager",
    "group_name": "training",
    "owners": OWNERS,
    "tags": {"layer": "training"},
    "code_version": "2",
    "metadata": {"dagster/column_schema": PREDICTION_SCHEMA},
}


def tuned_params(storage: OptunaStorage, study: str) -> tuple[dict[str, object], str]:
    """The study's best parameters and where they came from ("defaults" without a study)."""
    best = storage.best_params(study)
    return (best, f"optuna study {study}") if best else ({}, "defaults")


def _features_signature(modeling: ModelingConfig) -> dict[str, object]:
    return {"features": MODEL_FEATURES, "horizon": modeling.horizon}


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    deps=["direction_xgboost_sweep"],
    kinds={"xgboost", "mlflow", "polars"},
    description="XGBoost (multi-class softprob, hist) for the next-session direction: rounds "
    "chosen by early stopping on validation, then refit on train + validation with that many "
    "rounds. Predictions P(Down/Neutral/Up) on validation (selection model) and test. "
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
        return TrainedModel(model, record, {}, ("xgboost",))

    def refit(view: TrainingSet, selection: TrainedModel) -> TrainedModel:
        chosen = selection.model.classifier.best_iteration + 1
        model, record = train_direction_xgboost(
            view, tuned, seed=modeling.seed, num_boost_round=chosen, early_stopping=False
        )
        params = {
            **model.classifier.params,
            "num_boost_round": chosen,
            "max_boost_round": rounds,
            "params_source": source,
        }
        return TrainedModel(model, record, params, ("xgboost",))

    configuration = {
        "params": tuned,
        "max_boost_round": rounds,
        "seed": modeling.seed,
        **_features_signature(modeling),
    }
    return train_and_register(
        context, mlflow_tracking, modeling, training_set, ModelSpec(fit, refit, configuration)
    )


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    deps=["direction_lstm_sweep"],
    kinds={"pytorch", "mlflow", "polars"},
    description="LSTM (torch) over 20-session sequences of standardized features (scaler fitted "
    "on the fitted rows only), plain (unweighted) cross entropy so its probabilities stay "
    "calibrated, seeded; CUDA when present. Epochs chosen by early "
    "stopping on validation, then refit on train + validation for that many epochs. Parameters "
    "from the `direction_lstm` Optuna study when it exists.",
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
        return TrainedModel(model, record, {}, ("torch",))

    def refit(view: TrainingSet, selection: TrainedModel) -> TrainedModel:
        epochs = max(1, int(selection.record.details["best_epoch"]))
        chosen = replace(config, max_epochs=epochs)
        model, record = train_direction_lstm(view, chosen, early_stopping=False)
        params = {**vars(chosen), "max_epochs_searched": config.max_epochs}
        return TrainedModel(model, record, {**params, "params_source": source}, ("torch",))

    configuration = {**vars(config), "class_weights": False, **_features_signature(modeling)}
    return train_and_register(
        context, mlflow_tracking, modeling, training_set, ModelSpec(fit, refit, configuration)
    )


@dg.asset(
    ins={
        "training_set": dg.AssetIn("training_set"),
        "direction_xgboost": dg.AssetIn("direction_xgboost"),
        "direction_lstm": dg.AssetIn("direction_lstm"),
    },
    kinds={"mlflow", "polars"},
    description="Soft-voting ensemble of the two direction models (equal weights; the LSTM's "
    "first rows without a full window fall back to XGBoost alone): the registered members of "
    "this run; validation rows are the vote of the members' selection predictions.",
    **MODEL_ASSET,
)
def direction_ensemble(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
    direction_xgboost: pl.DataFrame,
    direction_lstm: pl.DataFrame,
) -> pl.DataFrame:
    versions = {
        "direction_xgboost": direction_xgboost["model_version"][0],
        "direction_lstm": direction_lstm["model_version"][0],
    }
    members_selection = [
        f.filter(pl.col("split") == VALIDATION).select("symbol", "date", *PROBA_COLUMNS)
        for f in (direction_xgboost, direction_lstm)
    ]

    def fit(training: TrainingSet) -> TrainedModel:
        members = {name: mlflow_tracking.load(name, v) for name, v in versions.items()}
        empty = np.array([], dtype=int)
        record = FitRecord(empty, empty, empty, details={})
        params = {f"{name}_version": v for name, v in versions.items()}
        return TrainedModel(SoftVotingEnsemble(members), record, params, ("xgboost", "torch"))

    client = mlflow_tracking.client()
    member_configs = {
        name: client.get_model_version(name, v).tags.get("config_hash", "")
        for name, v in versions.items()
    }
    return train_and_register(
        context,
        mlflow_tracking,
        modeling,
        training_set,
        ModelSpec(fit, lambda view, selection: selection, {"members": member_configs}),
        selection_predictions=vote_frames(members_selection),
    )


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"mlflow", "polars"},
    description="GARCH(1,1) (arch) per symbol on daily returns x100, fitted on the training "
    "window, then refit on returns up to the validation end, and filtered forward with fixed "
    "parameters (no refit on later data) to forecast the next 20 sessions' realized volatility.",
    **MODEL_ASSET,
)
def volatility_garch(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    horizon = modeling.horizon

    def garch(training: TrainingSet, end) -> TrainedModel:
        start = training.windows.train_start if modeling.train_years else None
        model, record = train_volatility_garch(training, end, horizon, start=start)
        assert_no_test_rows(training, record)
        table = model.garch.params_table()
        params = {
            "horizon": horizon,
            "fit_end": end,
            "symbols_fitted": table.height,
            "symbols_skipped": len(model.garch.skipped),
            "median_persistence": float(table["persistence"].median()),
        }
        return TrainedModel(model, record, params, ("arch", "scipy"))

    def fit(training: TrainingSet) -> TrainedModel:
        return garch(training, training.windows.train_end)

    def refit(view: TrainingSet, selection: TrainedModel) -> TrainedModel:
        final = garch(view, view.windows.validation_end)
        context.add_output_metadata({"garch_params": md(final.model.garch.params_table())})
        return final

    configuration = {"model": "garch(1,1)", "horizon": horizon}
    return train_and_register(
        context, mlflow_tracking, modeling, training_set, ModelSpec(fit, refit, configuration)
    )


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"pytorch", "mlflow", "polars"},
    description="LSTM (torch) regressing the log of the next 20 sessions' realized volatility "
    "on 20-session feature sequences; scaler on the fitted rows only; epochs chosen by early "
    "stopping on validation, then refit on train + validation.",
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
        return TrainedModel(model, record, {}, ("torch",))

    def refit(view: TrainingSet, selection: TrainedModel) -> TrainedModel:
        epochs = max(1, int(selection.record.details["best_epoch"]))
        chosen = replace(config, max_epochs=epochs)
        model, record = train_volatility_lstm(view, chosen, early_stopping=False)
        params = {**vars(chosen), "max_epochs_searched": config.max_epochs}
        return TrainedModel(model, record, params, ("torch",))

    configuration = {**vars(config), "mean_correction": "smearing", **_features_signature(modeling)}
    return train_and_register(
        context, mlflow_tracking, modeling, training_set, ModelSpec(fit, refit, configuration)
    )


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set")},
    kinds={"scikitlearn", "mlflow", "polars"},
    description="Random forest (100 trees, class-balanced) for the regime of the next 20 "
    "sessions (Bear / Sideways / Bull / HighVol), fitted on the training window, then refit on "
    "train + validation with the same settings.",
    **MODEL_ASSET,
)
def regime_random_forest(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
) -> pl.DataFrame:
    def forest(training: TrainingSet) -> TrainedModel:
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

    configuration = {
        "n_estimators": modeling.forest_trees,
        "seed": modeling.seed,
        **_features_signature(modeling),
    }
    return train_and_register(
        context,
        mlflow_tracking,
        modeling,
        training_set,
        ModelSpec(forest, lambda view, selection: forest(view), configuration),
    )
