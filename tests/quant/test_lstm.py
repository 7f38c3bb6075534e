"""History windows and the LSTM classifier/regressor on tiny synthetic panels (CPU, seconds).

Windows: exact indices, never across symbols, short symbols skipped. Networks: learn a toy
pattern, seeding, early stopping with the best weights restored, class weights and the
recalibration of a weighted fit, the epoch callback, pickling and device choice; the volatility
LSTM's median-to-mean (smearing) correction.
"""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import cloudpickle
import numpy as np
import polars as pl
import pytest
import torch

from quant.dataset import TrainingSet
from quant.models.lstm import (
    LogitCalibration,
    LSTMClassifier,
    LSTMConfig,
    LSTMRegressor,
    inverse_frequency_weights,
    resolve_device,
)
from quant.models.sequences import sequence_windows
from quant.models.volatility import VolatilityLSTMModel, train_volatility_lstm
from quant.splits import TEST, TRAIN, VALIDATION

LENGTH = 8
LAG = 3  # the toy class is the sign of the first feature LAG sessions before the window's end
FAST = LSTMConfig(
    hidden_size=16,
    dropout=0.0,
    sequence_length=LENGTH,
    batch_size=64,
    max_epochs=20,
    patience=3,
    learning_rate=2e-2,
    device="cpu",
)


# --- sequence_windows ---------------------------------------------------------------------------

SYMBOLS = np.array(["A"] * 4 + ["B"] * 2 + ["C"] * 5)  # rows 0-3, 4-5, 6-10


def test_windows_are_exact_and_skip_short_symbols() -> None:
    ends, windows = sequence_windows(SYMBOLS, 3)
    assert ends.tolist() == [2, 3, 8, 9, 10]  # B has 2 rows < 3: no window
    assert windows.tolist() == [[0, 1, 2], [1, 2, 3], [6, 7, 8], [7, 8, 9], [8, 9, 10]]
    assert windows.dtype == np.int64
    assert ends.dtype == np.int64


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6])
def test_windows_never_cross_symbols_nor_read_past_their_end(length: int) -> None:
    symbols = SYMBOLS.astype(object)  # polars hands strings over as object arrays
    ends, windows = sequence_windows(symbols, length)
    assert windows.shape == (len(ends), length)
    assert (symbols[windows] == symbols[ends][:, None]).all()
    assert (windows[:, -1] == ends).all()
    assert (np.diff(windows, axis=1) == 1).all()


def test_length_one_gives_every_row_and_too_long_gives_none() -> None:
    ends, windows = sequence_windows(SYMBOLS, 1)
    assert ends.tolist() == list(range(len(SYMBOLS)))
    assert windows.tolist() == [[i] for i in range(len(SYMBOLS))]
    ends, windows = sequence_windows(SYMBOLS, 6)
    assert ends.size == 0
    assert windows.shape == (0, 6)
    with pytest.raises(ValueError):
        sequence_windows(SYMBOLS, 0)


# --- toy panels ---------------------------------------------------------------------------------


def toy_panel(n_symbols: int = 4, rows: int = 400, seed: int = 0):
    """A standard-normal panel of 2 features, its windows and the symbol code of each window."""
    rng = np.random.default_rng(seed)
    symbols = np.repeat(np.arange(n_symbols), rows)
    X = rng.standard_normal((len(symbols), 2)).astype(np.float32)
    ends, windows = sequence_windows(symbols, LENGTH)
    return X, ends, windows, symbols[ends]


def split(windows: np.ndarray, y: np.ndarray, owner: np.ndarray):
    """Symbols 0-1 train, 2 validates, 3 is held out."""
    parts = [owner <= 1, owner == 2, owner == 3]
    return [(windows[m], y[m]) for m in parts]


@pytest.fixture(scope="module")
def sign_task():
    X, ends, windows, owner = toy_panel()
    y = (X[ends - LAG, 0] > 0).astype(np.int64)
    return X, split(windows, y, owner)


@pytest.fixture(scope="module")
def sign_model(sign_task) -> LSTMClassifier:
    X, ((w_tr, y_tr), (w_va, y_va), _) = sign_task
    return LSTMClassifier(FAST, n_classes=2).fit(X, w_tr, y_tr, w_va, y_va)


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(len(y)), y])))


