"""Direction models: P(Down), P(Neutral), P(Up) for the next session, and their soft vote."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from quant.dataset import TrainingSet
from quant.labels import Direction
from quant.models.frames import (
    KEYS,
    FitRecord,
    scatter,
    sorted_frame,
    train_and_validation_rows,
    with_outputs,
)
from quant.models.lstm import LSTMClassifier, LSTMConfig
from quant.models.preprocess import Standardizer
from quant.models.sequences import sequence_windows
from quant.models.xgboost_direction import XGBoostClassifier

PROBA_COLUMNS = ["p_down", "p_neutral", "p_up"]
N_CLASSES = len(Direction)


def probabilities(frame: pl.DataFrame) -> np.ndarray:
    """The (n, 3) probability matrix of a direction prediction frame."""
    return frame.select(PROBA_COLUMNS).to_numpy().astype(np.float64)


@dataclass
class DirectionXGBoostModel:
    """XGBoost on the raw feature columns."""

    features: list[str]
    classifier: XGBoostClassifier

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        proba = self.classifier.predict_proba(frame.select(self.features).to_numpy())
        return with_outputs(frame, dict(zip(PROBA_COLUMNS, proba.T, strict=True)))


def train_direction_xgboost(
    training: TrainingSet,
    params: Mapping[str, object] | None = None,
    seed: int = 7,
    callbacks: Sequence[object] = (),
    num_boost_round: int = 600,
    early_stopping: bool = True,
) -> tuple[DirectionXGBoostModel, FitRecord]:
    """Fit on the training split, early-stop on the validation split (or, without
    ``early_stopping``, run every round: in cross-validation the scored block must not pick the
    number of rounds)."""
    train, valid = train_and_validation_rows(training)
    x = training.matrix()
    y = training.frame["direction"].to_numpy()
    classifier = XGBoostClassifier(
        N_CLASSES,
        seed=seed,
        num_boost_round=num_boost_round,
        early_stopping_rounds=40 if early_stopping else None,
    )
    if params:
        classifier.params.update(params)
    classifier.fit(x[train], y[train], x[valid], y[valid], training.features, callbacks)
    record = FitRecord(
        fit_rows=train,
        scaling_rows=np.array([], dtype=int),
        early_stopping_rows=valid,
        details={"best_iteration": classifier.best_iteration},
    )
    return DirectionXGBoostModel(training.features, classifier), record


@dataclass
class SequenceInputs:
    """Standardized feature matrix of a (symbol, date)-sorted frame and its history windows."""

    frame: pl.DataFrame
    matrix: np.ndarray
    ends: np.ndarray
    windows: np.ndarray


def sequence_inputs(
    frame: pl.DataFrame, features: list[str], scaler: Standardizer, length: int
) -> SequenceInputs:
    ordered = sorted_frame(frame)
    matrix = scaler.transform(ordered.select(features).to_numpy().astype(np.float64))
    ends, windows = sequence_windows(ordered["symbol"].to_numpy(), length)
    return SequenceInputs(ordered, matrix, ends, windows)


def windows_ending_in(inputs: SequenceInputs, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The windows (and their end rows) whose last row is one of ``rows``."""
    keep = np.isin(inputs.ends, rows)
    return inputs.ends[keep], inputs.windows[keep]


def sequence_fit_record(
    network: object, scaling_rows: np.ndarray, train_windows: np.ndarray, valid_windows: np.ndarray
) -> FitRecord:
    """What a sequence model read: every row inside a training window (fit), the scaler's rows,
    every row inside a validation window (early stopping), and how the fit went."""
    return FitRecord(
        fit_rows=np.unique(train_windows),
        scaling_rows=scaling_rows,
        early_stopping_rows=np.unique(valid_windows),
        details={
            "best_epoch": network.best_epoch,
            "epochs": len(network.history),
            "device": network.device_used,
            "fit_seconds": network.fit_seconds,
        },
    )


@dataclass
class DirectionLSTMModel:
    """An LSTM over the last ``sequence_length`` sessions of standardized features."""

    features: list[str]
    scaler: Standardizer
    network: LSTMClassifier
    sequence_length: int

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        inputs = sequence_inputs(frame, self.features, self.scaler, self.sequence_length)
        proba = self.network.predict_proba(inputs.matrix, inputs.windows)
        full = scatter(inputs.frame.height, inputs.ends, proba)
        return with_outputs(inputs.frame, dict(zip(PROBA_COLUMNS, full.T, strict=True)))


def train_direction_lstm(
    training: TrainingSet,
    config: LSTMConfig | None = None,
    epoch_callback: Callable[[int, float], None] | None = None,
    early_stopping: bool = True,
    class_weights: bool = False,
) -> tuple[DirectionLSTMModel, FitRecord]:
    """Standardize with training rows only, fit on windows ending in train, early-stop on
    windows ending in validation.

    Plain cross entropy by default, so the probabilities are calibrated as trained (they get half
    the ensemble's vote and feed the signals). ``class_weights`` trains on inverse-frequency
    weighted cross entropy instead and then recalibrates the logits (``LogitCalibration``: on
    the validation windows with early stopping, by the closed-form prior shift without), so the
    served probabilities stay calibrated either way."""
    config = config or LSTMConfig()
    train, valid = train_and_validation_rows(training)
    features = training.features
    scaler = Standardizer.fit(training.matrix()[train])
    # the training-set frame is already (symbol, date)-sorted, so row indices carry over
    inputs = sequence_inputs(training.frame, features, scaler, config.sequence_length)
    y = training.frame["direction"].to_numpy()
    train_ends, train_windows = windows_ending_in(inputs, train)
    valid_ends, valid_windows = windows_ending_in(inputs, valid)
    network = LSTMClassifier(config, N_CLASSES).fit(
        inputs.matrix,
        train_windows,
        y[train_ends],
        valid_windows,
        y[valid_ends],
        class_weights=class_weights,
        epoch_callback=epoch_callback,
        early_stopping=early_stopping,
    )
    record = sequence_fit_record(network, train, train_windows, valid_windows)
    return DirectionLSTMModel(features, scaler, network, config.sequence_length), record


@dataclass
class SoftVotingEnsemble:
    """The weighted mean of its members' probabilities; a row some member cannot score (an LSTM
    without a full window) gets the mean of the members that can."""

    members: dict[str, object]
    weights: dict[str, float] = field(default_factory=dict)

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        ordered = sorted_frame(frame)
        total = np.zeros((ordered.height, N_CLASSES))
        weight = np.zeros((ordered.height, 1))
        for name, member in self.members.items():
            proba = probabilities(sorted_frame(member.predict_frame(ordered)))
            w = self.weights.get(name, 1.0)
            present = np.isfinite(proba).all(axis=1, keepdims=True)
            total += np.where(present, proba * w, 0.0)
            weight += present * w
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(weight > 0, total / weight, np.nan)
        return with_outputs(ordered, dict(zip(PROBA_COLUMNS, mean.T, strict=True)))


def vote_frames(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The soft vote of already computed direction predictions (symbol, date, p_*), with the
    ensemble's rule: each row averages the members that scored it."""
    stacked = pl.concat([f.select(*KEYS, *PROBA_COLUMNS) for f in frames]).drop_nulls(PROBA_COLUMNS)
    return stacked.group_by(KEYS).agg(pl.col(PROBA_COLUMNS).mean()).sort(KEYS)
