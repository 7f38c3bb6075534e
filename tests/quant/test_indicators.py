"""The building blocks agree with TA-Lib on the real sample, for several symbols at once."""

from datetime import date

import numpy as np
import polars as pl
import pytest
import talib  # a dev dependency: the reference implementation every indicator is checked against

from quant.features import indicators as ind

SYMBOLS = ["AAPL", "^VIX", "^NSEBANK", "JPM"]


@pytest.fixture(scope="module")
def panel(sample_panel) -> pl.DataFrame:
    return sample_panel.filter(
        pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= date(2018, 1, 1))
    ).sort("symbol", "date")


CASES = {
    "sma20": (ind.sma(pl.col("close"), 20), lambda o, h, lo, c: talib.SMA(c, timeperiod=20)),
    "ema12": (ind.ema(pl.col("close"), 12), lambda o, h, lo, c: talib.EMA(c, timeperiod=12)),
    "ema200": (ind.ema(pl.col("close"), 200), lambda o, h, lo, c: talib.EMA(c, timeperiod=200)),
    "rsi14": (ind.rsi(pl.col("close"), 14), lambda o, h, lo, c: talib.RSI(c, timeperiod=14)),
    "rsi7": (ind.rsi(pl.col("close"), 7), lambda o, h, lo, c: talib.RSI(c, timeperiod=7)),
    "atr14": (
        ind.atr(pl.col("high"), pl.col("low"), pl.col("close"), 14),
        lambda o, h, lo, c: talib.ATR(h, lo, c, timeperiod=14),
    ),
    "stddev20": (
        ind.stddev(pl.col("close"), 20),
        lambda o, h, lo, c: talib.STDDEV(c, timeperiod=20),
    ),
    "roc10": (ind.roc(pl.col("close"), 10), lambda o, h, lo, c: talib.ROC(c, timeperiod=10)),
    "mom10": (ind.momentum(pl.col("close"), 10), lambda o, h, lo, c: talib.MOM(c, timeperiod=10)),
    "willr14": (
        ind.williams_r(pl.col("high"), pl.col("low"), pl.col("close"), 14),
        lambda o, h, lo, c: talib.WILLR(h, lo, c, timeperiod=14),
    ),
    "stochf_k14": (
        ind.stochastic_fast_k(pl.col("high"), pl.col("low"), pl.col("close"), 14),
        lambda o, h, lo, c: talib.STOCHF(h, lo, c, fastk_period=14, fastd_period=1)[0],
    ),
    "macd": (ind.macd(pl.col("close"))[0], lambda o, h, lo, c: talib.MACD(c)[0]),
    "macd_signal": (ind.macd(pl.col("close"))[1], lambda o, h, lo, c: talib.MACD(c)[1]),
    "macd_hist": (ind.macd(pl.col("close"))[2], lambda o, h, lo, c: talib.MACD(c)[2]),
    "cci20": (
        ind.commodity_channel_index(pl.col("high"), pl.col("low"), pl.col("close"), 20),
        lambda o, h, lo, c: talib.CCI(h, lo, c, timeperiod=20),
    ),
    "trange": (
        ind.true_range(pl.col("high"), pl.col("low"), pl.col("close")),
        lambda o, h, lo, c: talib.TRANGE(h, lo, c),
    ),
}


VOLUME_CASES = {
    "obv": (
        ind.on_balance_volume(pl.col("close"), pl.col("volume")),
        lambda h, lo, c, v: talib.OBV(c, v),
    ),
    "ad": (
        ind.accumulation_distribution(
            pl.col("high"), pl.col("low"), pl.col("close"), pl.col("volume")
        ),
        lambda h, lo, c, v: talib.AD(h, lo, c, v),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES) + sorted(VOLUME_CASES))
def test_matches_talib_symbol_by_symbol(panel, name):
    expr, reference = CASES.get(name) or VOLUME_CASES[name]
    columns = (
        ("open", "high", "low", "close") if name in CASES else ("high", "low", "close", "volume")
    )
    ours = panel.with_columns(expr.alias("value"))
    for symbol in SYMBOLS:
        one = ours.filter(pl.col("symbol") == symbol)
        arrays = [one[c].to_numpy().astype(float) for c in columns]
        expected = reference(*arrays)
        got = one["value"].to_numpy().astype(float)
        assert np.array_equal(np.isnan(expected), np.isnan(got)), (symbol, "warm-up differs")
        np.testing.assert_allclose(
            got, expected, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=symbol
        )


def test_values_never_depend_on_later_rows(panel):
    cut = date(2022, 6, 30)
    exprs = [expr.alias(name) for name, (expr, _) in CASES.items()]
    full = panel.with_columns(exprs).filter(pl.col("date") <= cut)
    truncated = panel.filter(pl.col("date") <= cut).with_columns(exprs)
    assert full.equals(truncated)
