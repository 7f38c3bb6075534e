"""Out-of-sample evaluation of each model family against the baselines a sceptic would use.

Every score is computed on the test split only, beside its baselines, with a paired block
bootstrap over dates (confidence intervals and a test of the difference) and, for volatility,
a Diebold–Mariano test:

- direction: majority class (probabilities = training class frequencies) and previous-day sign
  (hard prediction = today's class; probabilities = the training transition matrix from today's
  class to tomorrow's);
- volatility: the trailing 20-day realized volatility (naive) and HAR-RV fitted on training;
- regime: persistence (the regime of the last 20 sessions by the same thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from quant.evaluation import (
    Comparison,
    classification_metrics,
    compare_to_baseline,
    daily_rank_ic,
    diebold_mariano,
    information_coefficient,
    plots,
    qlike_loss,
    volatility_metrics,
)
from quant.labels import DIRECTION_NAMES, REGIME_NAMES

EPS = 1e-7


@dataclass
class Evaluation:
    """One model's test-split scores, its baselines' scores, the comparisons and the plots."""

    model: str
    family: str
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    comparisons: list[Comparison] = field(default_factory=list)
    tests: dict[str, dict[str, float]] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    rows: int = 0

    def table(self) -> pl.DataFrame:
        """metric | model | <baseline>... as one frame (for the report and the asset page)."""
        names = list(self.metrics)
        data: dict[str, list] = {
            "metric": names,
            self.model: [self.metrics[n] for n in names],
        }
        for baseline, scores in self.baselines.items():
            data[baseline] = [scores.get(n, float("nan")) for n in names]
        return pl.DataFrame(data)


def _log_loss_rows(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    clipped = np.clip(proba, EPS, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return -np.log(clipped[np.arange(y.size), y])


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    counts = np.bincount(y, minlength=n_classes)
    hits = np.bincount(y[pred == y], minlength=n_classes)
    present = counts > 0
    return float(np.mean(hits[present] / counts[present])) if present.any() else float("nan")


def class_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies (Laplace-smoothed so no class gets probability 0)."""
    counts = np.bincount(labels, minlength=n_classes) + 1.0
    return counts / counts.sum()


