"""Time splits anchored to the data, and purged walk-forward folds.

A row's label reads the sessions up to ``label_end`` (20 sessions ahead). A training row whose
label reaches into the validation period would let the model learn from validation prices, so
each boundary is *purged*: a row belongs to a split only if its label also ends inside it. The
rows removed that way are marked ``purged`` and never used for fitting or evaluation.

Two modes (``SplitConfig.mode``):

- ``rolling`` (the default): for data whose labels end at T, validation is the last
  ``validation_sessions`` labeled sessions of the anchor symbols (the equities: one set of
  boundaries for the pooled panel), train is everything before it (expanding, or the last
  ``train_years`` for a sliding window). No date is a constant: every retrain on newer data
  gets newer windows. Rows of a symbol whose data run past the anchor's are held out (``test``):
  no fitted label may read a price after T.
- ``fixed``: explicit research dates (train ≤ ``train_end``, validation to ``validation_end``,
  test after), for studies that must compare models on one window.

After model selection on validation the models are refit on every row up to the validation end
whose label ends by then (``refit_mask``): the served model has seen the newest data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

TRAIN, VALIDATION, TEST, PURGED, OUTSIDE = "train", "validation", "test", "purged", "outside"
SPLITS = (TRAIN, VALIDATION, TEST)
ROLLING, FIXED = "rolling", "fixed"


@dataclass(frozen=True)
class SplitConfig:
    """How the chronological splits are drawn (see the module docstring for the two modes)."""

    mode: str = ROLLING
    validation_sessions: int = 126
    train_years: float | None = None
    train_end: date | None = None
    validation_end: date | None = None
    horizon: int = 20
    n_folds: int = 4
    embargo: int = 20

    def __post_init__(self) -> None:
        if self.mode not in (ROLLING, FIXED):
            raise ValueError(f"split mode must be {ROLLING!r} or {FIXED!r}, got {self.mode!r}")
        if self.mode == FIXED:
            if self.train_end is None or self.validation_end is None:
                raise ValueError("fixed splits need both train_end and validation_end")
            if self.validation_end <= self.train_end:
                raise ValueError(
                    f"validation_end {self.validation_end} must be after train_end {self.train_end}"
                )
        if self.validation_sessions < 2 * self.horizon:
            raise ValueError(
                f"validation_sessions ({self.validation_sessions}) must be at least twice the "
                f"label horizon ({self.horizon})"
            )
        if self.train_years is not None and self.train_years <= 0:
            raise ValueError(f"train_years must be positive, got {self.train_years}")
        if self.embargo < self.horizon:
            raise ValueError(
                f"embargo ({self.embargo} sessions) must be at least the label horizon "
                f"({self.horizon})"
            )

    @classmethod
    def fixed(cls, train_end: date, validation_end: date, **kwargs: object) -> SplitConfig:
        """Explicit research dates (``mode = fixed``)."""
        return cls(mode=FIXED, train_end=train_end, validation_end=validation_end, **kwargs)


@dataclass(frozen=True)
class SplitWindows:
    """The resolved boundaries of one training run (inclusive ISO dates).

    ``data_as_of`` is the last session any fitted label may read (rolling: the anchor's last
    label end; fixed: the validation end); sessions after it are new to the model, which is
    where it is judged in shadow.
    """

    mode: str
    train_start: date
    train_end: date
    validation_start: date
    validation_end: date
    data_as_of: date
    anchor_symbols: int = 0

    def tags(self) -> dict[str, str]:
        """The windows as MLflow tags (what every model version says it saw)."""
        return {
            "split_mode": self.mode,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "validation_start": self.validation_start.isoformat(),
            "validation_end": self.validation_end.isoformat(),
            "data_as_of": self.data_as_of.isoformat(),
        }


def _anchor_rows(frame: pl.DataFrame, anchors: frozenset[str] | None) -> pl.DataFrame:
    labeled = frame.filter(pl.col("label_end").is_not_null())
    if anchors:
        chosen = labeled.filter(pl.col("symbol").is_in(sorted(anchors)))
        if not chosen.is_empty():
            return chosen
    return labeled


def resolve_windows(
    frame: pl.DataFrame, config: SplitConfig, anchors: frozenset[str] | None = None
) -> SplitWindows:
    """The boundaries for ``frame`` (symbol, date, label_end; rows with a null ``label_end``
    are unlabeled and ignored), anchored to the ``anchors`` symbols' sessions (all symbols when
    none of them is present)."""
    rows = _anchor_rows(frame, anchors)
    if rows.is_empty():
        raise ValueError("no labeled rows: nothing to split")
    sessions = rows["date"].unique().sort()
    first = frame["date"].min()
    if config.mode == FIXED:
        assert config.train_end is not None and config.validation_end is not None
        after = sessions.filter(sessions > config.train_end)
        if after.is_empty():
            raise ValueError(f"no labeled session after train_end {config.train_end}")
        train_end, validation_start = config.train_end, after[0]
        validation_end = data_as_of = config.validation_end
    else:
        needed = config.validation_sessions + config.horizon + 1
        if sessions.len() < needed:
            raise ValueError(
                f"only {sessions.len()} labeled sessions of the anchor symbols; a rolling split "
                f"needs at least {needed} ({config.validation_sessions} validation sessions, "
                f"the {config.horizon}-session purge and some training history)"
            )
        validation_start = sessions[-config.validation_sessions]
        train_end = sessions[-config.validation_sessions - 1]
        validation_end = sessions[-1]
        data_as_of = rows.filter(pl.col("date") == validation_end)["label_end"].max()
    train_start = first
    if config.train_years is not None:
        span = timedelta(days=math.ceil(365.25 * config.train_years))
        train_start = max(first, validation_start - span)
    n_anchor = rows["symbol"].n_unique()
    return SplitWindows(
        config.mode, train_start, train_end, validation_start, validation_end, data_as_of, n_anchor
    )


def assign_splits(frame: pl.DataFrame, windows: SplitWindows) -> pl.Series:
    """The split of each row (``train``/``validation``/``test``/``purged``/``outside``) from its
    ``date`` and ``label_end``: rows before a sliding window's start are ``outside``."""
    d, end = pl.col("date"), pl.col("label_end")
    split = (
        pl.when(d < windows.train_start)
        .then(pl.lit(OUTSIDE))
        .when(d <= windows.train_end)
        .then(pl.when(end <= windows.train_end).then(pl.lit(TRAIN)).otherwise(pl.lit(PURGED)))
        .when(d <= windows.validation_end)
        .then(pl.when(end <= windows.data_as_of).then(pl.lit(VALIDATION)).otherwise(pl.lit(PURGED)))
        .otherwise(pl.lit(TEST))
    )
    return frame.select(split.alias("split")).to_series()


def refit_mask(frame: pl.DataFrame, windows: SplitWindows) -> np.ndarray:
    """Rows the final model is refit on: inside the window (train start .. validation end) with
    a label that ends by ``data_as_of`` (the train/validation purge zone included: with no
    boundary between them any more, those rows are honest training data)."""
    d, end = pl.col("date"), pl.col("label_end")
    inside = (d >= windows.train_start) & (d <= windows.validation_end)
    return frame.select(inside & (end <= windows.data_as_of)).to_series().to_numpy()


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
