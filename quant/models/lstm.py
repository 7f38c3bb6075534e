"""LSTM classifier and regressor over history windows (torch; CUDA when present).

Inputs are a standardized, NaN-free feature matrix of the whole panel and windows of row indices
into it (``quant.models.sequences``): the matrix goes to the device once and batches are gathered
with one indexing operation, no per-sample Python. Training is seeded, uses early stopping on the
validation loss and keeps the best epoch's weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else is taken as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class LSTMConfig:
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
    """LSTM over the window; the last hidden state → dropout → linear head."""

    def __init__(self, n_features: int, n_outputs: int, config: LSTMConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.dropout(out[:, -1, :]))


class _SequenceModel:
    """The shared training loop; subclasses set the loss, targets and output transform."""

    n_outputs: int

    def __init__(self, config: LSTMConfig) -> None:
        self.config = config
        self.net: SequenceNet | None = None
        self.n_features = 0
        self.history: list[dict[str, float]] = []
        self.best_epoch = -1
        self.device_used = "cpu"
        self.fit_seconds = 0.0
        self._device = torch.device("cpu")

    def _loss(self, weights: torch.Tensor | None) -> nn.Module:
        raise NotImplementedError

    def _target(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def _fit(
        self,
        x: np.ndarray,
        train_windows: np.ndarray,
        y_train: np.ndarray,
        valid_windows: np.ndarray,
        y_valid: np.ndarray,
        weights: np.ndarray | None,
        epoch_callback: Callable[[int, float], None] | None,
    ) -> None:
        cfg = self.config
        started = time.perf_counter()
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        device = resolve_device(cfg.device)
        self._device, self.device_used = device, device.type
        self.n_features = x.shape[1]
        self.net = SequenceNet(self.n_features, self.n_outputs, cfg).to(device)
        matrix = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
        train_idx = torch.as_tensor(train_windows, device=device)
        valid_idx = torch.as_tensor(valid_windows, device=device)
        target_train, target_valid = self._target(y_train, device), self._target(y_valid, device)
        w = (
            None
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float32, device=device)
        )
        train_loss_fn, valid_loss_fn = self._loss(w), self._loss(None)
        optimizer = torch.optim.Adam(
            self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        best_loss, best_state, waited = float("inf"), None, 0
        self.history = []
        for epoch in range(cfg.max_epochs):
            self.net.train()
            order = torch.as_tensor(rng.permutation(len(train_windows)), device=device)
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                optimizer.zero_grad()
                loss = train_loss_fn(self.net(matrix[train_idx[batch]]), target_train[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            valid_loss = self._evaluate(matrix, valid_idx, target_valid, valid_loss_fn)
            self.history.append(
                {"epoch": epoch, "train_loss": total / len(order), "valid_loss": valid_loss}
            )
            if epoch_callback is not None:
                epoch_callback(epoch, valid_loss)
            if valid_loss < best_loss:
                best_loss, waited, self.best_epoch = valid_loss, 0, epoch
                best_state = copy.deepcopy(self.net.state_dict())
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        self.fit_seconds = time.perf_counter() - started

    @torch.no_grad()
    def _evaluate(self, matrix, windows, target, loss_fn) -> float:
        self.net.eval()
        total = 0.0
        for start in range(0, len(windows), self.config.batch_size * 4):
            batch = windows[start : start + self.config.batch_size * 4]
            out = self.net(matrix[batch])
            total += float(loss_fn(out, target[start : start + len(batch)])) * len(batch)
        return total / max(len(windows), 1)

    @torch.no_grad()
    def _outputs(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__} used before fit")
        self.net.eval()
        if len(windows) == 0:
            return np.zeros((0, self.n_outputs))
        matrix = torch.as_tensor(np.asarray(x, dtype=np.float32), device=self._device)
        idx = torch.as_tensor(np.asarray(windows), device=self._device)
        chunks = [
            self._transform(self.net(matrix[idx[s : s + 4096]])).cpu().numpy()
            for s in range(0, len(idx), 4096)
        ]
        return np.concatenate(chunks).astype(np.float64)

    def _transform(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def to(self, device: str) -> _SequenceModel:
        """Move the network to ``device`` (e.g. ``cuda``) for inference."""
        self._device = resolve_device(device)
        if self.net is not None:
            self.net.to(self._device)
        return self

    def __getstate__(self) -> dict[str, object]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("net", "_device")}
        state["config"] = asdict(self.config)
        state["state_dict"] = (
            None if self.net is None else {k: v.cpu() for k, v in self.net.state_dict().items()}
        )
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        weights = state.pop("state_dict")
        state["config"] = LSTMConfig(**state["config"])
        self.__dict__.update(state)
        self._device = torch.device("cpu")
        self.net = None
        if weights is not None:
            self.net = SequenceNet(self.n_features, self.n_outputs, self.config)
            self.net.load_state_dict(weights)
            self.net.eval()


class LSTMClassifier(_SequenceModel):
    """Class probabilities for each window (cross entropy, optional inverse-frequency weights)."""

    def __init__(self, config: LSTMConfig, n_classes: int) -> None:
        super().__init__(config)
        self.n_outputs = n_classes

    def _loss(self, weights: torch.Tensor | None) -> nn.Module:
        return nn.CrossEntropyLoss(weight=weights)

    def _target(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)

    def _transform(self, out: torch.Tensor) -> torch.Tensor:
        return torch.softmax(out, dim=1)

    def fit(
        self,
        x: np.ndarray,
        train_windows: np.ndarray,
        y_train: np.ndarray,
        valid_windows: np.ndarray,
        y_valid: np.ndarray,
        class_weights: bool = True,
        epoch_callback: Callable[[int, float], None] | None = None,
    ) -> LSTMClassifier:
        """Fit on the training windows; the validation loss (unweighted cross entropy, i.e. log
        loss) drives early stopping and ``epoch_callback`` (which may raise to prune)."""
        weights = inverse_frequency_weights(y_train, self.n_outputs) if class_weights else None
        self._fit(x, train_windows, y_train, valid_windows, y_valid, weights, epoch_callback)
        return self

    def predict_proba(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        return self._outputs(x, windows)


class LSTMRegressor(_SequenceModel):
    """One number per window (mean squared error)."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.n_outputs = 1

    def _loss(self, weights: torch.Tensor | None) -> nn.Module:
        return nn.MSELoss()

    def _target(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y, dtype=np.float32), device=device).reshape(-1, 1)

    def fit(
        self,
        x: np.ndarray,
        train_windows: np.ndarray,
        y_train: np.ndarray,
        valid_windows: np.ndarray,
        y_valid: np.ndarray,
        epoch_callback: Callable[[int, float], None] | None = None,
    ) -> LSTMRegressor:
        self._fit(x, train_windows, y_train, valid_windows, y_valid, None, epoch_callback)
        return self

    def predict(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        return self._outputs(x, windows)[:, 0]


def inverse_frequency_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights ∝ 1 / class frequency, normalized to mean 1 over the classes present."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1.0), 0.0)
    present = counts > 0
    return weights / weights[present].mean()
