"""Time splits and purged walk-forward folds.

A row's label reads the sessions up to ``label_end`` (20 sessions ahead). A training row whose
label reaches into the validation period would let the model learn from validation prices, so
each boundary is *purged*: a row belongs to a split only if its label also ends inside it. The
rows removed that way are marked ``purged`` and never used for fitting or evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

TRAIN, VALIDATION, TEST, PURGED = "train", "validation", "test", "purged"
SPLITS = (TRAIN, VALIDATION, TEST)


@dataclass(frozen=True)
class SplitConfig:
    """Boundaries (inclusive ends) of the chronological splits; test runs to the end of data."""

    train_end: date = date(2023, 12, 31)
    validation_end: date = date(2024, 6, 30)
    horizon: int = 20
    n_folds: int = 4
    embargo: int = 20

    def __post_init__(self) -> None:
        if self.validation_end <= self.train_end:
            raise ValueError(
                f"validation_end {self.validation_end} must be after train_end {self.train_end}"
            )
        if self.embargo < self.horizon:
            raise ValueError(
                f"embargo ({self.embargo} sessions) must be at least the label horizon "
                f"({self.horizon})"
            )


def assign_splits(frame: pl.DataFrame, config: SplitConfig) -> pl.Series:
    """The split of each row (``train``/``validation``/``test``/``purged``) from its ``date``
    and ``label_end``."""
    d, end = pl.col("date"), pl.col("label_end")
    split = (
        pl.when(d <= config.train_end)
        .then(pl.when(end <= config.train_end).then(pl.lit(TRAIN)).otherwise(pl.lit(PURGED)))
        .when(d <= config.validation_end)
        .then(
            pl.when(end <= config.validation_end).then(pl.lit(VALIDATION)).otherwise(pl.lit(PURGED))
        )
        .otherwise(pl.lit(TEST))
    )
    return frame.select(split.alias("split")).to_series()


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: row indices to fit on and to score on, and the scored dates."""

    number: int
    train: np.ndarray
    test: np.ndarray
    test_start: date
    test_end: date

    def describe(self) -> dict[str, object]:
        return {
            "fold": self.number,
            "train_rows": int(self.train.size),
            "test_rows": int(self.test.size),
            "test_start": str(self.test_start),
            "test_end": str(self.test_end),
        }


def walk_forward_folds(
    dates: pl.Series | np.ndarray,
    label_end: pl.Series | np.ndarray,
    n_folds: int,
    embargo: int,
) -> list[Fold]:
    """Expanding-window folds over ``dates`` (train+validation rows only).

    The unique dates are cut into ``n_folds + 1`` consecutive blocks; fold k scores block k and
    fits on every earlier row whose label ends before block k starts *and* that lies at least
    ``embargo`` sessions before it. Nothing from a scored block or after it is ever fitted.
    """
    day = pl.Series(dates).cast(pl.Date).to_numpy()
    ends = pl.Series(label_end).cast(pl.Date).to_numpy()
    unique = np.unique(day)
    if unique.size < (n_folds + 1) * 2:
        raise ValueError(f"{unique.size} dates are too few for {n_folds} walk-forward folds")
    edges = np.linspace(0, unique.size, n_folds + 2).astype(int)
    folds = []
    for k in range(1, n_folds + 1):
        start, stop = unique[edges[k]], unique[edges[k + 1] - 1]
        cutoff = unique[max(edges[k] - embargo, 0)]
        train = np.flatnonzero((day < cutoff) & (ends < start))
        test = np.flatnonzero((day >= start) & (day <= stop))
        folds.append(Fold(k, train, test, _as_date(start), _as_date(stop)))
    return folds


def _as_date(value: np.datetime64) -> date:
    return value.astype("datetime64[D]").astype(date)
