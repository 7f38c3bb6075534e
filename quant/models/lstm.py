"""LSTM classifier and regressor over history windows (torch; CUDA when present).

Inputs are a standardized, NaN-free feature matrix of the whole panel and windows of row indices
into it (``quant.models.sequences``): the matrix goes to the device once and batches are gathered
with one indexing operation, no per-sample Python. Training is seeded, stops early on the
validation loss and keeps the best epoch's weights. The classifier trains on plain cross entropy
by default; when it is class-weighted its probabilities are recalibrated afterwards
(``LogitCalibration``), since a weighted loss biases them towards the rare classes on purpose.
Fitted models pickle with a CPU state dict (MLflow stores them inside pyfunc models) and predict
on CPU after loading unless moved with ``to(device)``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn

EpochCallback = Callable[[int, float], None]
PREDICT_BATCH = 4096


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device to train on: ``auto`` → CUDA when available, else CPU; any other value
    (``cpu``, ``cuda``, ``cuda:1``) is taken as given, so a config can force one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class LSTMConfig:
    """Network size and training schedule of the sequence models (tuned by Optuna).

    ``sequence_length`` is the number of sessions in each window; ``patience`` the number of
    epochs without a lower validation loss before training stops; ``device`` goes through
    ``resolve_device``.
    """

    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.1
    sequence_length: int = 20
    batch_size: int = 512
    max_epochs: int = 30
    patience: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 7
    device: str = "auto"


class SequenceNet(nn.Module):
    """LSTM over the window; its last hidden state → dropout → linear head (one output per class,
    or one for a regression). Small on purpose: daily features carry little signal."""

    def __init__(self, n_features: int, n_outputs: int, config: LSTMConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            # torch only applies (and warns about) dropout between stacked layers
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, length, features) → raw outputs (batch, n_outputs)."""
        out, _ = self.lstm(x)
        return self.head(self.dropout(out[:, -1, :]))


def inverse_frequency_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class weights ∝ 1 / class frequency in ``y``, normalized to mean 1 over the classes present
    (an absent class gets 0), so rare classes weigh as much in the loss as common ones."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / counts[present]
    return weights / weights[present].mean()


