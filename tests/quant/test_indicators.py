"""The building blocks agree with TA-Lib on the real sample, for several symbols at once.

(Every feature built from them is checked against its catalog reference in
test_feature_references.py; these tests pin the primitives themselves.)
"""

from datetime import date

import numpy as np
import polars as pl
import pytest
import talib  # a dev dependency: the reference implementation every indicator is checked against

from quant.features import indicators as ind

SYMBOLS = ["AAPL", "^VIX", "^NSEBANK", "JPM"]
H, L, C, V = pl.col("high"), pl.col("low"), pl.col("close"), pl.col("volume")


@pytest.fixture(scope="module")
def panel(sample_panel) -> pl.DataFrame:
    bars = sample_panel.filter(
        pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= date(2018, 1, 1))
    )
    return ind.with_position(bars).collect()


CASES = {
    "sma20": (ind.sma(C, 20), lambda h, lo, c, v: talib.SMA(c, timeperiod=20)),
    "ema12": (ind.ema(C, 12), lambda h, lo, c, v: talib.EMA(c, timeperiod=12)),
    "ema200": (ind.ema(C, 200), lambda h, lo, c, v: talib.EMA(c, timeperiod=200)),
    "atr14": (
        ind.wilder(ind.true_range(H, L, C), 14, first_valid=1),
        lambda h, lo, c, v: talib.ATR(h, lo, c, timeperiod=14),
    ),
    "stddev20": (ind.stddev(C, 20), lambda h, lo, c, v: talib.STDDEV(c, timeperiod=20)),
    "sum10": (ind.rolling_sum(C, 10), lambda h, lo, c, v: talib.SUM(c, timeperiod=10)),
    "max30": (ind.rolling_max(H, 30), lambda h, lo, c, v: talib.MAX(h, timeperiod=30)),
    "min30": (ind.rolling_min(L, 30), lambda h, lo, c, v: talib.MIN(lo, timeperiod=30)),
    "roc10": (ind.roc(C, 10), lambda h, lo, c, v: talib.ROC(c, timeperiod=10)),
    "mom10": (ind.momentum(C, 10), lambda h, lo, c, v: talib.MOM(c, timeperiod=10)),
    "trange": (ind.true_range(H, L, C), lambda h, lo, c, v: talib.TRANGE(h, lo, c)),
    "aroon_up_14": (ind.aroon(H, L, 14)[0], lambda h, lo, c, v: talib.AROON(h, lo, 14)[1]),
    "aroon_down_14": (ind.aroon(H, L, 14)[1], lambda h, lo, c, v: talib.AROON(h, lo, 14)[0]),
    "linreg_slope_14": (
        ind.linear_regression_slope(C, 14),
        lambda h, lo, c, v: talib.LINEARREG_SLOPE(c, timeperiod=14),
    ),
    "obv": (ind.on_balance_volume(C, V), lambda h, lo, c, v: talib.OBV(c, v)),
    "ad": (
        ind.accumulation_distribution(H, L, C, V),
        lambda h, lo, c, v: talib.AD(h, lo, c, v),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_talib_symbol_by_symbol(panel, name):
    expr, reference = CASES[name]
    ours = panel.with_columns(expr.alias("value"))
    for symbol in SYMBOLS:
        one = ours.filter(pl.col("symbol") == symbol)
        arrays = [one[c].to_numpy().astype(float) for c in ("high", "low", "close", "volume")]
        expected = reference(*arrays)
        got = one["value"].to_numpy().astype(float)
        assert np.array_equal(np.isnan(expected), np.isnan(got)), (symbol, "warm-up differs")
        np.testing.assert_allclose(
            got, expected, rtol=1e-9, atol=1e-6, equal_nan=True, err_msg=symbol
        )


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 60, 61])
def test_age_of_extreme_matches_a_plain_scan(n):
    values = np.round(np.random.default_rng(n).normal(size=500), 1)  # rounding makes ties
    ages = ind._age_of_extreme(values, n, highest=True)
    for t in range(n - 1, len(values)):
        window = values[t - n + 1 : t + 1]
        expected = int(np.flatnonzero(window == window.max())[-1])  # most recent on ties
        assert ages[t] == (n - 1) - expected


def test_ratio_is_null_or_the_given_value_on_zero_and_never_infinite():
    frame = pl.DataFrame({"a": [1.0, 0.0, -2.0, 3.0], "b": [0.0, 0.0, 0.0, 2.0]})
    out = frame.select(
        ind.ratio(pl.col("a"), pl.col("b")).alias("null"),
        ind.ratio(pl.col("a"), pl.col("b"), when_zero=0.0).alias("zero"),
    )
    assert out["null"].to_list() == [None, None, None, 1.5]
    assert out["zero"].to_list() == [0.0, 0.0, 0.0, 1.5]
