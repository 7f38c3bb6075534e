"""Modelling configuration as a resource: split dates, label thresholds, model sizes, seeds.

One place for everything a retrain may want to change from the launchpad (e.g. a smaller
``lstm_max_epochs`` for a quick run), shared by the labels, the training set and every model.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from quant.labels import LabelConfig
from quant.models.lstm import LSTMConfig
from quant.splits import SplitConfig


class ModelingConfig(dg.ConfigurableResource):
    """Defaults follow DESIGN.md §6: train ≤ 2023-12-31, validation 2024-H1, test after."""

    train_end: str = "2023-12-31"
    validation_end: str = "2024-06-30"
    horizon: int = 20
    walk_forward_folds: int = 4
    up_threshold: float = 0.001
    down_threshold: float = -0.001
    seed: int = 7
    xgb_rounds: int = 600
    lstm_max_epochs: int = 30
    lstm_patience: int = 4
    lstm_hidden: int = 32
    lstm_sequence: int = 20
    forest_trees: int = 100
    bootstrap_samples: int = 200

    @classmethod
    def for_profile(cls, profile: str) -> ModelingConfig:
        """``full`` (the defaults) or ``quick``: tiny models that still run every step, for
        smoke tests and the end-to-end suite (set with MARKET_MODEL_PROFILE)."""
        if profile == "full":
            return cls()
        if profile == "quick":
            return cls(
                xgb_rounds=40,
                lstm_max_epochs=2,
                lstm_hidden=8,
                forest_trees=10,
                bootstrap_samples=20,
            )
        raise ValueError(f"MARKET_MODEL_PROFILE must be 'full' or 'quick', got {profile!r}")

    def split_config(self) -> SplitConfig:
        return SplitConfig(
            train_end=date.fromisoformat(self.train_end),
            validation_end=date.fromisoformat(self.validation_end),
            horizon=self.horizon,
            n_folds=self.walk_forward_folds,
            embargo=self.horizon,
        )

    def label_config(self) -> LabelConfig:
        return LabelConfig(
            up_threshold=self.up_threshold,
            down_threshold=self.down_threshold,
            horizon=self.horizon,
            train_end=date.fromisoformat(self.train_end),
        )

    def lstm_config(self) -> LSTMConfig:
        return LSTMConfig(
            hidden_size=self.lstm_hidden,
            sequence_length=self.lstm_sequence,
            max_epochs=self.lstm_max_epochs,
            patience=self.lstm_patience,
            seed=self.seed,
        )
