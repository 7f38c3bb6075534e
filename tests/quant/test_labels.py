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


# --- the vol-scaled direction band -------------------------------------------------------------

W = 5  # a short trailing window for hand-checkable bands


def vol_config(**kwargs) -> LabelConfig:
    return config(direction_band="vol_scaled", direction_band_window=W, **kwargs)


def band_by_hand(closes: list[float], row: int, scale: float) -> float:
    """scale × sample std of the W log returns ending at ``row`` (returns r_1..r_row)."""
    r = np.diff(np.log(closes))
    return scale * float(np.std(r[row - W : row], ddof=1))


def test_the_fixed_band_stays_the_default():
    cfg = LabelConfig(train_end=date(2030, 1, 1))
    assert cfg.direction_band == "fixed"
    assert (cfg.up_threshold, cfg.down_threshold) == (0.001, -0.001)
    with pytest.raises(ValueError, match="direction_band"):
        config(direction_band="adaptive")
    with pytest.raises(ValueError, match="direction_band_window"):
        config(direction_band="vol_scaled", direction_band_window=1)


def test_vol_scaled_band_classes_a_return_by_scale_times_trailing_vol():
    rng = np.random.default_rng(7)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, W + 1))))  # W returns up to row W
    row, scale = W, 0.5
    band = band_by_hand(closes, row, scale)
    last = closes[row]
    below_up, above_up = last * (1 + 0.9 * band), last * (1 + 1.1 * band)
    below_down, above_down = last * (1 - 0.9 * band), last * (1 - 1.1 * band)
    classes = []
    for nxt in (below_up, above_up, below_down, above_down):
        bars, vix = series([*closes, nxt])
        out = forward_quantities(bars, vix, vol_config(direction_band_scale=scale))
        assert out["direction"][:row].null_count() == row  # no band before W returns exist
        classes.append(out["direction"][row])
    assert classes == [Direction.NEUTRAL, Direction.UP, Direction.NEUTRAL, Direction.DOWN]
    # the fixed ±0.1 % band would call all four Up / Down: the band here is much wider
    assert band > 0.001


def test_vol_scaled_band_at_t_reads_no_return_after_t():
    rng = np.random.default_rng(8)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40))))
    cfg = vol_config(direction_band_scale=1.0)
    bars, vix = series(closes)
    base = forward_quantities(bars, vix, cfg)
    t = 20
    # a different, wild future after the next session (t+2 on) must not move the class of row t
    wild = closes[t + 1] * np.exp(np.cumsum(rng.normal(0, 0.2, len(closes) - t - 2)))
    shocked = closes[: t + 2] + list(wild)
    out = forward_quantities(*series(shocked), cfg)
    assert out["direction"][: t + 1].to_list() == base["direction"][: t + 1].to_list()
    assert out["prev_direction"][: t + 2].to_list() == base["prev_direction"][: t + 2].to_list()
    # and the band at t is the hand-computed one: rescaling the next return just across it flips it
    band = band_by_hand(closes, t, 1.0)
    for factor, expected in ((0.99, Direction.NEUTRAL), (1.01, Direction.UP)):
        moved = [*closes[: t + 1], closes[t] * (1 + factor * band), *closes[t + 2 :]]
        assert forward_quantities(*series(moved), cfg)["direction"][t] == expected


def test_vol_scaled_prev_direction_is_yesterdays_direction():
    rng = np.random.default_rng(9)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60))))
    bars, vix = series(closes)
    out = forward_quantities(bars, vix, vol_config(direction_band_scale=0.3))
    direction, prev = out["direction"].to_list(), out["prev_direction"].to_list()
    assert prev[1:] == direction[:-1]
    assert prev[W] is None and prev[W + 1] is not None  # today's band needs yesterday's window
    assert {Direction.DOWN, Direction.NEUTRAL, Direction.UP} <= set(direction[W:-1])


def test_vol_scaled_band_is_per_symbol():
    rng = np.random.default_rng(10)
    calm = list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 30))))
    wild = list(100 * np.exp(np.cumsum(rng.normal(0, 0.05, 30))))
    a, va = series(calm, "AAA")
    b, vb = series(wild, "BBB")
    cfg = vol_config(direction_band_scale=0.43)
    together = forward_quantities(pl.concat([a, b]), pl.concat([va, vb]), cfg)
    alone = forward_quantities(a, va, cfg)
    assert together.filter(pl.col("symbol") == "AAA")["direction"].equals(alone["direction"])