# --- classifier and regressor -------------------------------------------------------------------


def test_the_classifier_learns_a_lagged_sign(sign_task, sign_model: LSTMClassifier) -> None:
    X, (_, _, (w_te, y_te)) = sign_task
    proba = sign_model.predict_proba(X, w_te)
    assert proba.shape == (len(w_te), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    accuracy = (proba.argmax(axis=1) == y_te).mean()
    assert accuracy > 0.85  # chance is 0.5
    assert sign_model.device_used == "cpu"
    assert sign_model.fit_seconds > 0
    assert [h["epoch"] for h in sign_model.history] == list(range(1, len(sign_model.history) + 1))


def test_the_regressor_fits_a_window_mean() -> None:
    X, _, windows, owner = toy_panel(seed=1)
    y = X[windows, 0].mean(axis=1)
    (w_tr, y_tr), (w_va, y_va), (w_te, y_te) = split(windows, y, owner)
    model = LSTMRegressor(FAST).fit(X, w_tr, y_tr, w_va, y_va)
    pred = model.predict(X, w_te)
    assert pred.shape == (len(w_te),)
    assert np.mean((pred - y_te) ** 2) < 0.2 * np.var(y_te)


def test_the_same_seed_gives_identical_predictions(sign_task, sign_model) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, _)) = sign_task
    again = LSTMClassifier(FAST, n_classes=2).fit(X, w_tr, y_tr, w_va, y_va)
    np.testing.assert_array_equal(again.predict_proba(X, w_te), sign_model.predict_proba(X, w_te))
    assert again.history == sign_model.history


def test_early_stopping_restores_the_best_epoch() -> None:
    X, ends, windows, owner = toy_panel(seed=2)
    noise = np.random.default_rng(3).integers(0, 2, len(ends))  # nothing to learn
    (w_tr, y_tr), (w_va, y_va), _ = split(windows, noise, owner)
    config = LSTMConfig(
        hidden_size=32, sequence_length=LENGTH, batch_size=32, max_epochs=40, patience=2,
        learning_rate=3e-2, device="cpu",
    )  # fmt: skip
    model = LSTMClassifier(config, n_classes=2).fit(X, w_tr, y_tr, w_va, y_va)
    assert len(model.history) < config.max_epochs
    assert model.best_epoch < len(model.history)
    assert len(model.history) == model.best_epoch + config.patience
    losses = [h["valid_loss"] for h in model.history]
    assert losses[model.best_epoch - 1] == min(losses)
    # the kept weights are the best epoch's: their validation log loss is the one recorded then
    restored = log_loss(model.predict_proba(X, w_va), y_va)
    assert restored == pytest.approx(min(losses), rel=1e-4)


def test_without_early_stopping_every_epoch_runs_and_the_last_weights_stay(sign_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, _)) = sign_task
    config = LSTMConfig(**{**FAST.__dict__, "max_epochs": 5, "patience": 1})
    calls: list[int] = []
    model = LSTMRegressor(
        config
    ).fit(
        X,
        w_tr,
        y_tr.astype(float),
        w_va[:0],  # no validation windows: nothing to stop on, nothing to report
        y_va[:0],
        epoch_callback=lambda epoch, _: calls.append(epoch),
        early_stopping=False,
    )
    assert calls == [1, 2, 3, 4, 5]
    assert model.best_epoch == len(model.history) == 5
    assert np.isnan(model.history[-1]["valid_loss"])
    assert np.isfinite(model.predict(X, w_te)).all()


def test_inverse_frequency_weights() -> None:
    weights = inverse_frequency_weights(np.array([0, 0, 0, 1]), n_classes=3)
    np.testing.assert_allclose(weights, [0.5, 1.5, 0.0])  # 4/3 and 4, mean 1 over present classes