def transition_matrix(today: np.ndarray, tomorrow: np.ndarray, n_classes: int) -> np.ndarray:
    """P(tomorrow's class | today's class), Laplace-smoothed, from training rows."""
    counts = np.ones((n_classes, n_classes))
    np.add.at(counts, (today, tomorrow), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


def _classification_comparisons(
    y: np.ndarray,
    model: tuple[np.ndarray, np.ndarray],
    baseline: tuple[np.ndarray, np.ndarray],
    baseline_name: str,
    dates: np.ndarray,
    n_classes: int,
    n_boot: int,
    seed: int,
    metrics: tuple[str, ...],
) -> list[Comparison]:
    """Paired bootstrap comparisons on accuracy, balanced accuracy and (optionally) log loss.

    ``model`` and ``baseline`` are (hard predictions, probabilities)."""
    m_pred, m_proba = model
    b_pred, b_proba = baseline
    m_loss, b_loss = _log_loss_rows(y, m_proba), _log_loss_rows(y, b_proba)
    scorers = {
        "accuracy": (
            lambda i: float(np.mean(m_pred[i] == y[i])),
            lambda i: float(np.mean(b_pred[i] == y[i])),
            True,
        ),
        "balanced_accuracy": (
            lambda i: _balanced_accuracy(y[i], m_pred[i], n_classes),
            lambda i: _balanced_accuracy(y[i], b_pred[i], n_classes),
            True,
        ),
        "log_loss": (
            lambda i: float(np.mean(m_loss[i])),
            lambda i: float(np.mean(b_loss[i])),
            False,
        ),
    }
    out = []
    for metric in metrics:
        fn, baseline_fn, higher = scorers[metric]
        comparison = compare_to_baseline(
            f"{metric} vs {baseline_name}",
            fn,
            baseline_fn,
            dates,
            higher_is_better=higher,
            n_boot=n_boot,
            seed=seed,
        )
        out.append(comparison)
    return out


def evaluate_direction(
    model: str,
    test: pl.DataFrame,
    proba: np.ndarray,
    train_labels: np.ndarray,
    train_prev: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
) -> Evaluation:
    """Direction scores on ``test`` (rows of the test split, aligned with ``proba``)."""
    k = len(DIRECTION_NAMES)
    y = test["direction"].to_numpy().astype(int)
    prev = test["prev_direction"].to_numpy().astype(int)
    fwd = test["fwd_return_1"].to_numpy()
    dates = test["date"].to_numpy()
    prior = np.tile(class_prior(train_labels, k), (y.size, 1))
    persistence = transition_matrix(train_prev, train_labels, k)[prev]
    candidates = {
        model: (proba.argmax(axis=1), proba),
        "majority_class": (prior.argmax(axis=1), prior),
        "previous_day_sign": (prev, persistence),
    }
    scores = {}
    for name, (pred, p) in candidates.items():
        one_hot_free = classification_metrics(y, p)
        one_hot_free["accuracy"] = float(np.mean(pred == y))
        one_hot_free["balanced_accuracy"] = _balanced_accuracy(y, pred, k)
        score = p[:, 2] - p[:, 0]
        one_hot_free.update(information_coefficient(score, fwd))
        one_hot_free["daily_rank_ic"] = daily_rank_ic(dates, score, fwd)["mean"]
        scores[name] = one_hot_free
    comparisons = [
        *_classification_comparisons(
            y,
            candidates[model],
            candidates["majority_class"],
            "majority_class",
            dates,
            k,
            n_boot,
            seed,
            ("accuracy", "balanced_accuracy", "log_loss"),
        ),
        *_classification_comparisons(
            y,
            candidates[model],
            candidates["previous_day_sign"],
            "previous_day_sign",
            dates,
            k,
            n_boot,
            seed,
            ("accuracy", "balanced_accuracy", "log_loss"),
        ),
    ]
    figures = {
        "confusion_matrix": plots.confusion_matrix_png(
            y, proba.argmax(axis=1), DIRECTION_NAMES, f"{model}: test confusion matrix"
        ),
        "calibration_up": plots.calibration_png(
            (y == 2).astype(int), proba[:, 2], f"{model}: calibration of P(Up)"
        ),
    }
    return Evaluation(
        model=model,
        family="direction",
        metrics=scores[model],
        baselines={n: s for n, s in scores.items() if n != model},
        comparisons=comparisons,
        plots=figures,
        rows=int(y.size),
    )


def evaluate_volatility(
    model: str,
    test: pl.DataFrame,
    forecast: np.ndarray,
    har: np.ndarray,
    horizon: int,
    n_boot: int = 200,
    seed: int = 0,
    plot_symbol: str | None = None,
) -> Evaluation:
    """Volatility scores on ``test`` rows where the model, HAR and the naive baseline all have a
    forecast (so every number is on the same rows)."""
    realized = test["fwd_vol_20"].to_numpy()
    naive = test["trail_vol_20"].to_numpy()
    ok = np.isfinite(realized) & np.isfinite(forecast) & np.isfinite(naive) & np.isfinite(har)
    ok &= (forecast > 0) & (naive > 0) & (har > 0)
    rows = test.filter(pl.Series(ok))
    realized, forecast, naive, har = realized[ok], forecast[ok], naive[ok], har[ok]
    dates = rows["date"].to_numpy()
    candidates = {model: forecast, "naive_trailing_20d": naive, "har_rv": har}
    scores = {name: volatility_metrics(realized, f) for name, f in candidates.items()}
    losses = {name: qlike_loss(realized, f) for name, f in candidates.items()}
    comparisons, tests = [], {}
    for baseline in ("naive_trailing_20d", "har_rv"):
        model_loss, base_loss = losses[model], losses[baseline]
        comparisons.append(
            compare_to_baseline(
                f"qlike vs {baseline}",
                lambda i, m=model_loss: float(np.mean(m[i])),
                lambda i, b=base_loss: float(np.mean(b[i])),
                dates,
                higher_is_better=False,
                n_boot=n_boot,
                seed=seed,
            )
        )
        tests[f"diebold_mariano_qlike_vs_{baseline}"] = diebold_mariano(
            model_loss, base_loss, dates, horizon
        )
        tests[f"diebold_mariano_mse_vs_{baseline}"] = diebold_mariano(
            (forecast - realized) ** 2, (candidates[baseline] - realized) ** 2, dates, horizon
        )
    figures = {}
    symbol = plot_symbol if plot_symbol in set(rows["symbol"]) else rows["symbol"][0]
    one = rows["symbol"].to_numpy() == symbol
    figures["forecast_vs_realized"] = plots.forecast_vs_realized_png(
        dates[one],
        realized[one],
        {model: forecast[one], "naive": naive[one], "HAR": har[one]},
        f"{model}: {symbol} 20-session volatility, test split",
    )
    return Evaluation(
        model=model,
        family="volatility",
        metrics=scores[model],
        baselines={n: s for n, s in scores.items() if n != model},
        comparisons=comparisons,
        tests=tests,
        plots=figures,
        rows=int(ok.sum()),
    )


def evaluate_regime(
    model: str, test: pl.DataFrame, proba: np.ndarray, n_boot: int = 200, seed: int = 0
) -> Evaluation:
    """Regime scores on ``test`` beside the persistence baseline."""
    k = len(REGIME_NAMES)
    y = test["regime"].to_numpy().astype(int)
    now = test["regime_now"].to_numpy()
    ok = np.isfinite(now.astype(float))
    y, now, proba = y[ok], now[ok].astype(int), proba[ok]
    dates = test["date"].to_numpy()[ok]
    pred = proba.argmax(axis=1)
    # the persistence baseline is a hard rule: its "probabilities" (for the paired comparison's
    # interface only) put all mass on today's regime; log loss is not compared
    persistence = np.eye(k)[now]
    scores = {}
    for name, hard in {model: pred, "persistence": now}.items():
        scores[name] = {
            "accuracy": float(np.mean(hard == y)),
            "balanced_accuracy": _balanced_accuracy(y, hard, k),
            "macro_f1": classification_metrics(y, np.eye(k)[hard])["macro_f1"],
        }
    scores[model]["log_loss"] = float(np.mean(_log_loss_rows(y, proba)))
    comparisons = _classification_comparisons(
        y,
        (pred, proba),
        (now, persistence),
        "persistence",
        dates,
        k,
        n_boot,
        seed,
        ("accuracy", "balanced_accuracy"),
    )
    figures = {
        "confusion_matrix": plots.confusion_matrix_png(
            y, pred, REGIME_NAMES, f"{model}: test confusion matrix"
        ),
        "persistence_confusion_matrix": plots.confusion_matrix_png(
            y, now, REGIME_NAMES, "persistence baseline: test confusion matrix"
        ),
    }
    return Evaluation(
        model=model,
        family="regime",
        metrics=scores[model],
        baselines={"persistence": scores["persistence"]},
        comparisons=comparisons,
        plots=figures,
        rows=int(y.size),
    )


def confusion_counts(y: np.ndarray, pred: np.ndarray, names: list[str]) -> pl.DataFrame:
    """Counts with true classes as rows and predicted classes as columns."""
    k = len(names)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y, pred), 1)
    return pl.DataFrame({"true": names, **{f"pred_{n}": counts[:, j] for j, n in enumerate(names)}})
