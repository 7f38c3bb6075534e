"""Modelling configuration as a resource: split mode and windows, label thresholds, model sizes,
seeds, and the rules of promotion in shadow.

One place for everything a retrain may want to change from the launchpad (e.g. a smaller
``lstm_max_epochs`` for a quick run), shared by the labels, the training set, every model and
the shadow promotion. No date is a constant: the default ``rolling`` split anchors the windows
to the data's own last labeled session; ``fixed`` takes explicit research dates.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from quant.labels import DEFAULT_BAND_SCALE, LabelConfig
from quant.models.lstm import LSTMConfig
from quant.promotion import ShadowPolicy
from quant.splits import FIXED, ROLLING, SplitConfig
from quant.universe import AssetClass, Universe


class ModelingConfig(dg.ConfigurableResource):
    """Defaults follow DESIGN.md §6: rolling windows (validation = the last 126 labeled
    sessions of the equities, train = everything before, expanding), refit on train +
    validation after selection, promotion decided in shadow on 21 new sessions."""

    split_mode: str = ROLLING
    validation_sessions: int = 126
    train_years: float | None = None
    # fixed mode only (research): explicit ISO dates
    train_end: str | None = None
    validation_end: str | None = None
    horizon: int = 20
    walk_forward_folds: int = 4
    up_threshold: float = 0.001
    down_threshold: float = -0.001
    # "fixed" (the thresholds above) or "vol_scaled": ± scale × trailing 20-session std of daily
    # log returns per symbol (quant.labels.LabelConfig)
    direction_band: str = "fixed"
    direction_band_scale: float = DEFAULT_BAND_SCALE
    seed: int = 7
    xgb_rounds: int = 600
    lstm_max_epochs: int = 30
    lstm_patience: int = 4
    lstm_hidden: int = 32
    lstm_sequence: int = 20
    forest_trees: int = 100
    bootstrap_samples: int = 200
    shadow_sessions: int = 21
    shadow_alpha: float = 0.05
    margin_log_loss: float = 0.002
    margin_qlike: float = 0.02
    margin_balanced_accuracy: float = 0.01

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
        common = {
            "validation_sessions": self.validation_sessions,
            "train_years": self.train_years,
            "horizon": self.horizon,
            "n_folds": self.walk_forward_folds,
            "embargo": self.horizon,
        }
        if self.split_mode == FIXED:
            if not (self.train_end and self.validation_end):
                raise ValueError("split_mode 'fixed' needs train_end and validation_end dates")
            return SplitConfig.fixed(
                date.fromisoformat(self.train_end),
                date.fromisoformat(self.validation_end),
                **common,
            )
        return SplitConfig(mode=self.split_mode, **common)

    def label_config(self, anchors: frozenset[str] | None = None) -> LabelConfig:
        return LabelConfig(
            up_threshold=self.up_threshold,
            down_threshold=self.down_threshold,
            direction_band=self.direction_band,
            direction_band_scale=self.direction_band_scale,
            horizon=self.horizon,
            split=self.split_config(),
            anchors=anchors,
        )

    def lstm_config(self) -> LSTMConfig:
        return LSTMConfig(
            hidden_size=self.lstm_hidden,
            sequence_length=self.lstm_sequence,
            max_epochs=self.lstm_max_epochs,
            patience=self.lstm_patience,
            seed=self.seed,
        )

    def shadow_policy(self) -> ShadowPolicy:
        return ShadowPolicy(
            sessions=self.shadow_sessions,
            alpha=self.shadow_alpha,
            margins={
                "direction": self.margin_log_loss,
                "volatility": self.margin_qlike,
                "regime": self.margin_balanced_accuracy,
            },
            horizon=self.horizon,
        )


def anchor_symbols(universe: Universe) -> frozenset[str]:
    """The symbols the pooled windows are anchored to: the universe's equities."""
    return frozenset(i.symbol for i in universe.of_class(AssetClass.EQUITY))
