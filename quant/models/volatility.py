"""Volatility models: the annualized realized volatility of the next 20 sessions.

GARCH(1,1) per symbol (fitted on the training split, then filtered forward with fixed parameters)
and an LSTM on the feature sequences (fitted on log volatility). HAR-RV and the trailing 20-day
volatility are the baselines they are judged against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from quant.dataset import TrainingSet
from quant.models.direction import sequence_fit_record, sequence_inputs, windows_ending_in
from quant.models.frames import FitRecord, scatter, train_and_validation_rows, with_outputs
from quant.models.garch import GarchForecaster
from quant.models.har import HarForecaster
from quant.models.lstm import LSTMConfig, LSTMRegressor
from quant.models.preprocess import Standardizer
from quant.splits import TRAIN

OUTPUT = "vol_forecast"
TARGET = "fwd_vol_20"
RETURN = "log_ret_1"
MIN_VOL = 1e-4


@dataclass
class VolatilityGarchModel:
    """GARCH(1,1) forecasts of the next 20 sessions' realized volatility."""

    garch: GarchForecaster

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        ordered = frame.select("symbol", "date", RETURN).sort("symbol", "date")
        forecast = self.garch.forecast(ordered)
        joined = ordered.join(forecast, on=["symbol", "date"], how="left")
        return joined.select("symbol", "date", pl.col("garch_vol").alias(OUTPUT))


def train_volatility_garch(
    training: TrainingSet, train_end: date, horizon: int = 20, start: date | None = None
) -> tuple[VolatilityGarchModel, FitRecord]:
    """Fit one GARCH(1,1) per symbol on returns dated up to ``train_end`` (and from ``start``,
    for a sliding window)."""
    garch = GarchForecaster(horizon=horizon).fit(
        training.frame.select("symbol", "date", RETURN), train_end, start=start
    )
    dates = training.frame["date"]
    inside = dates <= train_end if start is None else (dates <= train_end) & (dates >= start)
    fitted = np.flatnonzero(inside.to_numpy())
    record = FitRecord(
        fit_rows=fitted,
        scaling_rows=np.array([], dtype=int),
        early_stopping_rows=np.array([], dtype=int),
        details={"skipped": dict(garch.skipped)},
    )
    return VolatilityGarchModel(garch), record


@dataclass
class VolatilityLSTMModel:
    """An LSTM regressing log forward volatility on standardized feature sequences."""

    features: list[str]
    scaler: Standardizer
    network: LSTMRegressor
    sequence_length: int

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        inputs = sequence_inputs(frame, self.features, self.scaler, self.sequence_length)
        log_vol = self.network.predict(inputs.matrix, inputs.windows)
        full = scatter(inputs.frame.height, inputs.ends, np.exp(log_vol))
        return with_outputs(inputs.frame, {OUTPUT: full})


def train_volatility_lstm(
    training: TrainingSet,
    config: LSTMConfig | None = None,
    epoch_callback: Callable[[int, float], None] | None = None,
    early_stopping: bool = True,
) -> tuple[VolatilityLSTMModel, FitRecord]:
    """Standardize on training rows, fit log(forward vol) on windows ending in train, early-stop
    on windows ending in validation (without ``early_stopping``: every epoch, e.g. a refit)."""
    config = config or LSTMConfig()
    train, valid = train_and_validation_rows(training)
    scaler = Standardizer.fit(training.matrix()[train])
    inputs = sequence_inputs(training.frame, training.features, scaler, config.sequence_length)
    target = np.log(np.maximum(training.frame[TARGET].to_numpy(), MIN_VOL))
    train_ends, train_windows = windows_ending_in(inputs, train)
    valid_ends, valid_windows = windows_ending_in(inputs, valid)
    network = LSTMRegressor(config).fit(
        inputs.matrix,
        train_windows,
        target[train_ends],
        valid_windows,
        target[valid_ends],
        epoch_callback=epoch_callback,
        early_stopping=early_stopping,
    )
    record = sequence_fit_record(network, train, train_windows, valid_windows)
    return VolatilityLSTMModel(training.features, scaler, network, config.sequence_length), record


def har_baseline(training: TrainingSet) -> pl.DataFrame:
    """HAR-RV forecasts (pooled OLS fitted on the training split) for every row:
    symbol, date, har_vol."""
    frame = training.frame.select("symbol", "date", RETURN, TARGET)
    har = HarForecaster().fit(frame, target=TARGET, train_mask=training.mask(TRAIN))
    return har.forecast(frame)
