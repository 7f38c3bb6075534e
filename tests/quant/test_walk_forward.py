"""The walk-forward record: causal (every prediction made before its date, unchanged when later
data is removed), purged at each block, cached per block, and able to tell signal from noise."""

from datetime import date
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant.backtest import Costs, performance_table, strategy_returns, with_benchmarks
from quant.dataset import MODEL_FEATURES
from quant.features import compute_features
from quant.features.context import ContextSpec, compute_market_context
from quant.labels import compute_labels
from quant.splits import TRAIN, VALIDATION
from quant.validation.adjust import adjust_prices
from quant.walk_forward import (
    FAST_FAMILIES,
    WalkForwardConfig,
    build_record,
    record_panel,
    schedule,
    training_view,
)
from quant.walk_forward_report import record_signals, verdict, with_outcomes, yearly_scores
from tests.support.training import SYMBOLS

ANCHORS = frozenset(SYMBOLS[2:])
SMALL = WalkForwardConfig(step=252, xgb_rounds=30, forest_trees=5, inner_validation=63)


def panel_as_of(sample: pl.DataFrame, end: date | None = None) -> pl.DataFrame:
    """The six-symbol panel built from the bars known on ``end`` (all of them when None)."""
    raw = sample.filter(pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= date(2018, 1, 1)))
    if end is not None:
        raw = raw.filter(pl.col("date") <= end)
    bars = adjust_prices(raw).select("symbol", "date", "open", "high", "low", "close", "volume")
    spec = ContextSpec(volatility_index="^VIX", benchmark="^GSPC", equities=tuple(ANCHORS))
    context = compute_market_context(bars, spec)
    labels, _ = compute_labels(bars, context)
    return record_panel(compute_features(bars), context, labels)


@pytest.fixture(scope="module")
def full(sample_panel) -> pl.DataFrame:
    return panel_as_of(sample_panel)


@pytest.fixture(scope="module")
def record(full) -> pl.DataFrame:
    return build_record(full, FAST_FAMILIES, SMALL, ANCHORS)


def test_blocks_start_after_the_minimum_history_and_never_overlap(full):
    blocks = schedule(full, SMALL, ANCHORS)
    first_session = full.filter(pl.col("symbol").is_in(sorted(ANCHORS)))["date"].min()
    assert (blocks[0].start - first_session).days >= 3 * 365
    for before, after in pairwise(blocks):
        assert before.end < after.start and after.refit_date == before.end
        assert before.refit_date < before.start
    assert (blocks[-1].end - blocks[0].start).days > 4 * 365  # the record spans > 4 years


def test_every_refit_fits_only_on_labels_that_end_before_its_block(full):
    for block in schedule(full, SMALL, ANCHORS):
        view = training_view(full, block, SMALL.inner_validation, with_validation=True)
        train = view.rows(TRAIN)
        valid = view.rows(VALIDATION)
        assert train["label_end"].max() <= block.refit_date
        assert valid["label_end"].max() <= block.refit_date
        assert valid["date"].min() > train["label_end"].max()  # inner boundary purged too
        assert train["date"].max() < block.start


def test_every_prediction_was_made_before_its_date(record):
    assert record.height > 0
    assert record.filter(pl.col("refit_date") >= pl.col("date")).is_empty()
    assert set(record["model"]) == set(FAST_FAMILIES)


def test_no_prediction_changes_when_later_data_is_removed(sample_panel, record):
    cut = date(2024, 9, 30)
    truncated = build_record(panel_as_of(sample_panel, cut), FAST_FAMILIES, SMALL, ANCHORS)
    outputs = [c for c in record.columns if c.startswith("p_") or c == "vol_forecast"]
    keys = ["symbol", "date", "model"]
    joined = truncated.join(record, on=keys, suffix="_full")
    assert joined.height == truncated.height > 1000
    assert (joined["refit_date"] == joined["refit_date_full"]).all()
    for column in outputs:
        a = joined[column].to_numpy()
        b = joined[f"{column}_full"].to_numpy()
        same = (np.isnan(a) & np.isnan(b)) | (a == b)
        assert same.all(), f"{column}: {int((~same).sum())} predictions changed"


