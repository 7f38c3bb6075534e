"""Evaluation metrics, significance tests and plots on inputs with known answers."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from quant.evaluation import (
    Comparison,
    block_bootstrap_indices,
    calibration_png,
    classification_metrics,
    compare_to_baseline,
    confusion_matrix_png,
    daily_rank_ic,
    diebold_mariano,
    feature_importance_png,
    forecast_vs_realized_png,
    information_coefficient,
    line_png,
    markdown_image,
    qlike_loss,
    volatility_metrics,
)

PNG = b"\x89PNG"


def panel_dates(n_dates: int, per_date: int) -> np.ndarray:
    start = np.datetime64("2021-01-04")
    return np.repeat(start + np.arange(n_dates), per_date)


# classification


def test_perfect_predictions_score_one_and_zero_log_loss():
    y = np.array([0, 1, 2, 2, 1, 0])
    m = classification_metrics(y, np.eye(3)[y])
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    assert m["log_loss"] == pytest.approx(0.0, abs=1e-5)


def test_uniform_forecaster_has_log_loss_log_k():
    y = np.array([0, 1, 2, 0, 0, 0, 1])
    m = classification_metrics(y, np.full((y.size, 3), 1 / 3))
    assert m["log_loss"] == pytest.approx(math.log(3))


def test_balanced_accuracy_matches_sklearn_on_imbalanced_classes():
    rng = np.random.default_rng(1)
    y = rng.choice(3, size=500, p=[0.7, 0.2, 0.1])
    proba = rng.dirichlet([1, 1, 1], size=500)
    proba[np.arange(500), y] += 0.3 * (rng.random(500) < 0.5)
    proba /= proba.sum(axis=1, keepdims=True)
    m = classification_metrics(y, proba)
    pred = proba.argmax(axis=1)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["balanced_accuracy"] != pytest.approx(m["accuracy"])


def test_a_zero_probability_on_the_true_class_costs_a_finite_log_loss():
    y = np.array([0, 1])
    proba = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])  # class 2 never occurs: labels=range(k)
    m = classification_metrics(y, proba)
    assert math.isfinite(m["log_loss"])
    assert m["log_loss"] == pytest.approx(-math.log(1e-7) / 2, rel=1e-3)


def test_class_codes_outside_the_probability_columns_are_rejected():
    with pytest.raises(ValueError, match="class codes"):
        classification_metrics(np.array([0, 3]), np.full((2, 3), 1 / 3))


def test_information_coefficient_of_a_monotone_transform():
    rng = np.random.default_rng(2)
    ret = rng.normal(size=200)
    ic = information_coefficient(np.exp(3 * ret), ret)
    assert ic["rank_ic"] == pytest.approx(1.0)
    assert 0 < ic["ic"] < 1


def test_information_coefficient_ignores_non_finite_pairs_and_is_nan_when_undefined():
    ic = information_coefficient(
        np.array([1.0, 2.0, np.nan, 3.0, 4.0]), np.array([1, 2, 9, 3, np.inf])
    )
    assert ic["ic"] == pytest.approx(1.0) and ic["rank_ic"] == pytest.approx(1.0)
    constant = information_coefficient(np.ones(10), np.arange(10.0))
    assert math.isnan(constant["ic"]) and math.isnan(constant["rank_ic"])
    short = information_coefficient(np.array([1.0, 2.0]), np.array([2.0, 1.0]))
    assert math.isnan(short["ic"]) and math.isnan(short["rank_ic"])


def test_daily_rank_ic_is_cross_sectional():
    # within each date the score ranks returns perfectly, but the level of the returns moves
    # against the score from date to date: pooled, the IC is negative; per date, it is 1
    n_dates, names = 30, 6
    dates = panel_dates(n_dates, names)
    day = np.repeat(np.arange(n_dates), names)
    name = np.tile(np.arange(names), n_dates)
    score = name + 100.0 * day
    ret = 0.01 * name - 1.0 * day
    result = daily_rank_ic(dates, score, ret)
    assert result["mean"] == pytest.approx(1.0)
    assert result["dates"] == n_dates
    assert information_coefficient(score, ret)["ic"] < 0


def test_daily_rank_ic_skips_small_dates_and_matches_a_per_date_loop():
    rng = np.random.default_rng(3)
    dates = np.concatenate([panel_dates(50, 8), np.repeat(np.datetime64("2030-01-01"), 4)])
    score, ret = rng.normal(size=dates.size), rng.normal(size=dates.size)
    result = daily_rank_ic(dates, score, ret)
    expected = [
        information_coefficient(score[dates == d], ret[dates == d])["rank_ic"]
        for d in np.unique(dates)
        if (dates == d).sum() >= 5
    ]
    assert result["dates"] == 50
    assert result["mean"] == pytest.approx(np.mean(expected))
    se = np.std(expected, ddof=1) / math.sqrt(50)
    assert result["t_stat"] == pytest.approx(np.mean(expected) / se)


# volatility


def test_qlike_is_zero_at_a_perfect_forecast_and_punishes_under_prediction_more():
    realized = np.array([0.2, 0.2, 0.2])
    loss = qlike_loss(realized, np.array([0.2, 0.1, 0.3]))
    assert loss[0] == pytest.approx(0.0)
    assert loss[1] > 0 and loss[2] > 0
    assert loss[1] > loss[2]  # forecast 0.1 below realized costs more than 0.1 above


def test_mincer_zarnowitz_of_a_perfect_forecast():
    realized = np.array([0.1, 0.2, 0.15, 0.3, 0.25])
    m = volatility_metrics(realized, realized)
    assert m["mz_alpha"] == pytest.approx(0.0, abs=1e-12)
    assert m["mz_beta"] == pytest.approx(1.0)
    assert m["mz_r2"] == pytest.approx(1.0)
    assert m["rmse"] == 0.0 and m["qlike"] == pytest.approx(0.0) and m["n"] == 5


def test_volatility_metrics_ignore_invalid_pairs_and_recover_a_biased_forecast():
    forecast = np.array([0.1, 0.2, 0.3, 0.4, np.nan, 0.0, -0.1, 0.2])
    realized = np.array([0.25, 0.45, 0.65, 0.85, 0.3, 0.2, 0.2, np.inf])
    m = volatility_metrics(realized, forecast)
    assert m["n"] == 4
    assert m["mz_alpha"] == pytest.approx(0.05)
    assert m["mz_beta"] == pytest.approx(2.0)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((realized[:4] - forecast[:4]) ** 2)))


# significance


def test_block_bootstrap_keeps_dates_whole_and_is_reproducible():
    rng = np.random.default_rng(4)
    per_date = rng.integers(1, 6, size=60)
    dates = np.repeat(np.datetime64("2022-01-03") + np.arange(60), per_date)
    rng.shuffle(dates)  # rows need not be sorted
    first = block_bootstrap_indices(dates, n_boot=20, block_sessions=7, seed=11)
    again = block_bootstrap_indices(dates, n_boot=20, block_sessions=7, seed=11)
    other = block_bootstrap_indices(dates, n_boot=20, block_sessions=7, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    unique, counts = np.unique(dates, return_counts=True)
    full = dict(zip(unique, counts, strict=True))
    for rows in first:
        drawn, drawn_rows = np.unique(dates[rows], return_counts=True)
        # every drawn date brings all its rows (a date drawn m times brings them m times)
        assert all(c % full[d] == 0 for d, c in zip(drawn, drawn_rows, strict=True))
        assert sum(c // full[d] for d, c in zip(drawn, drawn_rows, strict=True)) == 60


def test_block_bootstrap_draws_consecutive_dates():
    dates = np.arange(100)
    (rows,) = block_bootstrap_indices(dates, n_boot=1, block_sessions=10, seed=0)
    assert rows.size == 100
    blocks = dates[rows].reshape(10, 10)  # 10 blocks of 10 consecutive sessions
    assert (np.diff(blocks, axis=1) == 1).all()


def test_identical_model_and_baseline_give_no_difference():
    dates = panel_dates(100, 5)
    hits = np.random.default_rng(5).random(dates.size) < 0.6
    c = compare_to_baseline(
        "accuracy", lambda i: hits[i].mean(), lambda i: hits[i].mean(), dates, True, n_boot=50
    )
    assert isinstance(c, Comparison)
    assert c.difference == 0.0 and c.difference_ci == (0.0, 0.0) and c.p_value == 1.0
    assert c.model_ci == c.baseline_ci and c.model_ci[0] < c.model < c.model_ci[1]


def test_a_clearly_better_model_is_significant():
    rng = np.random.default_rng(6)
    dates = panel_dates(400, 5)
    y = rng.integers(0, 3, size=dates.size)
    good = np.where(rng.random(y.size) < 0.9, y, (y + 1) % 3)
    coin = np.where(rng.random(y.size) < 0.5, y, (y + 1) % 3)
    c = compare_to_baseline(
        "accuracy",
        lambda i: float(np.mean(good[i] == y[i])),
        lambda i: float(np.mean(coin[i] == y[i])),
        dates,
        higher_is_better=True,
    )
    assert c.difference == pytest.approx(c.model - c.baseline)
    assert 0.35 < c.difference < 0.45
    assert c.p_value <= 0.01
    assert c.difference_ci[0] > 0
    assert c.model_ci[0] < c.model < c.model_ci[1]
    assert c.n_boot == 200
    logged = c.as_dict()
    assert logged["difference_ci_low"] == c.difference_ci[0]
    assert logged["metric"] == "accuracy" and logged["higher_is_better"] is True


def test_nan_metrics_in_a_resample_are_dropped():
    dates = panel_dates(50, 4)
    values = np.random.default_rng(7).normal(size=dates.size)
    calls = iter(range(10_000))

    def sometimes_nan(rows: np.ndarray) -> float:
        return float("nan") if next(calls) % 4 == 1 else float(values[rows].mean())

    c = compare_to_baseline(
        "mean", sometimes_nan, lambda i: 0.0, dates, True, n_boot=40, block_sessions=5
    )
    assert 0 < c.n_boot < 40
    assert all(math.isfinite(v) for v in (*c.difference_ci, c.p_value))


def test_diebold_mariano_on_identical_losses():
    dates = panel_dates(60, 3)
    loss = np.random.default_rng(8).random(dates.size)
    result = diebold_mariano(loss, loss.copy(), dates, horizon=20)
    assert result == {"statistic": 0.0, "p_value": 1.0, "mean_difference": 0.0, "dates": 60}


def test_diebold_mariano_detects_a_lower_loss():
    rng = np.random.default_rng(9)
    dates = panel_dates(300, 4)
    baseline = rng.gamma(2.0, size=dates.size)
    model = baseline - 0.3 + 0.5 * rng.normal(size=dates.size)
    result = diebold_mariano(model, baseline, dates, horizon=5)
    assert result["statistic"] < 0
    assert result["p_value"] < 0.01
    assert result["mean_difference"] == pytest.approx(np.mean(model - baseline))
    assert result["dates"] == 300
    flipped = diebold_mariano(baseline, model, dates, horizon=5)
    assert flipped["statistic"] == pytest.approx(-result["statistic"])


def test_diebold_mariano_matches_a_hand_computation():
    d = np.array([0.5, -0.2, 0.1, 0.4, -0.1, 0.3, 0.0, 0.2])
    t, h = d.size, 3
    c = d - d.mean()
    gamma = [c[k:] @ c[: t - k] / t for k in range(h)]
    variance = gamma[0] + 2 * sum((1 - k / h) * gamma[k] for k in range(1, h))
    dm = d.mean() / math.sqrt(variance / t)
    hln = dm * math.sqrt((t + 1 - 2 * h + h * (h - 1) / t) / t)
    dates = panel_dates(t, 2)
    # two names per date whose mean is d_t
    model = np.repeat(d, 2) + np.tile([0.05, -0.05], t)
    result = diebold_mariano(model, np.zeros(2 * t), dates, horizon=h)
    assert result["statistic"] == pytest.approx(hln)
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(abs(hln), t - 1))


# plots


def test_plots_return_png_bytes_and_markdown():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, size=300)
    pred = rng.integers(0, 3, size=300)
    dates = panel_dates(100, 3)
    realized = rng.random(dates.size)
    pngs = [
        confusion_matrix_png(y, pred, ["Down", "Neutral", "Up"], "confusion"),
        calibration_png((y == 2).astype(int), rng.random(300), "calibration"),
        forecast_vs_realized_png(dates, realized, {"model": realized * 1.1}, "forecast"),
        feature_importance_png([f"f{i}" for i in range(30)], rng.random(30), "importance"),
        line_png(np.arange(50), {"equity": np.cumsum(rng.normal(size=50))}, "equity", "value"),
    ]
    for png in pngs:
        assert png.startswith(PNG)
        assert len(png) < 100_000
    markdown = markdown_image(pngs[0], "confusion")
    assert markdown.startswith("![confusion](data:image/png;base64,")
