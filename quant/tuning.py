"""Hyper-parameter search objectives: mean purged walk-forward log loss on train + validation.

The test split is never touched. Each fold fits on the rows before its scored block (purged and
embargoed, ``quant.splits.walk_forward_folds``) and is scored on the block; models run a fixed
budget (no early stopping on the scored block, which would let the score pick the epoch).
Intermediate values go to the trial so a median pruner can stop hopeless trials early: XGBoost
reports the running mean after each fold, the LSTM its loss after every epoch of every fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import optuna
import polars as pl

from quant.dataset import TrainingSet
from quant.models.direction import probabilities, train_direction_lstm, train_direction_xgboost
from quant.models.lstm import LSTMConfig
from quant.splits import TRAIN, VALIDATION, walk_forward_folds

UNUSED = "unused"


def walk_forward_views(training: TrainingSet, n_folds: int, embargo: int) -> list[TrainingSet]:
    """One ``TrainingSet`` per fold whose ``train`` rows are the fold's fitting rows and whose
    ``validation`` rows are its scored block; every other row (test split included) is unused."""
    tuning = np.flatnonzero(training.mask(TRAIN, VALIDATION))
    subset = training.frame[tuning]
    folds = walk_forward_folds(subset["date"], subset["label_end"], n_folds, embargo)
    views = []
    for fold in folds:
        split = np.full(training.frame.height, UNUSED, dtype=object)
        split[tuning[fold.train]] = TRAIN
        split[tuning[fold.test]] = VALIDATION
        frame = training.frame.with_columns(pl.Series("split", split, dtype=pl.String))
        views.append(TrainingSet(frame, feature_columns=tuple(training.features)))
    return views


def log_loss_on_validation(model: object, view: TrainingSet) -> float:
    """Log loss of a direction model on the view's scored block."""
    block = view.rows(VALIDATION)
    proba = np.clip(probabilities(model.predict_frame(block)), 1e-7, 1.0)
    ok = np.isfinite(proba).all(axis=1)
    y = block["direction"].to_numpy()[ok]
    p = proba[ok] / proba[ok].sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


def suggest_xgboost(trial: optuna.Trial, max_rounds: int = 600) -> dict[str, object]:
    """The XGBoost search space (``num_boost_round`` included: CV runs a fixed budget)."""
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "eta": trial.suggest_float("eta", 0.01, 0.2, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 300.0, log=True),
        "lambda": trial.suggest_float("lambda", 0.1, 30.0, log=True),
        "num_boost_round": trial.suggest_int("num_boost_round", 50, max(50, max_rounds), step=50),
    }


def xgboost_objective(
    views: list[TrainingSet], seed: int, max_rounds: int = 600
) -> Callable[[optuna.Trial], float]:
    """Mean walk-forward log loss of XGBoost with the trial's parameters."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest_xgboost(trial, max_rounds)
        rounds = int(params.pop("num_boost_round"))
        losses = []
        for step, view in enumerate(views):
            model, _ = train_direction_xgboost(
                view, params, seed=seed, num_boost_round=rounds, early_stopping=False
            )
            losses.append(log_loss_on_validation(model, view))
            trial.report(float(np.mean(losses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    return objective


def suggest_lstm(trial: optuna.Trial, base: LSTMConfig) -> LSTMConfig:
    """The LSTM search space over a base configuration (epochs fixed by the base)."""
    return replace(
        base,
        hidden_size=trial.suggest_categorical("hidden_size", [8, 16, 32, 64]),
        dropout=trial.suggest_float("dropout", 0.0, 0.4),
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 5e-3, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
    )


def lstm_objective(views: list[TrainingSet], base: LSTMConfig) -> Callable[[optuna.Trial], float]:
    """Mean walk-forward log loss of the direction LSTM after ``base.max_epochs`` epochs."""

    def objective(trial: optuna.Trial) -> float:
        config = suggest_lstm(trial, base)
        losses = []
        for fold, view in enumerate(views):

            def report(epoch: int, loss: float, fold: int = fold) -> None:
                trial.report(loss, fold * config.max_epochs + epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            model, _ = train_direction_lstm(view, config, report, early_stopping=False)
            losses.append(log_loss_on_validation(model, view))
        return float(np.mean(losses))

    return objective


LSTM_PARAMS = ("hidden_size", "dropout", "learning_rate", "weight_decay")


def lstm_config_from(params: dict[str, object], base: LSTMConfig) -> LSTMConfig:
    """``base`` with a study's best LSTM parameters applied (others ignored)."""
    return replace(base, **{k: v for k, v in params.items() if k in LSTM_PARAMS})
