"""The training set: features + market context + labels for every symbol, split in time.

Rows are dropped, never imputed, when they cannot be used honestly: during warm-up (a price
feature or a context column still undefined) and when a label's future has not happened yet.
Rows in the purge zones at each split boundary stay in the frame, marked ``purged``, so each
symbol's history is contiguous for sequence models, but no model fits on or is scored on them. Volume features stay null for instruments without
volume (the models handle that: XGBoost natively, the others after standardization).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from quant.features import FEATURES
from quant.features.context import CONTEXT_COLUMNS
from quant.splits import (
    PURGED,
    SPLITS,
    TEST,
    TRAIN,
    VALIDATION,
    SplitConfig,
    SplitWindows,
    assign_splits,
    resolve_windows,
)

KEYS = ["symbol", "date"]
PRICE_FEATURES = [f.name for f in FEATURES if not f.uses_volume]
VOLUME_FEATURES = [f.name for f in FEATURES if f.uses_volume]
CONTEXT_FEATURES = list(CONTEXT_COLUMNS)
MODEL_FEATURES = [*PRICE_FEATURES, *VOLUME_FEATURES, *CONTEXT_FEATURES]
REQUIRED_LABELS = ["direction", "fwd_return_1", "fwd_vol_20", "regime"]
LABEL_FIELDS = [
    "fwd_return_1",
    "direction",
    "prev_direction",
    "fwd_vol_20",
    "trail_vol_20",
    "fwd_return_20",
    "regime",
    "regime_now",
    "label_end",
]


@dataclass(frozen=True)
class TrainingSet:
    """The assembled frame (sorted by symbol, date, with a ``split`` column: train, validation,
    test, purged or outside), the windows it was split by, and how many rows were dropped or
    purged."""

    frame: pl.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)
    feature_columns: tuple[str, ...] | None = None
    windows: SplitWindows | None = None

    @property
    def features(self) -> list[str]:
        """The model inputs: every known feature present (or ``feature_columns`` if given)."""
        if self.feature_columns is not None:
            return list(self.feature_columns)
        return [c for c in MODEL_FEATURES if c in self.frame.columns]

    def mask(self, *splits: str) -> np.ndarray:
        """Boolean row mask of the given splits."""
        return self.frame["split"].is_in(list(splits)).to_numpy()

    def rows(self, *splits: str) -> pl.DataFrame:
        return self.frame.filter(pl.col("split").is_in(list(splits)))

    def matrix(self, rows: pl.DataFrame | None = None) -> np.ndarray:
        """Feature matrix (float64, NaN where a feature is null) of ``rows`` (default: all)."""
        source = self.frame if rows is None else rows
        return source.select(self.features).to_numpy().astype(np.float64)


def warm_panel(
    features: pl.DataFrame, context: pl.DataFrame, labels: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Features + context (+ the label fields, left-joined: unlabeled rows stay) per (symbol,
    date), sorted, without warm-up rows (a price feature or a context column still undefined):
    the frame every model predicts from."""
    frame = features.join(context.select(*KEYS, *CONTEXT_FEATURES), on=KEYS, how="left")
    if labels is not None:
        fields = [c for c in LABEL_FIELDS if c in labels.columns]
        frame = frame.join(labels.select(*KEYS, *fields), on=KEYS, how="left")
    required = [c for c in [*PRICE_FEATURES, *CONTEXT_FEATURES] if c in frame.columns]
    return frame.filter(pl.all_horizontal(pl.col(required).is_not_null())).sort(KEYS)


def build_training_set(
    features: pl.DataFrame,
    context: pl.DataFrame,
    labels: pl.DataFrame,
    config: SplitConfig,
    anchors: frozenset[str] | None = None,
) -> TrainingSet:
    """Join features, context and labels per (symbol, date); drop warm-up and unlabeled rows;
    resolve the windows (anchored to ``anchors``, see ``quant.splits``) and tag every remaining
    row with its split."""
    frame = (
        features.join(context.select(*KEYS, *CONTEXT_FEATURES), on=KEYS, how="left")
        .join(labels.select(*KEYS, *LABEL_FIELDS), on=KEYS, how="inner")
        .sort(KEYS)
    )
    total = frame.height
    required = [c for c in [*PRICE_FEATURES, *CONTEXT_FEATURES] if c in frame.columns]
    warm = frame.filter(pl.all_horizontal(pl.col(required).is_not_null()))
    labeled = warm.filter(pl.all_horizontal(pl.col(REQUIRED_LABELS).is_not_null()))
    windows = resolve_windows(labeled, config, anchors)
    split = labeled.with_columns(assign_splits(labeled, windows))
    dropped = {
        "warm_up": total - warm.height,
        "unlabeled": warm.height - labeled.height,
        "purged": int((split["split"] == PURGED).sum()),
    }
    return TrainingSet(split, dropped, windows=windows)


def load_training_set(
    frame: pl.DataFrame, config: SplitConfig, anchors: frozenset[str] | None = None
) -> TrainingSet:
    """A stored training-set frame as a ``TrainingSet``, its windows resolved again from its
    own rows (the same rule on the same rows gives the same windows)."""
    ordered = frame.sort(KEYS)
    return TrainingSet(ordered, windows=resolve_windows(ordered, config, anchors))


def split_summary(training: TrainingSet) -> pl.DataFrame:
    """Rows, symbols and date range of each split (purged rows left out)."""
    return (
        training.rows(*SPLITS)
        .group_by("split")
        .agg(
            pl.len().alias("rows"),
            pl.col("symbol").n_unique().alias("symbols"),
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
        )
        .with_columns(
            pl.col("split").replace_strict({s: i for i, s in enumerate(SPLITS)}).alias("_o")
        )
        .sort("_o")
        .drop("_o")
    )


def class_balance(training: TrainingSet, label: str, names: list[str]) -> pl.DataFrame:
    """Share of each class of ``label`` per split (columns: split, one per class name)."""
    counts = (
        training.rows(*SPLITS)
        .group_by("split", label)
        .len()
        .with_columns((pl.col("len") / pl.col("len").sum().over("split")).alias("share"))
        .with_columns(
            pl.col(label).cast(pl.Int64).replace_strict(dict(enumerate(names))).alias("class")
        )
        .pivot(on="class", index="split", values="share")
        .fill_null(0.0)
    )
    present = [n for n in names if n in counts.columns]
    order = {s: i for i, s in enumerate(SPLITS)}
    return counts.select("split", *present).sort(pl.col("split").replace_strict(order))


def rows_per_split_and_symbol(training: TrainingSet) -> pl.DataFrame:
    """Rows per symbol (one row each) and split (one column each)."""
    return (
        training.rows(*SPLITS)
        .group_by("symbol", "split")
        .len()
        .pivot(on="split", index="symbol", values="len")
        .pipe(_with_all_splits)
        .fill_null(0)
        .select("symbol", TRAIN, VALIDATION, TEST)
        .sort("symbol")
    )


def _with_all_splits(frame: pl.DataFrame) -> pl.DataFrame:
    """Add a zero column for a split without rows (history replayed before the test period)."""
    missing = [s for s in (TRAIN, VALIDATION, TEST) if s not in frame.columns]
    return frame.with_columns(pl.lit(0, dtype=pl.UInt32).alias(s) for s in missing)


__all__ = [
    "MODEL_FEATURES",
    "TEST",
    "TRAIN",
    "VALIDATION",
    "TrainingSet",
    "build_training_set",
    "class_balance",
    "rows_per_split_and_symbol",
    "split_summary",
]
