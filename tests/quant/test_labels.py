"""Labels on hand-made series with known answers, and their independence from the past/future
they must (not) see."""

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant.labels import (
    Direction,
    LabelConfig,
    Regime,
    RegimeThresholds,
    assign_regimes,
    compute_labels,
    forward_quantities,
)

H = 3


def series(
    closes: list[float], symbol: str = "AAA", vix: float = 15.0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    dates = [date(2020, 1, 1) + timedelta(days=i) for i in range(len(closes))]
    bars = pl.DataFrame({"symbol": symbol, "date": dates, "close": closes})
    context = pl.DataFrame({"symbol": symbol, "date": dates, "vix_level": [vix] * len(closes)})
    return bars, context


def config(**kwargs) -> LabelConfig:
    return LabelConfig(horizon=H, train_end=date(2030, 1, 1), **kwargs)


def test_direction_classes_follow_the_thresholds_and_read_only_the_next_close():
    bars, vix = series([100.0, 100.5, 100.55, 100.4, 100.4])
    out = forward_quantities(bars, vix, config())
    # +0.5 % Up, +0.0498 % Neutral, -0.149 % Down, 0 % Neutral, last row unknown
    assert out["direction"].to_list() == [
        Direction.UP,
        Direction.NEUTRAL,
        Direction.DOWN,
        Direction.NEUTRAL,
        None,
    ]
    assert out["fwd_return_1"][0] == pytest.approx(0.005)
    assert out["prev_direction"].to_list() == [
        None,
        Direction.UP,
        Direction.NEUTRAL,
        Direction.DOWN,
        Direction.NEUTRAL,
    ]


def test_thresholds_are_configurable():
    bars, vix = series([100.0, 100.5, 101.0])
    out = forward_quantities(bars, vix, config(up_threshold=0.01, down_threshold=-0.01))
    assert out["direction"].to_list()[:2] == [Direction.NEUTRAL, Direction.NEUTRAL]


def test_forward_volatility_is_the_realized_vol_of_the_next_h_sessions():
    closes = [100.0, 101.0, 99.0, 102.0, 103.0, 101.0]
    bars, vix = series(closes)
    out = forward_quantities(bars, vix, config())
    r = np.diff(np.log(closes))
    expected_0 = math.sqrt(252 * np.mean(r[0:3] ** 2))
    expected_1 = math.sqrt(252 * np.mean(r[1:4] ** 2))
    assert out["fwd_vol_20"][0] == pytest.approx(expected_0)
    assert out["fwd_vol_20"][1] == pytest.approx(expected_1)
    # trailing twin at row 3 covers returns 1..3 (r[0:3])
    assert out["trail_vol_20"][3] == pytest.approx(expected_0)
    assert out["fwd_vol_20"].null_count() == H
    assert out["fwd_return_20"][0] == pytest.approx(math.log(102.0 / 100.0))
    assert out["label_end"][0] == date(2020, 1, 4)


def test_labels_never_cross_symbols():
    a, va = series([100.0, 101.0, 102.0, 103.0], "AAA")
    b, vb = series([50.0, 40.0, 30.0, 20.0], "BBB")
    out = forward_quantities(pl.concat([a, b]), pl.concat([va, vb]), config())
    last_a = out.filter(pl.col("symbol") == "AAA")
    assert last_a["fwd_return_1"][-1] is None
    assert last_a["fwd_vol_20"].null_count() == H


def test_past_labels_do_not_change_when_later_data_arrives():
    rng = np.random.default_rng(0)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60))))
    bars, vix = series(closes)
    full = forward_quantities(bars, vix, config())
    cut = forward_quantities(bars.head(40), vix.head(40), config())
    known = cut.drop_nulls("fwd_vol_20")
    assert known.height == 40 - H
    assert full.head(known.height).select(known.columns).equals(known)


def test_regime_rule_on_known_paths():
    # calm steady rise, calm fall, calm flat, then a wild stretch
    up = [100 * 1.004**i for i in range(30)]
    bars, vix = series(up)
    cfg = config()
    forward = forward_quantities(bars, vix, cfg)
    thresholds = RegimeThresholds(
        pl.DataFrame(
            {
                "symbol": ["AAA"],
                "vol_high": [0.5],
                "vix_high": [30.0],
                "band": [0.005],
                "n_train": [1],
            }
        )
    )
    out = assign_regimes(forward, thresholds)
    assert set(out["regime"].drop_nulls().to_list()) == {Regime.BULL}
    down, vix_d = series([100 * 0.996**i for i in range(30)])
    out = assign_regimes(forward_quantities(down, vix_d, cfg), thresholds)
    assert set(out["regime"].drop_nulls().to_list()) == {Regime.BEAR}
    flat, vix_f = series([100.0, 100.1] * 15)
    out = assign_regimes(forward_quantities(flat, vix_f, cfg), thresholds)
    assert set(out["regime"].drop_nulls().to_list()) == {Regime.SIDEWAYS}
    stressed, vix_s = series(up, vix=40.0)
    out = assign_regimes(forward_quantities(stressed, vix_s, cfg), thresholds)
    assert set(out["regime"].drop_nulls().to_list()) == {Regime.HIGH_VOL}
    wild, vix_w = series([100.0, 110.0, 95.0, 112.0, 90.0] * 6)
    out = assign_regimes(forward_quantities(wild, vix_w, cfg), thresholds)
    assert set(out["regime"].drop_nulls().to_list()) == {Regime.HIGH_VOL}


def test_regime_thresholds_use_training_rows_only():
    rng = np.random.default_rng(1)
    calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.005, 200)))
    wild = calm[-1] * np.exp(np.cumsum(rng.normal(0, 0.05, 200)))
    bars, vix = series(list(np.concatenate([calm, wild])))
    train_end = bars["date"][150]
    cfg = LabelConfig(horizon=H, train_end=train_end)
    forward = forward_quantities(bars, vix, cfg)
    fitted = RegimeThresholds.fit(forward, cfg)
    # a copy whose future (after train_end) is different gives the same thresholds
    other, vix_o = series(list(np.concatenate([calm, calm[-1] * np.ones(200)])))
    refit = RegimeThresholds.fit(forward_quantities(other, vix_o, cfg), cfg)
    assert fitted.table.equals(refit.table)
    assert fitted.table["n_train"][0] == 150 + 1 - H
    # and the wild future is labelled HighVol by thresholds it never influenced
    labels, _ = compute_labels(bars, vix, cfg)
    late = labels.filter(pl.col("date") > bars["date"][260])["regime"].drop_nulls()
    assert (late == Regime.HIGH_VOL).mean() > 0.9


def test_a_symbol_without_training_history_gets_no_regime():
    bars, vix = series([100.0 + i for i in range(30)])
    cfg = LabelConfig(horizon=H, train_end=date(2019, 1, 1))
    labels, thresholds = compute_labels(bars, vix, cfg)
    assert thresholds.table.is_empty()
    assert labels["regime"].null_count() == labels.height