def test_the_cache_reuses_blocks_and_is_invalidated_by_new_inputs_or_configuration(full):
    store: dict[str, pl.DataFrame] = {}
    heard: list[bool] = []

    def build(panel, config):
        heard.clear()
        return build_record(
            panel,
            ("volatility_garch", "volatility_har"),
            config,
            ANCHORS,
            store.get,
            store.__setitem__,
            on_block=lambda m, b, cached, s: heard.append(cached),
        )

    first = build(full, SMALL)
    assert heard and not any(heard)
    second = build(full, SMALL)
    assert all(heard) and second.equals(first)
    build(full, WalkForwardConfig(step=252, xgb_rounds=30, forest_trees=6, inner_validation=63))
    assert all(heard)  # the forest's size is not part of GARCH's or HAR's configuration
    build(full, WalkForwardConfig(step=252, seed=8, inner_validation=63))
    assert not any(heard)  # a new configuration
    # revised data late in the record: blocks ending before the revision are still reused
    blocks = schedule(full, SMALL, ANCHORS)
    revised = full.with_columns(
        pl.when(pl.col("date") == blocks[-1].start)
        .then(pl.col("log_ret_1") + 0.01)
        .otherwise(pl.col("log_ret_1"))
        .alias("log_ret_1")
    )
    build(revised, SMALL)
    per_model = len(blocks)
    assert heard[: per_model - 1] == [True] * (per_model - 1) and heard[per_model - 1] is False


def synthetic_panel(signal: float, seed: int = 0) -> pl.DataFrame:
    """Four symbols over 8 years; a feature carries ``signal`` about tomorrow's direction."""
    rng = np.random.default_rng(seed)
    days = pl.date_range(date(2016, 1, 4), date(2023, 12, 29), eager=True)
    days = days.filter(days.dt.weekday() <= 5)
    frames = []
    for symbol in ("AAA", "BBB", "CCC", "DDD"):
        n = days.len()
        hint = rng.normal(size=n)
        ret = 0.01 * (signal * hint + rng.normal(size=n))
        frame = pl.DataFrame({"symbol": symbol, "date": days, "_hint": hint, "_ret": ret})
        frames.append(frame)
    h = 20
    panel = (
        pl.concat(frames)
        .sort("symbol", "date")
        .with_columns(
            pl.col("_hint").alias(MODEL_FEATURES[0]),
            pl.col("_hint").shift(1).over("symbol").alias(MODEL_FEATURES[1]),
            pl.col("_ret").shift(1).over("symbol").alias("log_ret_1"),
            pl.col("_ret").alias("fwd_return_1"),
            pl.col("date").shift(-h).over("symbol").alias("label_end"),
            (pl.col("_ret").abs().rolling_mean(h).shift(-h).over("symbol") * 16).alias(
                "fwd_vol_20"
            ),
        )
        .with_columns(
            pl.when(pl.col("fwd_return_1") > 0.001)
            .then(2)
            .when(pl.col("fwd_return_1") < -0.001)
            .then(0)
            .otherwise(1)
            .cast(pl.Int8)
            .alias("direction"),
            pl.col("fwd_vol_20").shift(h).over("symbol").alias("trail_vol_20"),
        )
        .drop("_hint", "_ret")
    )
    return panel.drop_nulls(["label_end", "fwd_vol_20", "log_ret_1", MODEL_FEATURES[1]])