@dataclass(frozen=True)
class LogitCalibration:
    """Multinomial temperature-and-bias recalibration (a Platt / temperature scaling hybrid):
    ``p = softmax(logits / temperature + bias)``.

    Training on a class-weighted loss moves the optimum from p(c | x) to ∝ w_c p(c | x): the
    logits are shifted by log w_c and the probabilities over-predict the rare classes, which a
    log loss, a soft vote and the signals all read at face value. ``fit`` undoes that by
    minimizing the unweighted log loss of held-out logits over one temperature and one bias per
    class (the bias removes the log-weight shift, the temperature any over- or under-confidence
    the weighting left); ``prior_shift`` is the closed-form correction (bias = −log w_c,
    temperature 1) for when no held-out rows may be read. Plain floats: it pickles anywhere.
    """

    temperature: float
    bias: tuple[float, ...]
    source: str  # "validation" (fitted on held-out logits) or "prior_shift" (from the weights)

    @classmethod
    def fit(cls, logits: np.ndarray, y: np.ndarray) -> LogitCalibration:
        """Minimize the mean log loss of ``softmax(logits / T + b)`` against ``y`` (int codes)
        with L-BFGS-B over log(1/T) ∈ [−5, 5] and b ∈ [−30, 30] (bounded: a class absent from
        ``y`` would otherwise push its bias to −∞); b is centred (softmax ignores a common
        shift)."""
        z = np.asarray(logits, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        n, k = z.shape
        if n == 0:
            raise ValueError("calibration needs at least one row")
        onehot = np.eye(k)[y]

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            inverse_t, bias = math.exp(theta[0]), theta[1:]
            log_p = _log_softmax(inverse_t * z + bias)
            loss = -float(np.mean(log_p[np.arange(n), y]))
            residual = (np.exp(log_p) - onehot) / n
            grad = np.concatenate([[float((residual * z).sum()) * inverse_t], residual.sum(0)])
            return loss, grad

        bounds = [(-5.0, 5.0)] + [(-30.0, 30.0)] * k
        result = minimize(objective, np.zeros(k + 1), jac=True, method="L-BFGS-B", bounds=bounds)
        bias = result.x[1:] - result.x[1:].mean()
        return cls(float(math.exp(-result.x[0])), tuple(float(b) for b in bias), "validation")

    @classmethod
    def prior_shift(cls, class_weights: np.ndarray) -> LogitCalibration:
        """Undo the log-weight shift of a loss weighted by ``class_weights`` (a class with weight
        0 was absent from training: its bias stays 0, the net already scores it low)."""
        w = np.asarray(class_weights, dtype=np.float64)
        bias = np.where(w > 0, -np.log(np.where(w > 0, w, 1.0)), 0.0)
        return cls(1.0, tuple(float(b) for b in bias - bias.mean()), "prior_shift")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n, n_classes) from raw logits."""
        z = np.asarray(logits, dtype=np.float64) / self.temperature + np.asarray(self.bias)
        return np.exp(_log_softmax(z))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class _SequenceModel(ABC):
    """The shared training loop, inference and pickling; subclasses set the loss, the target
    tensor and the output transform."""

    def __init__(self, config: LSTMConfig, n_outputs: int) -> None:
        self.config = config
        self.n_outputs = n_outputs
        self.n_features = 0
        self.net: SequenceNet | None = None
        self.history: list[dict[str, float]] = []
        self.best_epoch = 0
        self.device_used = "cpu"
        self.fit_seconds = 0.0
        self._device = torch.device("cpu")

    @abstractmethod
    def _loss(self, weights: torch.Tensor | None) -> nn.Module:
        """The training loss (class weights only for the classifier)."""

    @abstractmethod
    def _target(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        """Targets as a tensor of the shape the loss expects."""

    def _transform(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def _fit(
        self,
        X: np.ndarray,
        train_windows: np.ndarray,
        y_train: np.ndarray,
        valid_windows: np.ndarray,
        y_valid: np.ndarray,
        weights: np.ndarray | None,
        epoch_callback: EpochCallback | None,
        early_stopping: bool,
    ) -> None:
        cfg = self.config
        if len(train_windows) == 0:
            raise ValueError("no training windows")
        if early_stopping and len(valid_windows) == 0:
            raise ValueError("early stopping needs validation windows")
        if len(train_windows) != len(y_train) or len(valid_windows) != len(y_valid):
            raise ValueError("each window needs exactly one target")
        started = time.perf_counter()
        torch.manual_seed(cfg.seed)  # before building the net: initial weights and dropout
        rng = np.random.default_rng(cfg.seed)
        device = resolve_device(cfg.device)
        self._device, self.device_used = device, str(device)
        self.n_features = X.shape[1]
        self.net = SequenceNet(self.n_features, self.n_outputs, cfg).to(device)
        matrix = _tensor(X, device)
        train_idx = _indices(train_windows, device)
        valid_idx = _indices(valid_windows, device)
        target_train, target_valid = self._target(y_train, device), self._target(y_valid, device)
        w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32).to(device)
        train_loss_fn, valid_loss_fn = self._loss(w), self._loss(None)
        optimizer = torch.optim.Adam(
            self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        best_loss, best_state, waited = math.inf, None, 0
        self.history = []
        for epoch in range(1, cfg.max_epochs + 1):
            self.net.train()
            order = torch.as_tensor(rng.permutation(len(train_idx))).to(device)
            # summed on the device: one host sync per epoch rather than one per batch
            total = torch.zeros((), device=device)
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = train_loss_fn(self.net(matrix[train_idx[batch]]), target_train[batch])
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(batch)
            valid_loss = self._mean_loss(matrix, valid_idx, target_valid, valid_loss_fn)
            train_loss = float(total) / len(order)
            self.history.append(
                {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss}
            )
            if epoch_callback is not None:
                epoch_callback(epoch, valid_loss)
            if not early_stopping:
                continue
            if math.isfinite(valid_loss) and valid_loss < best_loss:
                best_loss, waited, self.best_epoch = valid_loss, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        if best_state is None:  # no early stopping, or never a finite validation loss
            self.best_epoch = len(self.history)
        else:
            self.net.load_state_dict(best_state)
        self.net.eval()
        self.fit_seconds = time.perf_counter() - started

    @torch.no_grad()
    def _mean_loss(
        self,
        matrix: torch.Tensor,
        windows: torch.Tensor,
        target: torch.Tensor,
        loss_fn: nn.Module,
    ) -> float:
        assert self.net is not None
        if len(windows) == 0:
            return math.nan
        self.net.eval()
        total = torch.zeros((), device=matrix.device)
        for start in range(0, len(windows), PREDICT_BATCH):
            batch = windows[start : start + PREDICT_BATCH]
            out = self.net(matrix[batch])
            total += loss_fn(out, target[start : start + len(batch)]) * len(batch)
        return float(total) / len(windows)

    @torch.no_grad()
    def _outputs(self, X: np.ndarray, windows: np.ndarray, raw: bool = False) -> np.ndarray:
        """Outputs for ``windows``: transformed (probabilities for the classifier) unless
        ``raw``."""
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__} used before fit")
        self.net.eval()
        if len(windows) == 0:
            return np.zeros((0, self.n_outputs))
        matrix = _tensor(X, self._device)
        idx = _indices(windows, self._device)
        transform = (lambda out: out) if raw else self._transform
        chunks = [
            transform(self.net(matrix[idx[s : s + PREDICT_BATCH]])).cpu().numpy()
            for s in range(0, len(idx), PREDICT_BATCH)
        ]
        return np.concatenate(chunks).astype(np.float64)

    def to(self, device: str) -> Self:
        """Move the network to ``device`` (``auto``, ``cpu``, ``cuda``) for inference; a model
        loaded from a pickle predicts on CPU until moved."""
        self._device = resolve_device(device)
        if self.net is not None:
            self.net.to(self._device)
        return self

    def __getstate__(self) -> dict[str, Any]:
        """Config as a dict, sizes, history and a CPU state dict: no device tensors, so a model
        trained on CUDA unpickles on a machine without one."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("net", "_device")}
        state["config"] = asdict(self.config)
        state["state_dict"] = (
            None
            if self.net is None
            else {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the network on CPU from the pickled state, in eval mode."""
        state = dict(state)
        weights = state.pop("state_dict")
        state["config"] = LSTMConfig(**state["config"])
        self.__dict__.update(state)
        self._device = torch.device("cpu")
        self.net = None
        if weights is not None:
            self.net = SequenceNet(self.n_features, self.n_outputs, self.config)
            self.net.load_state_dict(weights)
            self.net.eval()


def _tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)).to(device)


def _indices(windows: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(windows, dtype=np.int64)).to(device)


class LSTMClassifier(_SequenceModel):
    """Class probabilities for each history window.

    Plain cross entropy by default, so the probabilities estimate the class frequencies given the
    window (the log loss, the ensemble's soft vote and the signals read them as such). Optionally
    weighted by inverse class frequency (a rare class then weighs as much in the loss); a weighted
    model's logits are recalibrated after training (``calibration``, a ``LogitCalibration``) and
    ``predict_proba`` returns the calibrated probabilities.
    """

    def __init__(self, config: LSTMConfig, n_classes: int) -> None:
        super().__init__(config, n_classes)
        self.class_weights: np.ndarray | None = None
        self.calibration: LogitCalibration | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("calibration", None)  # pickled before recalibration existed

    def _loss(self, weights: torch.Tensor | None) -> nn.Module:
        return nn.CrossEntropyLoss(weight=weights)

    def _target(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device)

    def _transform(self, out: torch.Tensor) -> torch.Tensor:
        return torch.softmax(out, dim=1)

    def fit(
        self,
        X: np.ndarray,
        train_windows: np.ndarray,
        y_train: np.ndarray,
        valid_windows: np.ndarray,
        y_valid: np.ndarray,
        class_weights: bool = False,
        epoch_callback: EpochCallback | None = None,
        early_stopping: bool = True,
    ) -> LSTMClassifier:
        """Fit on ``X[train_windows]`` → ``y_train`` (int class codes of each window's end row).

        The training loss is cross entropy, weighted by ``inverse_frequency_weights(y_train)``
        when ``class_weights``; early stopping watches the unweighted validation cross entropy
        (the log loss) and restores the best epoch. A weighted fit is then recalibrated
        (``LogitCalibration``): with early stopping, fitted on the validation windows' logits
        (the rows that already chose the epoch); without it (a refit, or a scored fold that must
        pick nothing), by the closed-form prior-shift correction of the weights, which reads no
        row. Unweighted (the default), the probabilities are the softmax of the logits.
        ``epoch_callback(epoch, valid_loss)`` runs after every epoch (numbered from 1); an
        exception it raises (an Optuna prune) propagates.
        Without ``early_stopping`` every epoch runs and the last weights are kept (the validation
        windows, possibly none, are then only reported), so a scored fold picks nothing.
        """
        for codes in (np.asarray(y_train), np.asarray(y_valid)):
            if codes.size and (codes.min() < 0 or codes.max() >= self.n_outputs):
                # checked here: out-of-range targets only fail with an opaque device assert on CUDA
                raise ValueError(
                    f"class codes must lie in [0, {self.n_outputs}), "
                    f"got {codes.min()}..{codes.max()}"
                )
        self.class_weights = (
            inverse_frequency_weights(y_train, self.n_outputs) if class_weights else None
        )
        self._fit(
            X,
            train_windows,
            y_train,
            valid_windows,
            y_valid,
            self.class_weights,
            epoch_callback,
            early_stopping,
        )
        self.calibration = None
        if self.class_weights is not None:
            if early_stopping:
                logits = self._outputs(X, valid_windows, raw=True)
                self.calibration = LogitCalibration.fit(logits, np.asarray(y_valid))
            else:
                self.calibration = LogitCalibration.prior_shift(self.class_weights)
        return self

    def predict_logits(self, X: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Raw network outputs (len(windows), n_classes), before softmax and calibration."""
        return self._outputs(X, windows, raw=True)

    def predict_proba(self, X: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Class probabilities (len(windows), n_classes) for windows of rows of ``X``
        (calibrated when the fit was class-weighted)."""
        if self.calibration is None:
            return self._outputs(X, windows)
        return self.calibration.apply(self.predict_logits(X, windows))


class LSTMRegressor(_SequenceModel):
    """One number per history window, fitted with mean squared error (the caller picks the
    scale of the target, e.g. log volatility)."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config, 1)

    def _loss(self, weights: torch.Tensor | None) -> nn.Module:
        return nn.MSELoss()

    def _target(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1, 1)).to(device)

    def fit(
        self,
        X: np.ndarray,
        train_windows: np.ndarray,
        y_train: np.ndarray,
        valid_windows: np.ndarray,
        y_valid: np.ndarray,
        epoch_callback: EpochCallback | None = None,
        early_stopping: bool = True,
    ) -> LSTMRegressor:
        """Fit on ``X[train_windows]`` → ``y_train`` (float target of each window's end row);
        early stopping on the validation MSE restores the best epoch, and
        ``epoch_callback(epoch, valid_loss)`` runs after every epoch (its exceptions propagate).
        Without ``early_stopping`` every epoch runs and the last weights are kept.
        """
        self._fit(
            X,
            train_windows,
            y_train,
            valid_windows,
            y_valid,
            None,
            epoch_callback,
            early_stopping,
        )
        return self

    def predict(self, X: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """The prediction (len(windows),) for windows of rows of ``X``."""
        return self._outputs(X, windows)[:, 0]