def test_class_weights_favour_the_minority_class_in_the_logits_only() -> None:
    X, ends, windows, owner = toy_panel(seed=4)
    rare = (np.random.default_rng(5).random(len(ends)) < 0.1).astype(np.int64)  # 10 %, noise
    (w_tr, y_tr), (w_va, y_va), (w_te, _) = split(windows, rare, owner)
    config = LSTMConfig(**{**FAST.__dict__, "max_epochs": 4, "patience": 4})
    fits = {
        weighted: LSTMClassifier(config, n_classes=2).fit(
            X, w_tr, y_tr, w_va, y_va, class_weights=weighted
        )
        for weighted in (True, False)
    }
    counts = np.bincount(y_tr, minlength=2)
    expected = (len(y_tr) / counts) / (len(y_tr) / counts).mean()
    np.testing.assert_allclose(fits[True].class_weights, expected)
    assert fits[False].class_weights is None
    assert fits[False].calibration is None
    # nothing to learn: the weighted loss pulls the raw softmax towards even odds, and the
    # recalibration brings the served probability back to the base rate, as unweighted
    raw = softmax(fits[True].predict_logits(X, w_te))[:, 1].mean()
    rare_proba = {k: m.predict_proba(X, w_te)[:, 1].mean() for k, m in fits.items()}
    assert raw > 0.3
    assert rare_proba[False] < 0.2
    assert rare_proba[True] < 0.2


# --- calibration (classes of exact, imbalanced frequencies and nothing to learn) ----------------

FREQUENCIES = np.array([0.6, 0.3, 0.1])
# Every symbol's windows carry the classes in exactly these proportions, shuffled independently of
# the (noise) features, so train, validation and held-out windows share one class distribution
# and the best a model can do is predict it. Tolerance 0.03 on each class's mean probability:
# with no sampling gap between the splits all that is left is the optimization slack of a short
# fit (measured: at most 0.004 on CPU, so the margin covers other devices and torch builds),
# while a class-weighted model's raw softmax misses by about 0.25 (it is pulled to 1/3 each).
TOLERANCE = 0.03


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def imbalanced_task():
    X, ends, windows, owner = toy_panel(rows=600, seed=11)
    rng = np.random.default_rng(12)
    y = np.empty(len(ends), dtype=np.int64)
    for symbol in np.unique(owner):
        rows = np.flatnonzero(owner == symbol)
        counts = np.round(FREQUENCIES * len(rows)).astype(int)
        counts[0] += len(rows) - counts.sum()
        y[rows] = rng.permutation(np.repeat(np.arange(3), counts))
    return X, split(windows, y, owner)


CALIBRATION_FAST = LSTMConfig(**{**FAST.__dict__, "max_epochs": 8, "patience": 3})


def test_the_default_unweighted_classifier_predicts_the_class_frequencies(imbalanced_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, _)) = imbalanced_task
    model = LSTMClassifier(CALIBRATION_FAST, n_classes=3).fit(X, w_tr, y_tr, w_va, y_va)
    assert model.class_weights is None and model.calibration is None
    train_freq = np.bincount(y_tr, minlength=3) / len(y_tr)
    np.testing.assert_allclose(
        model.predict_proba(X, w_te).mean(axis=0), train_freq, atol=TOLERANCE
    )


def test_a_weighted_classifier_is_recalibrated_on_validation(imbalanced_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, y_te)) = imbalanced_task
    model = LSTMClassifier(CALIBRATION_FAST, n_classes=3).fit(
        X, w_tr, y_tr, w_va, y_va, class_weights=True
    )
    train_freq = np.bincount(y_tr, minlength=3) / len(y_tr)
    raw = softmax(model.predict_logits(X, w_te))
    calibrated = model.predict_proba(X, w_te)
    # uncalibrated, the weights show: the mean probabilities are far from the frequencies
    assert np.abs(raw.mean(axis=0) - train_freq).max() > 0.15
    # recalibrated, they are back on them, and the held-out log loss is lower
    assert model.calibration is not None and model.calibration.source == "validation"
    np.testing.assert_allclose(calibrated.mean(axis=0), train_freq, atol=TOLERANCE)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-9)
    assert log_loss(calibrated, y_te) < log_loss(raw, y_te) - 0.02
    # the calibration pickles with the model
    loaded = pickle.loads(cloudpickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X, w_te), calibrated)