@pytest.mark.parametrize(("signal", "predictable"), [(1.0, True), (0.0, False)])
def test_a_planted_signal_makes_a_clearly_positive_record_and_noise_does_not(signal, predictable):
    panel = synthetic_panel(signal)
    record = build_record(panel, ("direction_xgboost",), SMALL)
    scores = yearly_scores(record, panel).filter(pl.col("period") == "all").row(0, named=True)
    gain = scores["baseline_value"] - scores["model_value"]  # log loss saved over the prior
    if predictable:
        assert gain > 0.03 and scores["rank_ic"] > 0.5  # corr(hint, return) = 0.71
        assert scores["p_value"] < 1e-6
        assert "beats it (significant)" in verdict(yearly_scores(record, panel))
    else:
        assert abs(gain) < 0.01 and abs(scores["rank_ic"]) < 0.03
        assert scores["p_value"] > 0.05  # not better than the prior of its own training rows
        assert "beats it (significant)" not in verdict(yearly_scores(record, panel))


def test_the_yearly_table_puts_every_family_beside_its_baseline(full, record):
    table = yearly_scores(record, full, ANCHORS)
    overall = table.filter(pl.col("period") == "all")
    assert set(overall["model"]) == set(FAST_FAMILIES)
    assert dict(zip(overall["model"], overall["baseline"], strict=True)) == {
        "direction_xgboost": "class_prior",
        "volatility_garch": "naive_trailing_20d",
        "volatility_har": "naive_trailing_20d",
        "regime_random_forest": "persistence",
    }
    years = table.filter(pl.col("period") != "all")["period"].unique().to_list()
    assert len(years) >= 4
    assert table["model_value"].is_finite().all() and table["baseline_value"].is_finite().all()


def test_outcomes_attached_once_score_the_same_and_give_each_refit_its_own_prior(full, record):
    scored = with_outcomes(record, full)
    assert scored.height == record.height  # every predicted row has its label
    assert_frame_equal(yearly_scores(scored, anchors=ANCHORS), yearly_scores(record, full, ANCHORS))
    priors = (
        scored.filter(pl.col("model") == "direction_xgboost")
        .group_by("refit_date")
        .agg(pl.col("prior_up").n_unique().alias("n"), pl.col("prior_up").first())
    )
    assert (priors["n"] == 1).all() and priors["prior_up"].n_unique() == priors.height
    first = priors.sort("refit_date").row(0, named=True)
    known = full.filter(pl.col("label_end") <= first["refit_date"])["direction"]
    share_up = ((known == 2).sum() + 1) / (known.len() + 3)
    assert first["prior_up"] == pytest.approx(share_up)  # the rows that refit could fit on


def test_the_record_backtests_the_served_combiner_day_by_day_per_year(full, record):
    scored = with_outcomes(record, full)
    signals = record_signals(scored)
    assert signals is not None and signals["direction_models"][0] == "direction_xgboost"
    forest = scored.filter(pl.col("model") == "regime_random_forest")
    assert signals.height == signals.join(forest, on=["symbol", "date"]).height
    assert signals["date"].min() >= scored["date"].min()
    assert set(signals["signal"]) <= {"BUY", "SELL", "HOLD"}
    traded = signals.filter(pl.col("symbol").is_in(sorted(ANCHORS)))
    returns = scored.select("symbol", "date", "fwd_return_1").unique(["symbol", "date"])
    daily = with_benchmarks(strategy_returns(traded, Costs()), returns, traded, "^GSPC")
    table = performance_table(daily, by_year=True)
    years = table.filter(pl.col("period") != "all")["period"].unique()
    assert years.len() >= 4
    overall = table.filter(
        (pl.col("period") == "all") & (pl.col("portfolio") == "sp500_buy_and_hold")
    )
    spx = returns.filter(pl.col("symbol") == "^GSPC").join(daily.select("date"), on="date")
    assert overall["total_return"][0] == pytest.approx(
        float((1 + spx["fwd_return_1"]).product() - 1), rel=1e-9
    )
    # without the regime model there is no signal to backtest
    assert record_signals(scored.filter(pl.col("model") != "regime_random_forest")) is None
