"""History windows and the LSTM classifier/regressor on tiny synthetic panels (CPU, seconds).

Windows: exact indices, never across symbols, short symbols skipped. Networks: learn a toy
pattern, seeding, early stopping with the best weights restored, class weights, the epoch
callback, pickling and device choice.
"""

from __future__ import annotations

import pickle

import cloudpickle
import numpy as np
import pytest
import torch

from quant.models.lstm import (
    LSTMClassifier,
    LSTMConfig,
    LSTMRegressor,
    inverse_frequency_weights,
    resolve_device,
)
from quant.models.sequences import sequence_windows

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


def test_class_weights_favour_the_minority_class() -> None:
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
    # nothing to learn: unweighted, the rare class gets its base rate; weighted, about even odds
    rare_proba = {k: m.predict_proba(X, w_te)[:, 1].mean() for k, m in fits.items()}
    assert rare_proba[False] < 0.2
    assert rare_proba[True] > 0.3


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
