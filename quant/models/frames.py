"""Shared plumbing for models that predict from a training-set-shaped frame.

Every fitted model here exposes ``predict_frame(frame) -> symbol, date, <outputs>`` over a frame
with the training set's columns (sorted or not): the one interface MLflow's pyfunc wrapper, the
report and the signals need. A ``FitRecord`` lists which rows shaped the model, so tests can prove
that no test row was used for fitting, scaling or early stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from quant.dataset import TrainingSet
from quant.splits import TRAIN, VALIDATION

KEYS = ["symbol", "date"]


@dataclass(frozen=True)
class FitRecord:
    """Row indices (into the training-set frame) each stage of fitting read."""

    fit_rows: np.ndarray
    scaling_rows: np.ndarray
    early_stopping_rows: np.ndarray
    details: dict[str, object] = field(default_factory=dict)


def split_rows(training: TrainingSet, split: str) -> np.ndarray:
    """Row indices of ``split`` in the training-set frame."""
    return np.flatnonzero(training.mask(split))


def train_and_validation_rows(training: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
    return split_rows(training, TRAIN), split_rows(training, VALIDATION)


def sorted_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in (symbol, date) order: sequence models read each symbol's rows in order."""
    return frame.sort(KEYS)


def with_outputs(frame: pl.DataFrame, columns: dict[str, np.ndarray]) -> pl.DataFrame:
    """``symbol, date`` of ``frame`` plus the given output columns (Float64, NaN → null)."""
    return frame.select(KEYS).with_columns(
        pl.Series(name, values, dtype=pl.Float64).fill_nan(None) for name, values in columns.items()
    )


def scatter(n_rows: int, ends: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values predicted for the rows ``ends`` placed into an all-NaN array of ``n_rows`` rows
    (rows without a full history window get no prediction)."""
    shape = (n_rows, *values.shape[1:])
    out = np.full(shape, np.nan)
    out[ends] = values
    return out
