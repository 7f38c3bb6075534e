"""The models on a real slice of the sample: no test row ever shapes a model, a leaked feature
is caught by the evaluation, and the report puts every score beside its baselines."""

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant.dataset import TrainingSet
from quant.models.direction import (
    SoftVotingEnsemble,
    probabilities,
    train_direction_lstm,
    train_direction_xgboost,
)
from quant.models.lstm import LSTMConfig
from quant.models.regime import train_regime_forest
from quant.models.volatility import har_baseline, train_volatility_garch, train_volatility_lstm
from quant.report import evaluate_direction, evaluate_regime, evaluate_volatility
from quant.splits import TEST, TRAIN, VALIDATION, SplitConfig
from tests.support.training import small_training_set

# fixed research dates: these tests study one train / validation / test partition
SPLITS = SplitConfig.fixed(date(2023, 12, 31), date(2024, 6, 30))
TINY_LSTM = LSTMConfig(hidden_size=8, max_epochs=2, patience=1, batch_size=1024)


@pytest.fixture(scope="module")
def training(sample_panel) -> TrainingSet:
    return small_training_set(sample_panel, SPLITS)


def split_of(training: TrainingSet, rows: np.ndarray) -> set[str]:
    return set(training.frame["split"].to_numpy()[rows].tolist())


def test_training_set_has_three_purged_splits_and_no_warm_up(training):
    frame = training.frame
    assert set(frame["split"].unique()) == {TRAIN, VALIDATION, TEST, "purged"}
    assert training.dropped["warm_up"] > 0 and training.dropped["unlabeled"] > 0
    assert frame.filter(pl.col("split") == TRAIN)["label_end"].max() <= SPLITS.train_end
    assert frame.select(pl.col("sma_dist_200").null_count()).item() == 0
    assert len(training.features) >= 100


def test_no_test_row_is_used_for_fitting_scaling_or_early_stopping(training):
    fits = [
        train_direction_xgboost(training, num_boost_round=20)[1],
        train_direction_lstm(training, TINY_LSTM)[1],
        train_volatility_lstm(training, TINY_LSTM)[1],
        train_volatility_garch(training, SPLITS.train_end)[1],
        train_regime_forest(training, n_estimators=5)[1],
    ]
    for record in fits:
        assert record.fit_rows.size > 1000
        # GARCH reads returns up to train_end, including the purge zone's (returns, not labels)
        assert split_of(training, record.fit_rows) <= {TRAIN, "purged"}
        assert training.frame["date"].to_numpy()[record.fit_rows].max() <= np.datetime64(
            SPLITS.train_end
        )
        assert TEST not in split_of(training, record.scaling_rows)
        assert TEST not in split_of(training, record.early_stopping_rows)
        assert TEST not in split_of(training, record.fit_rows)


def test_the_lstm_scaler_is_fitted_on_training_rows_only(training):
    model, record = train_direction_lstm(training, TINY_LSTM)
    assert split_of(training, record.scaling_rows) == {TRAIN}
    train = training.matrix()[training.mask(TRAIN)]
    np.testing.assert_allclose(model.scaler.mean, np.nanmean(train, axis=0))


def _xgb_test_accuracy(training: TrainingSet) -> float:
    model, _ = train_direction_xgboost(training, num_boost_round=60)
    test = training.rows(TEST)
    proba = probabilities(model.predict_frame(test))
    return float(np.mean(proba.argmax(axis=1) == test["direction"].to_numpy()))


def test_a_leaked_feature_makes_test_accuracy_jump(training):
    honest = _xgb_test_accuracy(training)
    leaked_frame = training.frame.with_columns(pl.col("fwd_return_1").alias("leak_tomorrow"))
    leaked = TrainingSet(leaked_frame, feature_columns=(*training.features, "leak_tomorrow"))
    cheating = _xgb_test_accuracy(leaked)
    # daily direction is close to a coin toss; with tomorrow's return it is nearly certain
    assert honest < 0.58
    assert cheating > 0.9
    assert cheating - honest > 0.3


def test_direction_report_puts_each_score_beside_both_baselines(training):
    model, _ = train_direction_xgboost(training, num_boost_round=30)
    test = training.rows(TEST)
    train = training.rows(TRAIN)
    proba = probabilities(model.predict_frame(test))
    evaluation = evaluate_direction(
        "xgb",
        test,
        proba,
        train["direction"].to_numpy(),
        train["prev_direction"].to_numpy(),
        n_boot=20,
    )
    assert set(evaluation.baselines) == {"majority_class", "previous_day_sign"}
    for scores in (evaluation.metrics, *evaluation.baselines.values()):
        assert {"accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ic", "rank_ic"} <= set(
            scores
        )
    majority = evaluation.baselines["majority_class"]
    assert majority["balanced_accuracy"] == pytest.approx(1 / 3)
    assert len(evaluation.comparisons) == 6
    assert all(0 < c.p_value <= 1 for c in evaluation.comparisons)
    assert evaluation.plots["confusion_matrix"].startswith(b"\x89PNG")
    assert evaluation.table().columns == ["metric", "xgb", "majority_class", "previous_day_sign"]


def test_volatility_models_beat_nothing_by_construction_but_are_scored_honestly(training):
    garch, _ = train_volatility_garch(training, SPLITS.train_end)
    test = training.rows(TEST)
    forecast = test.join(garch.predict_frame(training.frame), on=["symbol", "date"], how="left")
    har = test.join(har_baseline(training), on=["symbol", "date"], how="left")["har_vol"]
    evaluation = evaluate_volatility(
        "garch", test, forecast["vol_forecast"].to_numpy(), har.to_numpy(), 20, n_boot=20
    )
    assert set(evaluation.baselines) == {"naive_trailing_20d", "har_rv"}
    assert 0 < evaluation.metrics["qlike"] < 1
    assert set(evaluation.tests) == {
        "diebold_mariano_qlike_vs_naive_trailing_20d",
        "diebold_mariano_mse_vs_naive_trailing_20d",
        "diebold_mariano_qlike_vs_har_rv",
        "diebold_mariano_mse_vs_har_rv",
    }
    assert evaluation.rows > 1000


def test_regime_forest_and_ensemble_produce_probabilities(training):
    forest, _ = train_regime_forest(training, n_estimators=10)
    test = training.rows(TEST)
    proba = forest.predict_frame(test).select("p_bear", "p_sideways", "p_bull", "p_highvol")
    np.testing.assert_allclose(proba.to_numpy().sum(axis=1), 1.0)
    evaluation = evaluate_regime("rf", test, proba.to_numpy(), n_boot=20)
    assert set(evaluation.baselines) == {"persistence"}
    xgb, _ = train_direction_xgboost(training, num_boost_round=10)
    lstm, _ = train_direction_lstm(training, TINY_LSTM)
    ensemble = SoftVotingEnsemble({"xgb": xgb, "lstm": lstm})
    voted = probabilities(ensemble.predict_frame(training.frame))
    both = (
        probabilities(xgb.predict_frame(training.frame))
        + probabilities(lstm.predict_frame(training.frame))
    ) / 2
    has_window = np.isfinite(both).all(axis=1)
    np.testing.assert_allclose(voted[has_window], both[has_window])
    # rows without an LSTM window fall back to XGBoost alone
    assert np.isfinite(voted).all()
