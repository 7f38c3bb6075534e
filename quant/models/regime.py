"""Regime model: a class-balanced random forest for the regime of the next 20 sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.ensemble import RandomForestClassifier

from quant.dataset import TrainingSet
from quant.labels import Regime
from quant.models.frames import FitRecord, split_rows, with_outputs
from quant.models.preprocess import Standardizer
from quant.splits import TRAIN

PROBA_COLUMNS = ["p_bear", "p_sideways", "p_bull", "p_highvol"]
N_CLASSES = len(Regime)


@dataclass
class RegimeForestModel:
    """Random forest on standardized features (missing values at the training mean)."""

    features: list[str]
    scaler: Standardizer
    forest: RandomForestClassifier

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        x = self.scaler.transform(frame.select(self.features).to_numpy().astype(np.float64))
        proba = np.zeros((frame.height, N_CLASSES))
        proba[:, self.forest.classes_.astype(int)] = self.forest.predict_proba(x)
        return with_outputs(frame, dict(zip(PROBA_COLUMNS, proba.T, strict=True)))

    def importance(self) -> dict[str, float]:
        return dict(zip(self.features, self.forest.feature_importances_.tolist(), strict=True))


def train_regime_forest(
    training: TrainingSet,
    n_estimators: int = 100,
    min_samples_leaf: int = 25,
    seed: int = 7,
    n_jobs: int = 2,
) -> tuple[RegimeForestModel, FitRecord]:
    """100 class-balanced trees fitted on the training split (no early stopping: the forest
    does not overfit with more trees, and validation stays untouched for comparison)."""
    train = split_rows(training, TRAIN)
    x = training.matrix()[train]
    scaler = Standardizer.fit(x)
    forest = RandomForestClassifier(
        n_estimators=n_estimators,
        min_samples_leaf=min_samples_leaf,
        max_features="sqrt",
        class_weight="balanced",
        random_state=seed,
        n_jobs=n_jobs,
    )
    forest.fit(scaler.transform(x), training.frame["regime"].to_numpy()[train])
    # predict in one thread: threads add the trees' probabilities in a varying order, which
    # changes the last bits from one call to the next (the walk-forward's truncation test saw it)
    forest.n_jobs = 1
    record = FitRecord(
        fit_rows=train, scaling_rows=train, early_stopping_rows=np.array([], dtype=int)
    )
    return RegimeForestModel(training.features, scaler, forest), record
