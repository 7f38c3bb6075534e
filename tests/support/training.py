"""A small real training set (6 symbols of the sample) built without Dagster, for model tests."""

from __future__ import annotations

from datetime import date

import polars as pl

from quant.dataset import TrainingSet, build_training_set
from quant.features import compute_features
from quant.features.context import ContextSpec, compute_market_context
from quant.labels import LabelConfig, compute_labels
from quant.splits import SplitConfig
from quant.validation.adjust import adjust_prices

SYMBOLS = ["^GSPC", "^VIX", "AAPL", "MSFT", "JPM", "XOM"]


def small_training_set(
    panel: pl.DataFrame, splits: SplitConfig, start: date = date(2018, 1, 1)
) -> TrainingSet:
    raw = panel.filter(pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= start))
    bars = adjust_prices(raw).select("symbol", "date", "open", "high", "low", "close", "volume")
    spec = ContextSpec(
        volatility_index="^VIX", benchmark="^GSPC", equities=("AAPL", "MSFT", "JPM", "XOM")
    )
    context = compute_market_context(bars, spec)
    anchors = frozenset(SYMBOLS[2:])
    label_config = LabelConfig(train_end=splits.train_end, split=splits, anchors=anchors)
    labels, _ = compute_labels(bars, context, label_config)
    return build_training_set(compute_features(bars), context, labels, splits, anchors)