def test_a_weighted_refit_without_validation_gets_the_prior_shift(imbalanced_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, _)) = imbalanced_task
    model = LSTMClassifier(CALIBRATION_FAST, n_classes=3).fit(
        X, w_tr, y_tr, w_va[:0], y_va[:0], class_weights=True, early_stopping=False
    )
    assert model.calibration is not None and model.calibration.source == "prior_shift"
    assert model.calibration.temperature == 1.0
    bias = np.asarray(model.calibration.bias)
    np.testing.assert_allclose(
        bias, -np.log(model.class_weights) + np.log(model.class_weights).mean()
    )
    train_freq = np.bincount(y_tr, minlength=3) / len(y_tr)
    np.testing.assert_allclose(
        model.predict_proba(X, w_te).mean(axis=0), train_freq, atol=TOLERANCE
    )


def test_logit_calibration_recovers_a_known_temperature_and_bias() -> None:
    rng = np.random.default_rng(13)
    logits = rng.normal(0, 2, (20000, 3))
    true_t, true_b = 2.0, np.array([0.5, 0.0, -0.5])
    p = softmax(logits / true_t + true_b)
    y = (rng.random(len(p))[:, None] > p.cumsum(axis=1)).sum(axis=1)
    fitted = LogitCalibration.fit(logits, y)
    assert fitted.temperature == pytest.approx(true_t, rel=0.05)
    np.testing.assert_allclose(fitted.bias, true_b - true_b.mean(), atol=0.05)
    np.testing.assert_allclose(fitted.apply(logits), p, atol=0.02)


def test_the_epoch_callback_runs_every_epoch_and_its_exception_propagates(sign_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), _) = sign_task
    config = LSTMConfig(**{**FAST.__dict__, "max_epochs": 3})
    calls: list[tuple[int, float]] = []

    def record(epoch: int, loss: float) -> None:
        calls.append((epoch, loss))

    model = LSTMClassifier(config, n_classes=2).fit(
        X, w_tr, y_tr, w_va, y_va, epoch_callback=record
    )
    assert calls == [(h["epoch"], h["valid_loss"]) for h in model.history]
    assert [epoch for epoch, _ in calls] == [1, 2, 3]

    class Pruned(Exception):
        pass

    def prune(epoch: int, loss: float) -> None:
        if epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        LSTMClassifier(config, n_classes=2).fit(X, w_tr, y_tr, w_va, y_va, epoch_callback=prune)


def test_bad_inputs_are_refused(sign_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), _) = sign_task
    with pytest.raises(ValueError, match="validation windows"):
        LSTMClassifier(FAST, n_classes=2).fit(X, w_tr, y_tr, w_va[:0], y_va[:0])
    with pytest.raises(ValueError, match="class codes"):
        LSTMClassifier(FAST, n_classes=2).fit(X, w_tr, y_tr + 1, w_va, y_va)
    with pytest.raises(RuntimeError, match="before fit"):
        LSTMRegressor(FAST).predict(X, w_va)


# --- pickling and devices -----------------------------------------------------------------------


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_pickling_keeps_the_predictions(sign_task, sign_model, dumps) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, _)) = sign_task
    loaded = pickle.loads(dumps(sign_model))
    np.testing.assert_array_equal(loaded.predict_proba(X, w_te), sign_model.predict_proba(X, w_te))
    assert loaded.config == sign_model.config
    assert loaded.history == sign_model.history
    assert loaded.best_epoch == sign_model.best_epoch
    assert next(loaded.net.parameters()).device.type == "cpu"

    config = LSTMConfig(**{**FAST.__dict__, "max_epochs": 2})
    regressor = LSTMRegressor(config).fit(X, w_tr, y_tr.astype(float), w_va, y_va.astype(float))
    reloaded = pickle.loads(dumps(regressor))
    np.testing.assert_array_equal(reloaded.predict(X, w_te), regressor.predict(X, w_te))
    assert pickle.loads(dumps(LSTMRegressor(config))).net is None  # unfitted models pickle too


