"""XGBoost multi-class classifier for the next-session direction (Down / Neutral / Up)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import xgboost as xgb

DEFAULT_PARAMS: dict[str, object] = {
    "max_depth": 3,
    "eta": 0.03,
    "subsample": 0.8,
    "colsample_bytree": 0.6,
    "min_child_weight": 50.0,
    "lambda": 5.0,
}


@dataclass
class XGBoostClassifier:
    """Histogram-based gradient boosting on the raw features (XGBoost handles missing values).

    Early stopping watches the validation log loss; the kept model is the best iteration's.
    """

    n_classes: int
    params: dict[str, object] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    num_boost_round: int = 600
    early_stopping_rounds: int | None = 40
    seed: int = 7
    nthread: int = 2
    booster: xgb.Booster | None = None
    best_iteration: int = -1
    feature_names: list[str] = field(default_factory=list)

    def _booster_params(self) -> dict[str, object]:
        return {
            **self.params,
            "objective": "multi:softprob",
            "num_class": self.n_classes,
            "eval_metric": "mlogloss",
            "tree_method": "hist",
            "seed": self.seed,
            "nthread": self.nthread,
        }

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray,
        y_valid: np.ndarray,
        feature_names: Sequence[str],
        callbacks: Sequence[Callable | xgb.callback.TrainingCallback] = (),
    ) -> XGBoostClassifier:
        """Fit on the training rows; ``callbacks`` (e.g. Optuna's pruning callback) see the
        validation log loss after every round."""
        self.feature_names = list(feature_names)
        train = xgb.DMatrix(x_train, label=y_train, feature_names=self.feature_names)
        evals = []
        if len(y_valid):  # a refit on train + validation has nothing left to watch
            valid = xgb.DMatrix(x_valid, label=y_valid, feature_names=self.feature_names)
            evals = [(valid, "validation")]
        self.booster = xgb.train(
            self._booster_params(),
            train,
            num_boost_round=self.num_boost_round,
            evals=evals,
            early_stopping_rounds=self.early_stopping_rounds,
            callbacks=list(callbacks),
            verbose_eval=False,
        )
        self.best_iteration = (
            int(self.booster.best_iteration)
            if self.early_stopping_rounds
            else self.booster.num_boosted_rounds() - 1
        )
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) from the best iteration."""
        if self.booster is None:
            raise RuntimeError("XGBoostClassifier.predict_proba before fit")
        matrix = xgb.DMatrix(x, feature_names=self.feature_names)
        return self.booster.predict(matrix, iteration_range=(0, self.best_iteration + 1))

    def importance(self) -> dict[str, float]:
        """Total gain per feature, normalized to sum 1 (features never split on are 0)."""
        if self.booster is None:
            return {}
        gain = self.booster.get_score(importance_type="total_gain")
        total = sum(gain.values()) or 1.0
        return {name: gain.get(name, 0.0) / total for name in self.feature_names}
