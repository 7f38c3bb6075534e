"""Volatility models: the annualized realized volatility of the next 20 sessions.

GARCH(1,1) per symbol (fitted on the training split, then filtered forward with fixed parameters)
and an LSTM on the feature sequences (fitted on log volatility, its forecast corrected from the
median back to the mean by a smearing factor). HAR-RV and the trailing 20-day volatility are the
baselines they are judged against.
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


def smearing_factor(residuals: np.ndarray) -> float:
    """Duan's (1983) smearing estimate of E[exp(e)] for residuals ``e`` of a regression in logs:
    ``mean(exp(e))`` (1.0 when there are none)."""
    e = np.asarray(residuals, dtype=np.float64)
    e = e[np.isfinite(e)]
    return float(np.mean(np.exp(e))) if e.size else 1.0


@dataclass
class VolatilityLSTMModel:
    """An LSTM regressing log forward volatility on standardized feature sequences.

    The network estimates E[log vol | window], so exp of it is (about) the conditional median,
    biased low for a mean-squared or QLIKE evaluation of vol. ``predict_frame`` returns the mean,
    ``smearing × exp(E[log vol])`` (Duan's smearing estimator), ``smearing`` = mean(exp(residual))
    of log vol over the windows ending in the training rows, fitted once and stored here (a plain
    float: it pickles with the model; a model pickled before it existed reads 1.0, the median).

    Smearing rather than the lognormal exp(s²/2): it assumes nothing about the residuals' shape.
    Log realized vol is close to Gaussian but skewed to the right by vol spikes, which the
    lognormal factor would mis-price, and the smearing mean also absorbs whatever mean residual
    early stopping leaves on the training rows. Residuals on the training rows are in-sample and
    so a little smaller than out-of-sample ones: the correction errs, if anything, on the low
    side.
    """

    features: list[str]
    scaler: Standardizer
    network: LSTMRegressor
    sequence_length: int
    smearing: float = 1.0

    def predict_log_vol(self, frame: pl.DataFrame) -> pl.DataFrame:
        """symbol, date, ``log_vol``: the network's E[log vol] (exp of it is the median
        forecast), null for rows without a full window."""
        inputs = sequence_inputs(frame, self.features, self.scaler, self.sequence_length)
        log_vol = self.network.predict(inputs.matrix, inputs.windows)
        return with_outputs(
            inputs.frame, {"log_vol": scatter(inputs.frame.height, inputs.ends, log_vol)}
        )

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """symbol, date, ``vol_forecast``: the mean forecast ``smearing × exp(E[log vol])``."""
        inputs = sequence_inputs(frame, self.features, self.scaler, self.sequence_length)
        log_vol = self.network.predict(inputs.matrix, inputs.windows)
        full = scatter(inputs.frame.height, inputs.ends, self.smearing * np.exp(log_vol))
        return with_outputs(inputs.frame, {OUTPUT: full})


def train_volatility_lstm(
    training: TrainingSet,
    config: LSTMConfig | None = None,
    epoch_callback: Callable[[int, float], None] | None = None,
    early_stopping: bool = True,
) -> tuple[VolatilityLSTMModel, FitRecord]:
    """Standardize on training rows, fit log(forward vol) on windows ending in train, early-stop
    on windows ending in validation (without ``early_stopping``: every epoch, e.g. a refit), then
    estimate the smearing factor from the training windows' residuals (no validation row)."""
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
    residuals = target[train_ends] - network.predict(inputs.matrix, train_windows)
    smearing = smearing_factor(residuals)
    record = sequence_fit_record(network, train, train_windows, valid_windows)
    record.details["smearing_factor"] = smearing
    model = VolatilityLSTMModel(
        training.features, scaler, network, config.sequence_length, smearing
    )
    return model, record


def har_baseline(training: TrainingSet) -> pl.DataFrame:
    """HAR-RV forecasts (pooled OLS fitted on the training split) for every row:
    symbol, date, har_vol."""
    frame = training.frame.select("symbol", "date", RETURN, TARGET)
    har = HarForecaster().fit(frame, target=TARGET, train_mask=training.mask(TRAIN))
    return har.forecast(frame)