def test_resolve_device(monkeypatch) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_fit_pickles_to_cpu(sign_task) -> None:
    X, ((w_tr, y_tr), (w_va, y_va), (w_te, _)) = sign_task
    config = LSTMConfig(**{**FAST.__dict__, "max_epochs": 3, "device": "cuda"})
    model = LSTMClassifier(config, n_classes=2).fit(X, w_tr, y_tr, w_va, y_va)
    assert model.device_used.startswith("cuda")
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(
        loaded.predict_proba(X, w_te), model.predict_proba(X, w_te), atol=1e-5
    )
    np.testing.assert_allclose(
        loaded.to("cuda").predict_proba(X, w_te), model.predict_proba(X, w_te), atol=1e-6
    )


# --- the volatility LSTM's mean correction ------------------------------------------------------

NOISE = 0.5  # sd of the unpredictable part of log vol: a lognormal median/mean gap of e^0.125


@pytest.fixture(scope="module")
def volatility_fit():
    """A panel whose log forward vol is a window mean of f0 plus N(0, NOISE²) noise: symbols 0-1
    train, 2 validates, 3 is held out; fitted with the production training function."""
    X, ends, windows, _ = toy_panel(rows=500, seed=21)
    log_vol = np.full(len(X), np.nan)
    noise = np.random.default_rng(22).normal(0.0, NOISE, len(ends))
    log_vol[ends] = -1.6 + 0.3 * X[windows, 0].mean(axis=1) + noise
    symbols = np.repeat(np.arange(4), 500)
    day = np.tile(np.arange(500), 4)
    frame = pl.DataFrame(
        {
            "symbol": [f"S{s}" for s in symbols],
            "date": [date(2020, 1, 1) + timedelta(days=int(d)) for d in day],
            "f0": X[:, 0].astype(np.float64),
            "f1": X[:, 1].astype(np.float64),
            "fwd_vol_20": np.exp(log_vol),
            "split": np.array([TRAIN, TRAIN, VALIDATION, TEST])[symbols],
        }
    ).filter(pl.col("fwd_vol_20").is_not_nan())
    training = TrainingSet(frame, feature_columns=("f0", "f1"))
    model, record = train_volatility_lstm(training, FAST)
    return training, model, record


def test_the_volatility_forecast_is_the_median_times_the_smearing_factor(volatility_fit) -> None:
    training, model, record = volatility_fit
    frame = training.frame
    median = np.exp(model.predict_log_vol(frame)["log_vol"].to_numpy())
    mean = model.predict_frame(frame)["vol_forecast"].to_numpy()
    known = np.isfinite(median)
    assert known.sum() > 1000
    # the documented factor: mean(exp(residual of log vol)) over the windows ending in train
    train = known & (frame["split"] == TRAIN).to_numpy()
    residual = np.log(frame["fwd_vol_20"].to_numpy()[train]) - np.log(median[train])
    factor = float(np.mean(np.exp(residual)))
    assert model.smearing == pytest.approx(factor, rel=1e-6)
    assert record.details["smearing_factor"] == model.smearing
    np.testing.assert_allclose(mean[known] / median[known], model.smearing, rtol=1e-9)
    assert (mean[known] > median[known]).all()
    # at least about the lognormal gap exp(NOISE² / 2) ≈ 1.13 the noise alone implies (measured
    # 1.19: the short fit also leaves its level a little low, which the smearing mean absorbs)
    assert 1.08 < model.smearing < 1.3
    # held out, the corrected forecast is unbiased for the mean vol; the median is biased low
    test = known & (frame["split"] == TEST).to_numpy()
    realized = frame["fwd_vol_20"].to_numpy()[test].mean()
    assert abs(mean[test].mean() / realized - 1) < 0.05
    assert median[test].mean() / realized < 0.93


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_the_corrected_volatility_model_pickles(volatility_fit, dumps) -> None:
    training, model, _ = volatility_fit
    loaded = pickle.loads(dumps(model))
    assert loaded.smearing == model.smearing
    assert loaded.predict_frame(training.frame).equals(model.predict_frame(training.frame))
    # a model pickled before the correction existed has no smearing attribute: it reads 1.0
    old = VolatilityLSTMModel.__new__(VolatilityLSTMModel)
    old.__dict__.update({k: v for k, v in loaded.__dict__.items() if k != "smearing"})
    assert old.smearing == 1.0
